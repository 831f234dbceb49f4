"""Cost follows the change from the first sync on: a 5,000-unit sync beside 150,000 stored units
takes about what it takes in an empty store, with no manual ANALYZE.

    .venv/bin/python benchmarks/beside_store.py                      # both databases
    .venv/bin/python benchmarks/beside_store.py --store 150000 --databases postgresql

``empty``: a fresh database; an on_demand sync of 5,000 new units (nothing downloaded: the time is
dedup, save and associate). ``beside``: a fresh database that a first on_demand sync filled with
``--store`` units of another repository (the store a real first sync leaves: whatever statistics it
has are the ones pendingops gathered), then the same 5,000-unit sync. The ratio is beside / empty;
the target is at most 1.3. Each phase runs ``--repeat`` times in fresh databases; the fastest counts.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from store_scale import DEFAULT_POSTGRES, URL, _fresh, _settle

from pendingops import Database, LocalStorage, RemoteConfig, declarative_version, open_database
from pendingops.plugins import file as file_plugin

SYNC_UNITS = 5000
TARGET = 1.3


def _units(prefix: str, count: int) -> list:
    entries = (
        file_plugin.ManifestEntry(i, f"{prefix}/{i:07d}.bin", hashlib.sha256(f"{prefix}{i}".encode()).hexdigest(), 1)
        for i in range(count)
    )
    return [file_plugin.file_unit(URL, entry) for entry in entries]


def _sync(db: Database, folder: Path, repository: str, units: list) -> float:
    started = time.perf_counter()
    result = asyncio.run(
        declarative_version(
            units,
            db=db,
            storage=LocalStorage(folder / "storage"),
            remote=RemoteConfig(url=URL, policy="on_demand"),
            repository=repository,
        )
    )
    elapsed = time.perf_counter() - started
    assert result.added == len(units), result
    return elapsed


def phase(kind: str, store: int, postgres_url: str) -> tuple[float, float]:
    """(seconds of the first sync that filled the store, seconds of the 5,000-unit sync beside it).

    The measured sync runs as a command-line sync does, in both cases alike: on a newly opened
    database (no statement compiled yet, nothing cached by the fill) and up to its close, which
    includes the statistics and the checkpoint the sync leaves to it.
    """
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        db = _fresh(kind, folder, postgres_url)
        url = db.engine.url.render_as_string(hide_password=False)
        try:
            fill = _sync(db, folder, "big", _units("big", store)) if store else 0.0
            _settle(db)  # the fill's writes reach disk now, not inside the timed sync
        finally:
            db.close()
        started = time.perf_counter()
        db = open_database(url)
        try:
            _sync(db, folder, "new", _units("new", SYNC_UNITS))
        finally:
            db.close()
        return fill, time.perf_counter() - started


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=int, default=150_000, help="units stored beside (default 150,000)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    met = True
    for kind in args.databases.split(","):
        empty = min(phase(kind, 0, args.postgres_url)[1] for _ in range(args.repeat))
        runs = [phase(kind, args.store, args.postgres_url) for _ in range(args.repeat)]
        beside = min(seconds for _, seconds in runs)
        ratio = beside / empty
        met &= ratio <= TARGET
        print(
            f"{kind:10} {SYNC_UNITS:,} units: empty store {empty:6.2f} s, beside {args.store:,} "
            f"(first sync {min(f for f, _ in runs):6.1f} s) {beside:6.2f} s: {ratio:.2f}x "
            f"({'met' if ratio <= TARGET else 'NOT met'}, target <= {TARGET}x)"
        )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
