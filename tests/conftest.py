"""Shared fixtures: a database on SQLite and PostgreSQL, local storage, hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text

import pendingops.plugins.file  # noqa: F401 - registers the file content table before create_all
from pendingops import Database, LocalStorage, open_database
from pendingops.db.schema import Base

POSTGRES_URL = os.environ.get("PENDINGOPS_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "not reachable"
        return str(exc).splitlines()[0]


def require_postgres() -> None:
    """Skip, or fail when PENDINGOPS_REQUIRE_POSTGRES is set (CI), if PostgreSQL is down."""
    problem = _postgres_reachable()
    if problem is None:
        return
    message = f"PostgreSQL at {POSTGRES_URL} unreachable: {problem}"
    if os.environ.get("PENDINGOPS_REQUIRE_POSTGRES"):
        pytest.fail(message)
    pytest.skip(message)


def fresh_database(kind: str, tmp_path: Path) -> Database:
    """An empty database of ``kind`` ('sqlite' or 'postgresql') with the schema created."""
    if kind == "sqlite":
        return open_database(f"sqlite:///{tmp_path / 'pendingops.db'}")
    require_postgres()
    db = open_database(POSTGRES_URL, create=False)
    Base.metadata.drop_all(db.engine)
    db.create_schema()
    return db


DB_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db(db_kind: str, tmp_path: Path) -> Iterator[Database]:
    database = fresh_database(db_kind, tmp_path)
    yield database
    database.close()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")
