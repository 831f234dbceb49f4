"""The storage outage table: issue 34's findings rerun as written, at full scale, with default settings.

The real ``pendingops`` command (this interpreter's console script) syncs a 2,000-file remote served on
127.0.0.1 (small files; the remote adds ``--delay`` seconds to each) into moto's S3 server behind the
tests' FaultProxy, which stalls, refuses or answers 503 on cue. Faults are cued **by the clock**, from
the moment the command starts ("stalled from 8 s in"), by a background timer; the 5% rate of 503s is
cued by request counts (one request in 20 is answered 503). The S3 timeouts
(``PENDINGOPS_S3_*_TIMEOUT``) and ``--storage-retry-seconds`` are left at their defaults: they are
removed from the environment the commands get.

Each scenario gets a fresh bucket and a fresh database (SQLite: a file of its own; PostgreSQL: a private
database created for the run on 127.0.0.1:5432, its schema emptied before each scenario, dropped at the
end). For each it prints one row: the exit code, the seconds to exit (and to the last stderr line), the
last line of stderr (and how many lines it had), the complete version made (number and units) and
whether ``verify`` passes afterwards, once the storage answers again. A command still running after
``--patience`` seconds is a hang: its Python stack is dumped with py-spy (when installed) and it is killed.

Usage: ``python benchmarks/storage_outages.py [--db sqlite|postgresql] [--only 1,2,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cutting_proxy import FaultProxy
from tests.remote_server import RemoteServer
from tests.s3_server import AWS_ENV, moto_server, new_bucket
from tests.server_thread import ServerThread
from tests.workers.helpers import Queue, wait_for

SCRIPT = str(Path(sys.executable).with_name("pendingops"))
PY_SPY = Path(sys.executable).with_name("py-spy")
POSTGRES_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
#: what a cue is: seconds after the command started, and what the proxy is told then
Cue = tuple[float, Callable[[], None]]


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    expected: str
    exit: str = "-"
    seconds: str = "-"
    last: str = "-"
    lines: str = "-"
    version: str = "-"
    verify: str = "-"
    notes: list[str] = field(default_factory=list)

    def print(self) -> None:
        last = self.last.replace("|", "\\|")
        notes = "; ".join(self.notes) or "-"
        print(
            f"| {self.scenario} | {self.expected} | {self.exit} | {self.seconds} | `{last}` | {self.lines} "
            f"| {self.version} | {self.verify} | {notes} |",
            flush=True,
        )


@dataclass
class Done:
    """What a command did: exit code (None: hung and killed), seconds, stdout, stderr."""

    code: int | None
    seconds: float
    out: str
    err: str
    #: seconds from the start to the last non-blank stderr line (None: there was none)
    last_at: float | None = None

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


class Bench:
    """The remote, moto behind the proxy, and a fresh database and bucket per scenario."""

    def __init__(self, args: argparse.Namespace, folder: Path, moto: str, proxy: FaultProxy, remote: Any) -> None:
        self.args = args
        self.folder = folder
        self.moto = moto
        self.proxy = proxy
        self.remote = remote
        self.runs = 0
        self.db_url = ""
        self.storage = ""
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PENDINGOPS_", "AWS_"))}
        self.env.update(AWS_ENV)
        self.env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{proxy.port}"
        self.env["XDG_DATA_HOME"] = str(folder / "data")
        self.pg_url = ""
        if args.db == "postgresql":
            name = f"pendingops_storage_outages_{os.getpid()}"
            self.pg_url = make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
            with _admin() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))

    def close(self) -> None:
        if self.pg_url:
            with _admin() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(self.pg_url).database}" WITH (FORCE)'))

    def fresh(self) -> None:
        """A new bucket and an empty database (the commands create the schema)."""
        self.runs += 1
        self.storage = f"s3://{new_bucket(self.moto)}/pendingops"
        if self.pg_url:
            engine = create_engine(self.pg_url)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            engine.dispose()
            self.db_url = self.pg_url
        else:
            self.db_url = f"sqlite:///{self.folder / f'run-{self.runs}.db'}"

    def command(self, *args: str) -> list[str]:
        return [SCRIPT, "--db", self.db_url, "--storage", self.storage, *args]

    def sync_args(self, *options: str) -> list[str]:
        return ["sync", self.remote.manifest_url, "--repo", "r", "--mirror", "--quiet", *options]

    def run(
        self, args: list[str], cues: list[Cue] | None = None, *, during: Callable[[threading.Event], None] | None = None
    ) -> Done:
        """Run the command with the cues fired by the clock; past --patience it is a hang (dumped, killed)."""
        started = time.monotonic()
        process = subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )
        timers = [threading.Timer(at, action) for at, action in cues or []]
        for timer in timers:
            timer.start()
        stop = threading.Event()
        helper = threading.Thread(target=during, args=(stop,), daemon=True) if during else None
        if helper:
            helper.start()
        out: list[str] = []
        err: list[tuple[float, str]] = []
        readers = [
            threading.Thread(target=_read, args=(process.stdout, lambda line: out.append(line)), daemon=True),
            threading.Thread(
                target=_read, args=(process.stderr, lambda line: err.append((time.monotonic() - started, line)))
            ),
        ]
        for reader in readers:
            reader.start()
        try:
            code: int | None = process.wait(timeout=self.args.patience)
        except subprocess.TimeoutExpired:
            _dump(process.pid, self.args.patience)
            process.kill()
            process.wait()
            code = None
        took = time.monotonic() - started
        for reader in readers:
            reader.join()
        for timer in timers:
            timer.cancel()
        stop.set()
        if helper:
            helper.join()
        self.proxy.heal()
        last_at = max((at for at, line in err if line.strip()), default=None)
        return Done(code, took, "".join(out), "".join(line for _, line in err), last_at)

    def version(self) -> str:
        done = subprocess.run(
            self.command("versions", "r", "--json"), capture_output=True, text=True, env=self.env, timeout=120
        )
        if done.returncode:
            return f"? ({_last(done.stderr)})"
        numbers = [v for v in json.loads(done.stdout) if v["number"] > 0]
        if not numbers:
            return "none"
        latest = max(numbers, key=lambda v: v["number"])
        return f"{latest['number']}: {latest['content_count']} units"

    def verify(self) -> str:
        done = self.run(["verify"])
        if done.code == 0:
            return f"passes ({done.seconds:.0f} s)"
        return f"FAILS, exit {done.code}: {_last(done.err)}"


@contextmanager
def _admin() -> Iterator[Any]:
    engine = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _last(text_: str) -> str:
    lines = [line.strip() for line in text_.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _read(stream: Any, keep: Callable[[str], None]) -> None:
    """Pass each line of ``stream`` to ``keep`` until it ends."""
    for line in stream:
        keep(line)
    stream.close()


def _dump(pid: int, patience: float) -> None:
    """Print the hung process's Python stacks (py-spy), for the report."""
    print(f"\nHANG: pid {pid} still running after {patience:.0f} s", flush=True)
    if not PY_SPY.exists():
        print("(py-spy not installed: .venv/bin/pip install py-spy)", flush=True)
        return
    dump = subprocess.run([str(PY_SPY), "dump", "--pid", str(pid)], capture_output=True, text=True)
    print(dump.stdout + dump.stderr, flush=True)


