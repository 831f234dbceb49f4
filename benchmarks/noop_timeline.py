"""Where a no-op resync's time goes, in one process: its database calls on a timeline, and its SQL by statement.

    .venv/bin/python benchmarks/noop_timeline.py                        # SQLite, 10,000 files
    .venv/bin/python benchmarks/noop_timeline.py --db postgresql --resyncs 5

Syncs ``--files`` files of 1 KiB served on 127.0.0.1 (database, storage and remote in ``--folder``,
``/dev/shm`` by default, so the disk is out of it), then runs ``--resyncs`` forced no-op resyncs on the
same loop. For each it prints wall and CPU seconds and the seconds spent in SQL; for the last one, each
database call (``Database.transact``) with its start and end in milliseconds from the sync's start,
and the statements that took longest. ``--db postgresql`` recreates the database ``noop_timeline``.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _repo import make_entries, write_manifest
from sqlalchemy import create_engine, event

import pendingops.loop
from pendingops import LocalStorage, RemoteConfig, open_database, sync_remote
from pendingops.db.database import Database
from pendingops.plugins import get_plugin
from pendingops.testing import ServedFolder

_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/"


def _database_url(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder}/timeline.db"
    admin = create_engine(_POSTGRES + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS noop_timeline")
        conn.exec_driver_sql("CREATE DATABASE noop_timeline")
    admin.dispose()
    return _POSTGRES + "noop_timeline"


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="noop-timeline-", dir=args.folder))
    root = work / "remote"
    write_manifest(root / "PULP_MANIFEST", make_entries(root, range(args.files), 1024).values())
    db = open_database(_database_url(args.db, work))
    storage = LocalStorage(work / "storage")
    spent: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    started: dict[int, float] = {}
    calls: list[tuple[str, float, float]] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        kind = re.sub(r"\s+", " ", statement).strip()[:70]
        spent[kind] += time.perf_counter() - started.pop(id(cursor), time.perf_counter())
        runs[kind] += 1

    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    transact = Database.transact

    def timed(self: Database, fn: Any, *more: Any, **options: Any) -> Any:
        begun = time.perf_counter()
        try:
            return transact(self, fn, *more, **options)
        finally:
            calls.append((getattr(fn, "__name__", repr(fn)), begun, time.perf_counter()))

    Database.transact = timed  # type: ignore[method-assign]
    async with ServedFolder(root) as served:
        remote = RemoteConfig(served.url + "PULP_MANIFEST")
        plugin = get_plugin("file")
        begun = time.perf_counter()
        await sync_remote(plugin, remote, db=db, storage=storage, repository="timeline", mirror=True)
        print(f"initial sync of {args.files} files: {time.perf_counter() - begun:.2f} s")
        for number in range(1, args.resyncs + 1):
            spent.clear()
            runs.clear()
            calls.clear()
            begun, cpu = time.perf_counter(), time.process_time()
            await sync_remote(plugin, remote, db=db, storage=storage, repository="timeline", mirror=True, force=True)
            wall, cpu = time.perf_counter() - begun, time.process_time() - cpu
            print(f"no-op resync {number}: {wall:.3f} s wall, {cpu:.3f} s CPU, {sum(spent.values()):.3f} s in SQL")
    print("\nthe last one's database calls (ms from its start):")
    for name, start, end in calls:
        print(f"  {name:28s} {1000 * (start - begun):8.1f} {1000 * (end - begun):8.1f}  ({1000 * (end - start):.1f})")
    print("\nits statements, longest first (ms in all, times run):")
    for kind, seconds in spent.most_common(args.top):
        print(f"  {1000 * seconds:8.1f} {runs[kind]:5d}  {kind}")
    Database.transact = transact  # type: ignore[method-assign]
    db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--resyncs", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--folder", default="/dev/shm", help="where the database, storage and remote go")
    parser.add_argument("--top", type=int, default=12, help="statements listed")
    pendingops.loop.run(main(parser.parse_args()))
