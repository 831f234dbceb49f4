"""Planner statistics follow the data: a sync, a rollback, retention or an orphan cleanup that changed
a table by more than a tenth of what its statistics know (or 10,000 rows) analyses it; a small change
beside fresh statistics analyses nothing. Both databases, real syncs, no manual ANALYZE."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3

from sqlalchemy import text

from pendingops import LocalStorage, RemoteConfig, declarative_version
from pendingops.db.database import SQLITE_WAL_SIZE_LIMIT
from pendingops.db.lookups import _stored_query
from pendingops.db.statistics import refresh_statistics
from pendingops.maintenance.lifecycle import apply_retention, rollback
from pendingops.maintenance.orphans import remove_orphans
from pendingops.plugins import file as file_plugin
from tests.conftest import fresh_database

URL = "http://127.0.0.1:9/PULP_MANIFEST"  # on_demand: never contacted
STORE = 150_000


def _numbers(db, count: int) -> str:
    if db.dialect == "postgresql":
        return f"SELECT x FROM generate_series(1, {count}) AS x"
    counting = f"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {count})"
    return f"SELECT x FROM ({counting} SELECT x FROM n)"


def _fill(db, count: int) -> None:
    """``count`` stored file units, written by set-based SQL: no statistics gathered."""
    digest = "lpad(to_hex(x), 64, '0')" if db.dialect == "postgresql" else "printf('%064x', x)"
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO content (id, content_type, key_digest, created_at) "
                f"SELECT x, 'file', {digest}, CURRENT_TIMESTAMP FROM ({_numbers(db, count)}) AS s"
            )
        )
        conn.execute(
            text(
                "INSERT INTO file_content (id, relative_path, sha256, size) "
                f"SELECT x, 'other/' || x, {digest}, 1 FROM ({_numbers(db, count)}) AS s"
            )
        )
        if db.dialect == "postgresql":
            conn.execute(text("SELECT setval('content_id_seq', (SELECT max(id) FROM content))"))


def _sync(db, storage, repository: str, paths: list[str], *, mirror: bool = False):
    entries = [
        file_plugin.ManifestEntry(i, path, hashlib.sha256(f"{repository}/{path}".encode()).hexdigest(), 1)
        for i, path in enumerate(paths)
    ]
    units = [file_plugin.file_unit(URL, entry) for entry in entries]
    remote = RemoteConfig(url=URL, policy="on_demand")
    return asyncio.run(
        declarative_version(units, db=db, storage=storage, remote=remote, repository=repository, mirror=mirror)
    )


def _count(db, table: str) -> int:
    with db.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _known(db, table: str) -> float:
    """The rows the planner believes ``table`` holds: its estimate on PostgreSQL, sqlite_stat1 on SQLite."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            plan = conn.exec_driver_sql(f"EXPLAIN SELECT * FROM {table}").first()[0]
            return float(re.search(r"rows=(\d+)", plan)[1])
        if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
            return 0.0
        stats = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = ?", (table,)).scalars().all()
        return max((float(stat.split()[0]) for stat in stats), default=0.0)