def _fill(row: Row, done: Done) -> None:
    row.exit = "HANG (killed)" if done.code is None else str(done.code)
    row.seconds = f"{done.seconds:.1f}"
    if done.last_at is not None:
        row.seconds += f" (line at {done.last_at:.1f})"
    lines = done.err_lines
    row.last = lines[-1].strip() if lines else ""
    row.lines = str(len(lines))
    if "Traceback" in done.err:
        row.notes.append("TRACEBACK in stderr")
    if done.code == 0:
        summary = [line.strip() for line in done.out.splitlines() if "version" in line]
        if summary:
            row.notes.append(f"stdout: {summary[-1]}")


def _sync_row(bench: Bench, scenario: str, expected: str, cues: list[Cue], *options: str, during: Any = None) -> Row:
    bench.fresh()
    row = Row(scenario, expected)
    before = (bench.proxy.requests, bench.proxy.held, bench.proxy.slowed)
    done = bench.run(bench.sync_args(*options), cues, during=during)
    _fill(row, done)
    requests, held, slowed = (
        bench.proxy.requests - before[0],
        bench.proxy.held - before[1],
        bench.proxy.slowed - before[2],
    )
    row.notes.append(f"S3 requests {requests}, held {held}, 503 {slowed}")
    row.version = bench.version()
    row.verify = bench.verify()
    return row


def _every_twentieth(proxy: FaultProxy) -> Callable[[threading.Event], None]:
    """A helper thread's body: one request in 20 gets 503 SlowDown (the 19 between them go through)."""

    def body(stop: threading.Event) -> None:
        mark = proxy.requests + 19
        while not stop.is_set():
            if proxy.requests >= mark:
                proxy.fail_next(1)
                mark = proxy.requests + 19
            stop.wait(0.005)

    return body


