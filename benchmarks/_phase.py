"""One benchmark phase, run in its own process so its peak RSS is its own.

Usage: ``python _phase.py SPEC_JSON``. SPEC's ``kind`` is "sync" (a pendingops sync of the file
plugin, or of the ``plugin`` SPEC names, with its ``options``), "download" (a bare aiohttp download
of a manifest's files) or "insert" (a bare bulk insert).
The result is printed as one JSON line prefixed with ``RESULT_PREFIX``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

RESULT_PREFIX = "PHASE-RESULT "
_CHUNK = 256 * 1024


class StallWatchdog:
    """Sleeps ``period`` seconds in a loop and records the worst lateness: the longest loop stall.

    It also records the loop thread's CPU time during that stall: near the stall itself, the loop
    was busy running code; near zero, it was waiting (for a CPU other processes held, or in a
    system call).
    """

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.max_stall = 0.0
        self.max_stall_cpu = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StallWatchdog:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(self.period)
            stall = loop.time() - before - self.period
            if stall > self.max_stall:
                self.max_stall, self.max_stall_cpu = stall, time.thread_time() - cpu


def _executions(parameters: Any, many: bool) -> int:
    """Statements one cursor call runs: one per row for a DBAPI executemany over rows, else one.

    SQLAlchemy's multi-row INSERT pages arrive as one flat parameter set and count once.
    """
    rows = (
        many and isinstance(parameters, list | tuple) and parameters and isinstance(parameters[0], list | tuple | dict)
    )
    return len(parameters) if rows else 1


class StatementCounter:
    """Counts the SQL statements an engine runs (``before_cursor_execute``), from any thread."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.count = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        # A DBAPI executemany over a list of rows runs the statement once per row (psycopg2 sends
        # each one); SQLAlchemy's multi-row pages arrive as one parameter mapping and count once.
        with self._lock:
            self.count += _executions(parameters, many)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_sync(spec: dict[str, Any]) -> dict[str, Any]:
    import pendingops
    from pendingops import LocalStorage, RemoteConfig, open_database, sync_remote
    from pendingops.plugins import get_plugin

    db = open_database(spec["db"])
    storage = LocalStorage(spec["storage"])
    options = spec.get("options", {})
    remote = RemoteConfig(spec["url"], policy=spec["policy"], download_concurrency=spec["concurrency"], options=options)
    plugin = get_plugin(spec.get("plugin", "file"))
    counter = StatementCounter(db.engine)
    async with StallWatchdog() as watchdog:
        start, cpu = time.perf_counter(), cpu_seconds()
        result = await sync_remote(
            plugin,
            remote,
            db=db,
            storage=storage,
            repository=spec.get("repository", "bench"),
            mirror=spec["mirror"],
            force=spec.get("force", False),
        )
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    db.close()
    return {
        "wall": wall,
        "cpu": cpu,
        "statements": counter.count,
        "stall": watchdog.max_stall,
        "stall_cpu": watchdog.max_stall_cpu,
        "added": result.added,
        "removed": result.removed,
        "failed": result.failed_count,
        "remote_unchanged": result.remote_unchanged,
        "version": result.version.number,
        "content_count": result.version.content_count,
        "package": str(Path(pendingops.__file__).parent),
    }


async def run_download(spec: dict[str, Any]) -> dict[str, Any]:
    """GET every file of the manifest with ``concurrency`` in flight; hash it and write it to a file."""
    import aiohttp
    from _repo import read_manifest  # this script's folder is on sys.path

    entries = read_manifest(Path(spec["manifest"]))
    dest = Path(spec["dest"])
    dest.mkdir(parents=True, exist_ok=True)
    limit = asyncio.Semaphore(spec["concurrency"])
    connector = aiohttp.TCPConnector(limit=spec["concurrency"])

    async def fetch(session: aiohttp.ClientSession, number: int, path: str, sha256: str) -> None:
        async with limit:
            hasher = hashlib.sha256()
            async with session.get(spec["base_url"] + quote(path)) as response:
                response.raise_for_status()
                with open(dest / f"{number}.part", "wb") as out:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        hasher.update(chunk)
                        out.write(chunk)
            if hasher.hexdigest() != sha256:
                raise RuntimeError(f"{path}: sha256 mismatch")

    async with aiohttp.ClientSession(connector=connector) as session, StallWatchdog() as watchdog:
        start, cpu = time.perf_counter(), cpu_seconds()
        await asyncio.gather(*(fetch(session, i, e.path, e.sha256) for i, e in enumerate(entries)))
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {
        "wall": wall,
        "cpu": cpu,
        "stall": watchdog.max_stall,
        "stall_cpu": watchdog.max_stall_cpu,
        "files": len(entries),
    }


def run_insert(spec: dict[str, Any]) -> dict[str, Any]:
    """Insert ``rows`` rows into a scratch table with one executemany, in one transaction."""
    from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

    from pendingops import open_database

    engine = open_database(spec["db"], create=False).engine  # same connection settings as a sync
    metadata = MetaData()
    table = Table(
        "bench_scratch",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("relative_path", Text),
        Column("sha256", String(64)),
        Column("size", BigInteger),
    )
    metadata.drop_all(engine)
    metadata.create_all(engine)
    rows = [
        {"relative_path": f"files/{i:07d}.bin", "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "size": 1024}
        for i in range(spec["rows"])
    ]
    counter = StatementCounter(engine)
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    wall = time.perf_counter() - start
    metadata.drop_all(engine)
    engine.dispose()
    return {"wall": wall, "statements": counter.count}


def main() -> None:
    # Linux carries the peak RSS of whoever spawned us into ru_maxrss across exec (a vfork'd child
    # even shares its memory), so the phase runs in a child forked from this still-small process.
    pid = os.fork()
    if pid:
        sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    spec = json.loads(sys.argv[1])
    from pendingops.loop import loop_name, run  # the raw download runs on the same loop as the syncs

    started = resource.getrusage(resource.RUSAGE_SELF)
    if spec["kind"] == "sync":
        result = run(run_sync(spec))
    elif spec["kind"] == "download":
        result = run(run_download(spec))
    else:
        result = run_insert(spec)
    ended = resource.getrusage(resource.RUSAGE_SELF)
    # CPU (all threads) over what the phase timed; a phase that times nothing of its own (the bulk insert)
    # reports the whole run's. The machine may be shared: wall time is noisy, CPU time much less so.
    # (Overwriting a sync's own figure with the whole run's added its imports, ~0.4 s, to every sync.)
    result.setdefault("cpu", ended.ru_utime + ended.ru_stime - started.ru_utime - started.ru_stime)
    result["loop"] = loop_name()
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
