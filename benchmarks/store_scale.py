"""Cost against the size of the store: lookups and orphan cleanup must follow the batch, not the store.

    .venv/bin/python benchmarks/store_scale.py                       # both phases, default sizes
    .venv/bin/python benchmarks/store_scale.py --lookup 0,100000,1000000 --orphans 10000,1000000

``lookup``: a store already holding N content rows of other units (filled with set-based SQL); then an
on_demand sync of 5,000 new units into an empty repository (nothing downloaded: the time is dedup,
save and associate). Flat in N when every lookup uses an index.

``orphans``: N content units in a repository plus N orphaned units; ``orphans --dry-run``, then the
real cleanup. Linear in N when "is this content in a repository?" is an index probe.

Each size runs in a fresh database (SQLite file; PostgreSQL database ``pendingops_store_bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pendingops import Database, LocalStorage, RemoteConfig, declarative_version, open_database
from pendingops.maintenance.orphans import remove_orphans
from pendingops.plugins import file as file_plugin

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/pendingops_store_bench"
URL = "http://127.0.0.1:9/PULP_MANIFEST"  # on_demand: never contacted
SYNC_UNITS = 5000


def _fresh(kind: str, folder: Path, postgres_url: str) -> Database:
    if kind == "sqlite":
        return open_database(f"sqlite:///{folder / 'store.db'}")
    url = make_url(postgres_url)
    admin = create_engine(url.set(drivername="postgresql+psycopg2", database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return open_database(postgres_url)


def _numbers(db: Database, first: int, count: int) -> str:
    """A SELECT of x = first .. first+count-1, in the database's own way."""
    if db.dialect == "postgresql":
        return f"SELECT x FROM generate_series({first}, {first + count - 1}) AS x"
    return (
        f"SELECT x FROM (WITH RECURSIVE n(x) AS (SELECT {first} UNION ALL SELECT x + 1 FROM n "
        f"WHERE x < {first + count - 1}) SELECT x FROM n)"
    )


def _hex(db: Database, column: str) -> str:
    if db.dialect == "postgresql":
        return f"lpad(to_hex({column}), 64, '0')"
    return f"printf('%064x', {column})"


def _fill_content(db: Database, first: int, count: int) -> None:
    """Content rows (with their file_content rows) ``first`` .. ``first+count-1``, set-based."""
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO content (id, content_type, key_digest, created_at) "
                f"SELECT x, 'file', {_hex(db, 'x')}, CURRENT_TIMESTAMP FROM ({_numbers(db, first, count)}) AS s"
            )
        )
        conn.execute(
            text(
                "INSERT INTO file_content (id, relative_path, sha256, size) "
                f"SELECT x, 'other/' || x, {_hex(db, 'x')}, 1 FROM ({_numbers(db, first, count)}) AS s"
            )
        )
        if db.dialect == "postgresql":
            conn.execute(text("SELECT setval('content_id_seq', (SELECT max(id) FROM content))"))
            conn.execute(text("ANALYZE"))
    _settle(db)


def _settle(db: Database) -> None:
    """Write the bulk fill out now, so no checkpoint of it lands inside a timed phase."""
    raw = db.engine.raw_connection()  # outside a transaction: SQLite refuses a checkpoint inside one
    try:
        raw.cursor().execute("CHECKPOINT" if db.dialect == "postgresql" else "PRAGMA wal_checkpoint(TRUNCATE)")
        raw.commit()
    finally:
        raw.close()


def _add_members(db: Database, repository: str, first: int, count: int) -> None:
    with db.engine.begin() as conn:
        add = text("INSERT INTO repository (name, created_at) VALUES (:n, CURRENT_TIMESTAMP)")
        conn.execute(add, {"n": repository})
        repo_id = conn.execute(text("SELECT id FROM repository WHERE name = :n"), {"n": repository}).scalar_one()
        conn.execute(
            text(
                "INSERT INTO repository_version (repository_id, number, complete, content_count, added_count, "
                f"removed_count, created_at) VALUES ({repo_id}, 0, true, 0, 0, 0, CURRENT_TIMESTAMP), "
                f"({repo_id}, 1, true, {count}, {count}, 0, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO repository_content (repository_id, content_id, version_added) "
                f"SELECT {repo_id}, x, 1 FROM ({_numbers(db, first, count)}) AS s"
            )
        )
        if db.dialect == "postgresql":
            conn.execute(text("ANALYZE"))
    _settle(db)


def _units(count: int) -> list:
    units = []
    for i in range(count):
        entry = file_plugin.ManifestEntry(i, f"new/{i:06d}.bin", f"{i:064x}", 1)
        units.append(file_plugin.file_unit(URL, entry))
    return units


def lookup_phase(kind: str, size: int, postgres_url: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        db = _fresh(kind, Path(folder), postgres_url)
        try:
            if size:
                _fill_content(db, 1, size)
            units = _units(SYNC_UNITS)
            started = time.perf_counter()
            result = asyncio.run(
                declarative_version(
                    units,
                    db=db,
                    storage=LocalStorage(Path(folder) / "storage"),
                    remote=RemoteConfig(url=URL, policy="on_demand"),
                    repository="new",
                )
            )
            elapsed = time.perf_counter() - started
            assert result.added == SYNC_UNITS, result
            return elapsed
        finally:
            db.close()


def orphans_phase(kind: str, size: int, postgres_url: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        db = _fresh(kind, Path(folder), postgres_url)
        try:
            _fill_content(db, 1, 2 * size)
            _add_members(db, "kept", 1, size)
            storage = LocalStorage(Path(folder) / "storage")
            started = time.perf_counter()
            dry = remove_orphans(db, storage, dry_run=True)
            dry_s = time.perf_counter() - started
            started = time.perf_counter()
            real = remove_orphans(db, storage)
            real_s = time.perf_counter() - started
            assert dry.content == real.content == size, (dry, real)
            return dry_s, real_s
        finally:
            db.close()


def _sizes(text_value: str) -> list[int]:
    return [int(part) for part in text_value.split(",") if part]


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookup", type=_sizes, default=_sizes("0,100000,1000000"), help="store sizes")
    parser.add_argument("--orphans", type=_sizes, default=_sizes("10000,100000,1000000"), help="orphan counts")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    for kind in args.databases.split(","):
        for size in args.lookup:
            seconds = lookup_phase(kind, size, args.postgres_url)
            print(f"{kind:10} lookup   store {size:>9,} rows: sync of {SYNC_UNITS:,} new units {seconds:7.2f} s")
        for size in args.orphans:
            dry_s, real_s = orphans_phase(kind, size, args.postgres_url)
            print(
                f"{kind:10} orphans  {size:>9,} orphans + {size:,} members: dry run {dry_s:7.2f} s, "
                f"cleanup {real_s:7.2f} s"
            )


if __name__ == "__main__":
    main()