def _get(url: str) -> tuple[str, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            response.read()
            answer = str(response.status)
    except urllib.error.HTTPError as error:
        retry = error.headers.get("Retry-After")
        answer = f"{error.code}" + (f" (Retry-After {retry})" if retry else "")
    except OSError as error:
        answer = f"error {error}"
    return answer, time.monotonic() - started


def _serve_row(bench: Bench) -> Row:
    """Finding 6: a synced repository served; S3 stalled; a listing, PULP_MANIFEST and a file asked for."""
    row = Row("6. serve, S3 stalled", "listing, PULP_MANIFEST answer; file 503 + Retry-After within the timeout")
    serve = subprocess.Popen(
        bench.command("serve", "--port", "0", "--no-access-log"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bench.env,
    )
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        base = line.split()[2].rstrip("/") + "/"
        first, _ = _get(base + "r/latest/d0/f00000")
        bench.proxy.stall()
        listing, listing_s = _get(base + "r/latest/")
        manifest, manifest_s = _get(base + "r/latest/PULP_MANIFEST")
        stored, stored_s = _get(base + "r/latest/d1/f00001")
        row.seconds = f"{stored_s:.1f}"
        row.last = (
            f"before: file {first}; stalled: listing {listing} in {listing_s:.1f} s, PULP_MANIFEST {manifest} in"
            f" {manifest_s:.1f} s, file {stored} in {stored_s:.1f} s"
        )
    finally:
        bench.proxy.heal()
        serve.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        try:
            _, err = serve.communicate(timeout=bench.args.patience)
            row.exit = str(serve.returncode)
        except subprocess.TimeoutExpired:
            _dump(serve.pid, bench.args.patience)
            serve.kill()
            _, err = serve.communicate()
            row.exit = "HANG on SIGINT (killed)"
        row.notes.append(f"serve stopped {time.monotonic() - stopped:.1f} s after SIGINT")
    lines = [line for line in err.splitlines() if line.strip()]
    row.lines = str(len(lines))
    if "Traceback" in err:
        row.notes.append("TRACEBACK in serve's stderr")
    row.version = bench.version()
    row.verify = bench.verify()
    return row


def _cut_row(bench: Bench, command: str, after: int) -> Row:
    """Finding 7: ``command`` on the synced repository; S3 refuses for good from ``after`` requests in."""
    dest = bench.folder / f"export-{bench.runs}-{time.monotonic_ns()}"
    args = command.split() + (["r", str(dest)] if command == "export" else [])
    row = Row(f"7. {command}, S3 refused from {after} requests in", "exit 1, one line; export: no DEST")
    bench.proxy.refuse_after(after)
    done = bench.run(args)
    _fill(row, done)
    if command == "export":
        row.notes.append("DEST left absent" if not dest.exists() else f"DEST EXISTS: {sorted(dest.iterdir())[:3]}")
        shutil.rmtree(dest, ignore_errors=True)
    row.version = bench.version()
    row.verify = bench.verify()
    return row


def _worker_rows(bench: Bench, remote_url: str) -> list[Row]:
    """A worker whose S3 stalls for good from 8 s into its sync, then SIGTERM during a stalled sync."""
    bench.fresh()
    queue = Queue(bench.db_url, bench.storage, env=bench.env)
    failing = Row("worker: S3 stalled for good from 8 s in", "task failed, one line, within 30 s + a timeout")
    stopping = Row("worker: SIGTERM during a stalled sync", "worker exits within --grace (60 s); task queued")
    try:
        worker = queue.start_worker()
        first = queue.enqueue(remote_url, "r", "--mirror")
        started = time.monotonic()
        stall = threading.Timer(8.0, bench.proxy.stall)
        stall.start()
        task = wait_for(
            lambda: (t := queue.task(first))["state"] in ("failed", "succeeded") and t,
            "the first task to end",
            bench.args.patience,
        )
        stall.cancel()
        failing.exit = f"task {task['state']}"
        failing.seconds = f"{time.monotonic() - started:.1f}"
        error = task.get("error") or ""
        failing.last = error.strip().splitlines()[-1] if error.strip() else ""
        failing.lines = str(len([line for line in error.splitlines() if line.strip()]))
        failing.notes.append(f"worker alive: {worker.poll() is None}")
        failing.version = bench.version()

        held = bench.proxy.held
        second = queue.enqueue(remote_url, "r", "--mirror")
        bench.proxy.wait_for("held", held + 1, bench.args.patience)  # the second sync is held by the stall
        state = queue.task(second)["state"]
        worker.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            code: Any = worker.wait(bench.args.patience)
        except subprocess.TimeoutExpired:
            _dump(worker.pid, bench.args.patience)
            code = "HANG (killed)"
        stopping.exit = str(code)
        stopping.seconds = f"{time.monotonic() - signalled:.1f}"
        assert worker.stderr is not None
        err = worker.stderr.read() if code != "HANG (killed)" else ""
        lines = [line for line in err.splitlines() if line.strip()]
        stopping.last = lines[-1].strip() if lines else ""
        stopping.lines = str(len(lines))
        if "Traceback" in err or "never retrieved" in err:
            stopping.notes.append("TRACEBACK or unretrieved exception in the worker's stderr")
        stopping.notes.append(f"task {second} was {state}, is now {queue.task(second)['state']}")
    finally:
        bench.proxy.heal()
        queue.stop_all()
    stopping.version = bench.version()
    verdict = bench.verify()
    failing.verify = stopping.verify = verdict
    return [failing, stopping]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.005, help="seconds the remote adds to each file")
    parser.add_argument("--patience", type=float, default=300.0, help="seconds before a command counts as hung")
    parser.add_argument("--only", default="", help="comma-separated scenario keys: 0,1,2,3,4a,4b,4c,6,7,w")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))

    def wanted(key: str) -> bool:
        return not only or key in only

    folder = Path(tempfile.mkdtemp(prefix="pendingops-storage-outages-"))
    files = {f"d{i % 30}/f{i:05}": f"storage outage {i}\n".encode() * 8 for i in range(args.files)}
    load = os.getloadavg()
    print(
        f"{args.files} files, remote +{args.delay * 1000:.0f} ms per file, database {args.db}, default S3 timeouts"
        f" and storage retry time; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n",
        flush=True,
    )
    print(
        "| scenario | expected | exit | s to exit (to the last stderr line) | last stderr line | stderr lines "
        "| version | verify after | notes |"
    )
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    try:
        with (
            moto_server() as moto,
            FaultProxy(urlsplit(moto).port or 0) as proxy,
            ServerThread(server=RemoteServer(files=files, delay=args.delay)) as remote,
        ):
            bench = Bench(args, folder, moto, proxy, remote)
            try:
                _scenarios(bench, wanted)
            finally:
                bench.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _scenarios(bench: Bench, wanted: Callable[[str], bool]) -> None:
    proxy = bench.proxy
    ridden = "ridden out: exit 0, complete version of all units"
    sync_rows: list[tuple[str, str, str, list[Cue], tuple[str, ...], Any]] = [
        ("0", "0. no fault", "exit 0, all units", [], (), None),
        ("1", "1. stalled 20 s from 8 s in", ridden, [(8, proxy.stall), (28, proxy.heal)], (), None),
        (
            "2",
            "2. stalled for good from 8 s in",
            "one line naming the storage, 'no new version; rerun', within ~8 + 30 + 30 s, exit 1",
            [(8, proxy.stall)],
            (),
            None,
        ),
        (
            "3",
            "3. --on-error skip, refused 4-6 s",
            ridden,
            [(4, proxy.refuse), (6, proxy.heal)],
            ("--on-error", "skip"),
            None,
        ),
        (
            "4a",
            "4. refused 4-60 s",
            "ridden out for 30 s, then one line, exit 1, no version",
            [(4, proxy.refuse), (60, proxy.heal)],
            (),
            None,
        ),
        ("4b", "4. 503 SlowDown burst 4-9 s", ridden, [(4, lambda: proxy.fail_next(10**9)), (9, proxy.heal)], (), None),
        ("4c", "4. 5% of requests 503 (1 in 20)", ridden, [], (), _every_twentieth(proxy)),
    ]
    for key, scenario, expected, cues, options, during in sync_rows:
        if wanted(key):
            _sync_row(bench, scenario, expected, cues, *options, during=during).print()
    if wanted("6") or wanted("7"):
        bench.fresh()
        done = bench.run(bench.sync_args())
        if done.code != 0:
            print(f"(the sync for findings 6 and 7 failed: {_last(done.err)})")
            return
        if wanted("6"):
            _serve_row(bench).print()
        if wanted("7"):
            for command in ("verify", "verify --repair", "export"):
                _cut_row(bench, command, 50).print()
    if wanted("w"):
        if bench.args.db != "postgresql":
            print("| worker rows | skipped: workers need PostgreSQL (--db postgresql) | | | | | | | |")
        else:
            for row in _worker_rows(bench, bench.remote.manifest_url):
                row.print()


if __name__ == "__main__":
    main()
