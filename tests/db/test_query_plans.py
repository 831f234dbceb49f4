"""Lookups and orphan checks are index probes: their cost follows the batch, not the store."""

from __future__ import annotations

from sqlalchemy import Index, inspect

from pendingops.db.lookups import _content, _stored_query
from pendingops.db.schema import Base, RepositoryContent
from pendingops.maintenance.orphans import _orphan_content_query
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


def test_a_database_missing_a_new_index_gets_it_when_opened(db):
    index = next(i for i in RepositoryContent.__table__.indexes if i.name == "repository_content_content")
    with db.engine.begin() as conn:
        Index.drop(index, conn)
    db.create_schema()
    with db.engine.connect() as conn:
        names = {i["name"] for i in inspect(conn).get_indexes(RepositoryContent.__tablename__)}
    assert index.name in names
    assert Base.metadata.tables["repository_content"] is RepositoryContent.__table__


def test_sqlite_plans_search_indexes_instead_of_scanning(tmp_path):
    """SQLite's own plans (PostgreSQL's depend on table statistics; its RESTRICT check is the index above)."""
    db = fresh_database("sqlite", tmp_path)
    try:
        lookup = _stored_query(1, 1).where(_content.c.content_type == "file", _content.c.key_digest.in_(["a" * 64]))
        plan = _plan(db, lookup)
        assert "SEARCH content USING COVERING INDEX" in plan and "key_digest=?" in plan, plan
        assert "SCAN" not in plan, plan
        plan = _plan(db, _orphan_content_query(0))
        assert "SEARCH repository_content USING INDEX repository_content_content (content_id=?)" in plan, plan
    finally:
        db.close()