def _estimated_file_units(db) -> float:
    """The planner's estimate of the content rows of type 'file' (all of them here)."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            plan = conn.exec_driver_sql("EXPLAIN SELECT id FROM content WHERE content_type = 'file'").first()[0]
            return float(re.search(r"rows=(\d+)", plan)[1])
    return _known(db, "content")


def test_a_sync_beside_a_large_unanalysed_store_leaves_the_planner_knowing_it(db, tmp_path):
    _fill(db, STORE)
    result = _sync(db, LocalStorage(tmp_path / "storage"), "new", [f"new/{i}" for i in range(50)])
    assert result.added == 50
    actual = _count(db, "content")
    assert actual == STORE + 50
    # PostgreSQL's sample gives the size within a tenth; SQLite's bounded ANALYZE (analysis_limit)
    # estimates it from a few pages: the same order, where no statistics at all plan for an empty table
    low = 0.9 if db.dialect == "postgresql" else 0.25
    for table in ("content", "file_content"):
        assert low * actual <= _known(db, table) <= 1.5 * actual, table
    assert low * actual <= _estimated_file_units(db) <= 1.5 * actual


def test_a_small_change_beside_fresh_statistics_analyses_nothing_a_large_one_does(db, tmp_path):
    _fill(db, 2000)
    assert refresh_statistics(db, {"content": 1, "file_content": 1, "no_such_table": 10**6}) == [
        "content",
        "file_content",
    ]  # nothing known yet: any change makes them stale
    tenth = int(_known(db, "content") / 10)  # a tenth of what the statistics know (SQLite's is an estimate)
    assert tenth >= 50
    assert refresh_statistics(db, {"content": tenth, "file_content": 0}) == []  # a tenth is not more
    assert refresh_statistics(db, {"content": tenth + 1}) == ["content"]
    assert refresh_statistics(db, {"content": 10_000}) == ["content"]  # whatever the size


def test_a_rollback_and_retention_refresh_the_membership_statistics(db, tmp_path):
    storage = LocalStorage(tmp_path / "storage")
    paths = [f"p/{i}" for i in range(400)]
    _sync(db, storage, "r", paths)  # version 1: 400 members, analysed
    assert _known(db, "repository_content") >= 360
    _sync(db, storage, "r", paths[:10], mirror=True)  # version 2: 390 removed (rows ended, none added)
    _sync(db, storage, "r", paths[:10] + [f"q/{i}" for i in range(20)])  # version 3
    rollback(db, "r", 1)  # version 4: 390 rows come back, 20 end
    assert 0.9 * _count(db, "repository_content") <= _known(db, "repository_content")
    apply_retention(db, "r", 1)  # only version 4 is kept: the rows of the others are rewritten or go
    actual = _count(db, "repository_content")
    assert 0.9 * actual <= _known(db, "repository_content") <= 1.1 * actual


def test_an_orphan_cleanup_refreshes_the_statistics_of_what_it_removed(db, tmp_path):
    storage = LocalStorage(tmp_path / "storage")
    _sync(db, storage, "r", [f"p/{i}" for i in range(300)])
    _sync(db, storage, "r", [f"p/{i}" for i in range(10)], mirror=True)
    apply_retention(db, "r", 1)  # 290 units in no version now
    assert remove_orphans(db, storage).content == 290
    actual = _count(db, "content")
    assert actual == 10
    assert _known(db, "content") <= 1.1 * actual + 1


def _lookup_plan(db, repository_id: int) -> str:
    """The plan of a batch lookup of 100 stored natural keys (``query_existing_content``'s statement)."""
    keys = ", ".join(f"'{x:064x}'" for x in range(1000, 1100))  # digests ``_fill`` stored
    query = _stored_query(1, repository_id).where(
        text("content.content_type = 'file'"), text(f"content.key_digest IN ({keys})")
    )
    with db.engine.connect() as conn:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        explain = "EXPLAIN " if db.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
        return "\n".join(str(row[-1]) for row in conn.exec_driver_sql(explain + sql))


def _repository_id(db, name: str) -> int:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM repository WHERE name = :n"), {"n": name}).scalar_one()


def test_after_the_first_sync_a_lookup_beside_the_store_probes_by_key_and_membership_by_content(db, tmp_path):
    """The plan check: 150,000 units written without statistics, then one small sync. The lookup of a
    batch finds its content by the whole natural key (without statistics PostgreSQL reads every 'file'
    entry of the key index and filters), and the membership probe goes through the content index,
    not through a (repository, ...) index that the statistics call empty for a repository they
    predate (which would walk all the repository's rows for every unit once it has grown)."""
    _fill(db, STORE)
    with db.engine.begin() as conn:  # all of it in one repository, as a first sync leaves it
        conn.execute(text("INSERT INTO repository (id, name, created_at) VALUES (1000, 'big', CURRENT_TIMESTAMP)"))
        conn.execute(
            text(
                "INSERT INTO repository_content (id, repository_id, content_id, version_added) "
                f"SELECT x, 1000, x, 1 FROM ({_numbers(db, STORE)}) AS s"
            )
        )
        if db.dialect == "postgresql":
            conn.execute(text("SELECT setval('repository_content_id_seq', (SELECT max(id) FROM repository_content))"))
    _sync(db, LocalStorage(tmp_path / "storage"), "other", [f"o/{i}" for i in range(50)])
    plan = _lookup_plan(db, 2000)  # a repository the statistics never saw
    if db.dialect == "postgresql":
        content_scan = re.search(r"on content +\(.*\n(?:.*\n)*?.*Index Cond: (.*)", plan)
        assert content_scan and "key_digest" in content_scan[1], plan
        membership = plan[plan.index("SubPlan") :]
        assert "repository_content_content" in membership and "repository_content_added" not in membership, plan
    else:
        assert "content_type=? AND key_digest=?" in plan, plan
        assert "SEARCH repository_content USING INDEX repository_content_content (content_id=?)" in plan, plan
    assert 0.25 * STORE <= _estimated_file_units(db) <= 1.5 * (STORE + 50)


def test_a_sqlite_connection_that_closes_runs_pragma_optimize(tmp_path):
    """Statistics SQLite finds missing for what a connection queried are gathered when it closes."""
    db = fresh_database("sqlite", tmp_path)
    try:
        _fill(db, 2000)
        with db.engine.connect() as conn:  # a query through a prefix of the natural key's index
            conn.execute(text("SELECT count(*) FROM content WHERE content_type = 'file'")).all()
    finally:
        db.close()
    raw = sqlite3.connect(tmp_path / "pendingops.db")
    try:
        tables = {table for (table,) in raw.execute("SELECT tbl FROM sqlite_stat1")}
    finally:
        raw.close()
    assert "content" in tables


def test_sqlite_batches_beside_a_store_leave_their_pages_to_one_later_checkpoint(tmp_path):
    """Batches that each dirty pages all over a random-keyed index are not checkpointed one by one
    (SQLite's default, every 1000 WAL pages, copied them back and synced the file at almost every
    commit beside a large store): the WAL keeps them, and closing the database checkpoints it."""
    db = fresh_database("sqlite", tmp_path)
    wal = tmp_path / "pendingops.db-wal"
    insert = text(
        "INSERT INTO content (content_type, key_digest, created_at) SELECT 'file', lower(hex(randomblob(32))), "
        f"CURRENT_TIMESTAMP FROM ({_numbers(db, 1000)}) AS s"
    )
    try:
        _fill(db, 20_000)
        outside = db.engine.execution_options(isolation_level="AUTOCOMMIT")  # no checkpoint inside a transaction
        with outside.connect() as conn:  # the store's own writes are in the database file
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        for _batch in range(20):
            with db.engine.begin() as conn:  # a batch's commit: at most a few hundred pages each
                conn.execute(insert)
        with outside.connect() as conn:
            busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    finally:
        db.close()
    # A checkpoint inside the batches would have restarted the WAL: fewer than 1000 frames plus a batch's.
    assert busy == 0 and frames == copied and frames > 2000, (busy, frames, copied)
    assert not wal.exists() or wal.stat().st_size == 0  # the last connection to close checkpointed the rest


def test_a_checkpointed_sqlite_wal_is_cut_back_to_its_size_limit(tmp_path):
    """The WAL may grow past SQLITE_WAL_SIZE_LIMIT between checkpoints (they are rarer), but once one
    has copied it back, the next write restarts it and the file shrinks to the limit."""
    db = fresh_database("sqlite", tmp_path)
    wal = tmp_path / "pendingops.db-wal"
    rows = text(
        "INSERT INTO content (content_type, key_digest, created_at) SELECT 'file', hex(randomblob(400)), "
        f"CURRENT_TIMESTAMP FROM ({_numbers(db, 1000)}) AS s"
    )
    try:
        for _batch in range(25):
            with db.engine.begin() as conn:
                conn.execute(rows)
        grown = wal.stat().st_size
        outside = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        with outside.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)")
        with db.engine.begin() as conn:  # the write that starts the WAL again from its beginning
            conn.execute(text("UPDATE content SET content_type = 'file' WHERE id = 1"))
        kept = wal.stat().st_size
    finally:
        db.close()
    assert grown > SQLITE_WAL_SIZE_LIMIT, grown
    assert kept <= SQLITE_WAL_SIZE_LIMIT, kept


def test_after_a_refresh_sqlite_connections_of_the_pool_plan_with_the_new_statistics(tmp_path):
    """SQLite loads statistics with the schema and ANALYZE does not make open connections reload it:
    a connection the pool kept from before the refresh would plan as if there were none."""
    db = fresh_database("sqlite", tmp_path)
    query = "EXPLAIN QUERY PLAN SELECT id FROM content WHERE content_type = 'file' AND id > 1990"
    try:
        _fill(db, 2000)
        engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")  # reads: no write lock each
        with engine.connect() as one, engine.connect() as other:  # both stay in the pool
            before = str(one.exec_driver_sql(query).all()) + str(other.exec_driver_sql(query).all())
        assert refresh_statistics(db, {"content": 2000}) == ["content"]  # on one of them
        with engine.connect() as one, engine.connect() as other:
            after = str(one.exec_driver_sql(query).all()) + str(other.exec_driver_sql(query).all())
    finally:
        db.close()
    assert "content_type=?" in before  # without statistics: the type's index looks selective
    assert "content_type=?" not in after, after  # with them: every unit is a file, the id range wins
