"""The comparison's temporary table (``pendingops.db.unchanged``): one per connection, empty after each transaction."""

from __future__ import annotations

from sqlalchemy import func, select

from pendingops.db.database import Database
from pendingops.db.unchanged import _temp_table, find_unchanged
from pendingops.plugins.file import FileContent


def _compare(conn, db: Database, rows: list[tuple]) -> list:
    return find_unchanged(conn, db, FileContent, rows, repository_id=1, remote_id=1, stored=True, declare_in=None)


def test_the_comparison_table_is_empty_after_each_transaction_on_its_connection(db: Database) -> None:
    temp = _temp_table(FileContent)
    # idx, artifacts, natural key (relative_path, sha256), one 0/1 per other field (size), then the artifact
    rows = [(i, 1, f"f{i}", "a" * 64, 1, f"f{i}", f"http://127.0.0.1:9/f{i}", "a" * 64, 1) for i in range(5)]
    with db.engine.connect() as conn:  # one connection throughout: the table outlives the transactions
        with conn.begin():
            assert _compare(conn, db, rows) == []  # an empty store: nothing unchanged
        with conn.begin():
            assert conn.execute(select(func.count()).select_from(temp)).scalar() == 0
            assert _compare(conn, db, rows[:2]) == []  # made already: the next batch reuses it
        with conn.begin():
            assert conn.execute(select(func.count()).select_from(temp)).scalar() == 0
