"""Worker scaling and S3 cost: wall times of queued syncs with 1, 2 and 4 workers; local vs S3 storage.

    .venv/bin/python benchmarks/workers.py scaling [--repos 12 --files 100 --delay 0.02]
    .venv/bin/python benchmarks/workers.py storage [--files 10000]

``scaling``: REPOS repositories of FILES files each, served by one aiohttp process that waits
DELAY seconds before answering each file request; W worker processes (``pendingops worker``) are
started, then all syncs are queued and the time until every task succeeded is measured (worker
start-up is not), on a fresh PostgreSQL database each time (``pendingops_bench_workers``, created
and dropped here).
``storage``: one sync of FILES 1 KiB files into local storage, then into S3 (moto's server), on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiohttp import web
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from procrastinate import App  # noqa: E402

from pendingops import open_database  # noqa: E402
from pendingops.sync import SyncRequest  # noqa: E402
from pendingops.workers.queue import enqueue, ensure_queue_schema, make_app  # noqa: E402
from tests.s3_server import AWS_ENV, moto_server, new_bucket  # noqa: E402 - the test suite's moto helper

SCRIPT = str(Path(sys.executable).parent / "pendingops")
SERVER = os.environ.get("PENDINGOPS_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
BENCH_DB = "pendingops_bench_workers"


def repository(name: str, files: int) -> dict[str, bytes]:
    return {f"{name}/f{i:05d}.bin": hashlib.sha256(f"{name}-{i}".encode()).digest() * 32 for i in range(files)}


class SlowRemote:
    """Serves every repository's manifest and files from memory, DELAY seconds late per file."""

    def __init__(self, repos: dict[str, dict[str, bytes]], delay: float) -> None:
        self.repos, self.delay = repos, delay
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.base = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_get("/{repo}/PULP_MANIFEST", self._manifest)
        app.router.add_get("/{repo}/{path:.*}", self._file)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def _manifest(self, request: web.Request) -> web.Response:
        files = self.repos[request.match_info["repo"]]
        lines = [f"{p.split('/', 1)[1]},{hashlib.sha256(d).hexdigest()},{len(d)}" for p, d in sorted(files.items())]
        return web.Response(body="\n".join(lines).encode() + b"\n")

    async def _file(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        repo = request.match_info["repo"]
        return web.Response(body=self.repos[repo][f"{repo}/{request.match_info['path']}"])

    def url(self, repo: str) -> str:
        return f"{self.base}/{repo}/PULP_MANIFEST"


def _fresh_database() -> str:
    engine = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    engine.dispose()
    return make_url(SERVER).set(database=BENCH_DB).render_as_string(hide_password=False)


def _drop_database() -> None:
    engine = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
    engine.dispose()


def _cli(db: str, storage: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([SCRIPT, "--db", db, "--storage", storage, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"pendingops {' '.join(args)} failed: {done.stderr.strip()}")
    return done


async def _enqueue_all(app: App, options: list[SyncRequest]) -> None:
    async with app.open_async():
        for one in options:
            await enqueue(app, one)


def scaling(args: argparse.Namespace) -> None:
    repos = {f"r{i:02d}": repository(f"r{i:02d}", args.files) for i in range(args.repos)}
    remote = SlowRemote(repos, args.delay)
    print(
        f"{args.repos} repositories x {args.files} files, {args.delay * 1000:.0f} ms per file request, "
        f"sync --concurrency {args.concurrency}"
    )
    print(f"{'workers':>7} {'wall s':>8} {'speed-up':>8}")
    base = None
    try:
        for count in args.workers:
            db = _fresh_database()
            with tempfile.TemporaryDirectory(prefix="pendingops-bench-") as storage:
                database = open_database(db)  # our tables, then the queue's
                app = make_app(db)
                ensure_queue_schema(database, app)
                database.close()
                workers = [
                    subprocess.Popen(
                        [SCRIPT, "--db", db, "--storage", storage, "worker", "--heartbeat", "0.5"],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        text=True,
                    )
                    for _ in range(count)
                ]
                for worker in workers:  # started and connected: only the syncs are timed
                    assert worker.stdout is not None and "waiting for syncs" in worker.stdout.readline()
                time.sleep(3)
                started = time.monotonic()
                options = [SyncRequest(repo, remote.url(repo), concurrency=args.concurrency) for repo in repos]
                asyncio.run(_enqueue_all(app, options))
                engine = create_engine(db)
                try:
                    while True:  # polled here, not by a command: no CPU taken from the workers
                        with engine.connect() as conn:
                            states = set(conn.execute(text("SELECT DISTINCT status FROM procrastinate_jobs")).scalars())
                        if "failed" in states:
                            raise SystemExit("a sync failed: see pendingops tasks")
                        if states == {"succeeded"}:
                            break
                        time.sleep(0.1)
                    wall = time.monotonic() - started
                finally:
                    engine.dispose()
                    for worker in workers:
                        worker.terminate()
                        worker.wait()
                        if worker.stdout is not None:
                            worker.stdout.close()
            base = base or wall
            print(f"{count:>7} {wall:>8.2f} {base / wall:>7.2f}x", flush=True)
    finally:
        _drop_database()


def storage(args: argparse.Namespace) -> None:
    files = repository("big", args.files)
    remote = SlowRemote({"big": files}, 0.0)
    print(f"one sync of {args.files} files of {len(next(iter(files.values())))} bytes, SQLite")
    print(f"{'storage':<8} {'wall s':>8} {'files/s':>8}")
    with tempfile.TemporaryDirectory(prefix="pendingops-bench-") as work, moto_server() as endpoint:
        os.environ.update(AWS_ENV, AWS_ENDPOINT_URL=endpoint, XDG_DATA_HOME=f"{work}/data")
        for name, target in (("local", f"{work}/storage"), ("s3", f"s3://{new_bucket(endpoint)}/bench")):
            db = f"sqlite:///{work}/{name}.db"
            started = time.monotonic()
            _cli(db, target, "sync", remote.url("big"), "--repo", "big", "--quiet")
            wall = time.monotonic() - started
            print(f"{name:<8} {wall:>8.2f} {args.files / wall:>8.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kinds = parser.add_subparsers(dest="kind", required=True)
    scale = kinds.add_parser("scaling")
    scale.add_argument("--repos", type=int, default=12)
    scale.add_argument("--files", type=int, default=100)
    scale.add_argument("--delay", type=float, default=0.02)
    scale.add_argument("--concurrency", type=int, default=2, help="downloads at once per sync")
    scale.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    store = kinds.add_parser("storage")
    store.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    scaling(args) if args.kind == "scaling" else storage(args)


if __name__ == "__main__":
    main()
