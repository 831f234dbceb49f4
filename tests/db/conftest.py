"""An SQLite database whose bound-variable limit is lowered, so batching bugs show with few rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from pendingops import Database, open_database

TIGHT_LIMIT = 999


@pytest.fixture
def tight_sqlite(tmp_path) -> Iterator[Database]:
    """A real SQLite database refusing statements with more than TIGHT_LIMIT bound variables."""
    db = open_database(f"sqlite:///{tmp_path / 'tight.db'}")
    db.engine.dispose()

    @event.listens_for(db.engine, "connect")
    def _limit(dbapi_conn, _record) -> None:
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, TIGHT_LIMIT)

    db.max_params = TIGHT_LIMIT
    marks = ",".join("?" * (TIGHT_LIMIT + 1))
    with db.engine.connect() as conn, pytest.raises(OperationalError, match="too many SQL variables"):
        conn.exec_driver_sql(f"SELECT 1 WHERE 1 IN ({marks})", tuple(range(TIGHT_LIMIT + 1)))
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    yield db
    db.close()
