"""Lookups and orphan checks are index probes: their cost follows the batch, not the store."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import inspect, text

from pendingops.db.lookups import _content, _stored_query
from pendingops.db.schema import RepositoryContent
from pendingops.maintenance.orphans import _orphan_artifacts_query, _orphan_content_query
from tests.conftest import fresh_database


def _plan(db, statement) -> str:
    with db.engine.connect() as conn:
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
        return "\n".join(str(row[-1]) for row in conn.exec_driver_sql(prefix + str(compiled)))


def test_repository_membership_is_indexed_by_content(db):
    """ON DELETE RESTRICT and "is this content in any repository?" both probe repository_content by content_id."""
    with db.engine.connect() as conn:
        indexes = inspect(conn).get_indexes(RepositoryContent.__tablename__)
    assert any(index["column_names"][0] == "content_id" for index in indexes), indexes


def test_sqlite_plans_search_indexes_instead_of_scanning(tmp_path):
    """SQLite's own plans (PostgreSQL's depend on table statistics; its RESTRICT check is the index above)."""
    db = fresh_database("sqlite", tmp_path)
    try:
        lookup = _stored_query(1, 1).where(_content.c.content_type == "file", _content.c.key_digest.in_(["a" * 64]))
        plan = _plan(db, lookup)
        assert "SEARCH content USING COVERING INDEX" in plan and "key_digest=?" in plan, plan
        assert "SCAN" not in plan, plan
        plan = _plan(db, _orphan_content_query(0, 1000))
        assert "INDEX repository_content_content (content_id=?)" in plan and "SCAN" not in plan, plan
    finally:
        db.close()


@pytest.mark.postgres
def test_postgresql_orphan_checks_probe_the_membership_index_per_window(tmp_path):
    """With 20,000 members and fresh statistics, a window's orphan check is an index probe per row;
    a hash anti-join would read every membership row once per window (quadratic cleanup)."""
    db = fresh_database("postgresql", tmp_path)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO repository (id, name, created_at) VALUES (1, 'r', now())"))
            conn.execute(
                text(
                    "INSERT INTO content (id, content_type, key_digest, created_at) "
                    "SELECT x, 'file', lpad(to_hex(x), 64, '0'), now() FROM generate_series(1, 40000) AS x"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO repository_content (repository_id, content_id, version_added) "
                    "SELECT 1, x, 1 FROM generate_series(1, 20000) AS x"
                )
            )
            conn.execute(text("ANALYZE"))
        for query in (_orphan_content_query(10000, 11000), _orphan_artifacts_query(10000, 11000, dry_run=True)):
            plan = _plan(db, query)
            assert "Seq Scan on repository_content" not in plan and "Anti Join" not in plan, plan
    finally:
        db.close()


@pytest.mark.postgres
def test_postgresql_lookups_probe_the_membership_index_without_statistics(tmp_path):
    """During a first sync nothing has analysed the tables yet (nor may autovacuum ever): a batch's
    lookup must still find each unit's membership by an index probe. Joined instead, the planner
    expects a handful of members and hashes all of them for every batch: a million-unit resync
    read the whole membership a thousand times."""
    db = fresh_database("postgresql", tmp_path)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO repository (id, name, created_at) VALUES (1, 'r', now())"))
            conn.execute(
                text(
                    "INSERT INTO content (id, content_type, key_digest, created_at) "
                    "SELECT x, 'file', lpad(to_hex(x), 64, '0'), now() FROM generate_series(1, 20000) AS x"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO repository_content (repository_id, content_id, version_added) "
                    "SELECT 1, x, 1 FROM generate_series(1, 20000) AS x"
                )
            )
        digests = [f"{x:064x}" for x in range(5000, 6000)]
        plan = _plan(
            db, _stored_query(1, 1).where(_content.c.content_type == "file", _content.c.key_digest.in_(digests))
        )
        lines = plan.splitlines()
        probes = [
            condition
            for line, condition in itertools.pairwise(lines)
            if "Index" in line and "on repository_content" in line and "Index Cond" in condition
        ]
        assert any("content_id = content.id" in condition for condition in probes), plan
        assert not [line for line in lines if "Filter" in line and "repository_content.content_id" in line], plan
    finally:
        db.close()
