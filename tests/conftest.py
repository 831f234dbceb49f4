"""Shared fixtures: a database on SQLite and PostgreSQL, local storage, hypothesis profiles."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import CheckConstraint, Integer, Text, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from pendingops import Database, LocalStorage, PendingContent, RemoteConfig, declarative_version, open_database
from pendingops.db.schema import Artifact, Content, RepositoryContent
from pendingops.db.versions import find_repository, latest_version, list_versions, membership_filter
from pendingops.plugins import file as file_plugin  # registers the file content table before create_all
from pendingops.storage.base import ArtifactStorage
from pendingops.storage.s3 import S3Storage
from tests.cutting_proxy import FaultProxy
from tests.s3_server import AWS_ENV, moto_server, new_bucket

#: the PostgreSQL server under test; each test session works in its own scratch database on it
POSTGRES_SERVER = os.environ.get("PENDINGOPS_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
POSTGRES_URL = (
    make_url(POSTGRES_SERVER).set(database=f"pendingops_test_{os.getpid()}").render_as_string(hide_password=False)
)
_created_postgres_db = False

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _postgres_reachable() -> str | None:
    """Create this session's scratch database on first use; say why not if the server is down."""
    global _created_postgres_db
    if _created_postgres_db:
        return None
    try:
        engine = create_engine(POSTGRES_SERVER, connect_args={"connect_timeout": 3}, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            name = make_url(POSTGRES_URL).database
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        _created_postgres_db = True
        return None
    except Exception as exc:  # any failure means "not reachable"
        return str(exc).splitlines()[0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop this session's scratch PostgreSQL database."""
    if not _created_postgres_db:
        return
    engine = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        name = make_url(POSTGRES_URL).database
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


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
    with db.engine.begin() as conn:  # tables of plugins this process never imported go too
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.create_schema()
    return db


def second_database(db: Database) -> Database:
    """Another engine (and database thread) on ``db``'s database, as another process would have."""
    return open_database(db.engine.url.render_as_string(hide_password=False), create=False)


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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of moto's S3 server, started once for the test session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The standard AWS settings pointing at the test server; returns its endpoint."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    return s3_endpoint


@pytest.fixture
def s3_url(s3_env: str) -> str:
    """``s3://BUCKET/PREFIX`` of a new, empty bucket on the test server."""
    return f"s3://{new_bucket(s3_env)}/pendingops/test"


@pytest.fixture
def s3_storage(s3_url: str, tmp_path: Path) -> Iterator[S3Storage]:
    storage = S3Storage(s3_url, tmp_path / "staging", part_size=5 * 1024 * 1024)
    yield storage
    storage.close()


@pytest.fixture
def faulty_s3(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A FaultProxy in front of the S3 test server, which the AWS settings now point at; timeouts of 1 s."""
    port = urlsplit(s3_env).port
    assert port is not None
    with FaultProxy(port) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("PENDINGOPS_S3_CONNECT_TIMEOUT", "1")
        monkeypatch.setenv("PENDINGOPS_S3_READ_TIMEOUT", "1")
        yield proxy


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStorage]:
    """Each storage backend in turn: local, then S3 on moto's server."""
    if request.param == "local":
        yield LocalStorage(tmp_path / "storage")
    else:
        yield request.getfixturevalue("s3_storage")


# -- helpers shared by the core tests ---------------------------------------------------------------


class StrictContent(Content):
    """A test content type without artifacts; the database refuses a negative ``value``."""

    __tablename__ = "test_strict_content"
    type_name = "test-strict"
    natural_key = ("name",)
    name: Mapped[str] = mapped_column(Text)
    value: Mapped[int] = mapped_column(Integer, CheckConstraint("value >= 0", name="test_strict_value"))


def file_unit(manifest_url: str, relative_path: str, data: bytes) -> PendingContent:
    """The file plugin's unit for a file holding ``data``, listed in the manifest at ``manifest_url``."""
    entry = file_plugin.ManifestEntry(0, relative_path, hashlib.sha256(data).hexdigest(), len(data))
    return file_plugin.file_unit(manifest_url, entry)


def file_units(manifest_url: str, files: dict[str, bytes]) -> list[PendingContent]:
    return [file_unit(manifest_url, path, data) for path, data in sorted(files.items())]


def file_set(files: dict[str, bytes]) -> set[tuple[str, str]]:
    """The (relative_path, sha256) pairs a version syncing ``files`` holds."""
    return {(path, hashlib.sha256(data).hexdigest()) for path, data in files.items()}


def sync_served(
    db: Database, storage: LocalStorage, server: Any, pipeline: Any, files: dict[str, bytes], **options: Any
) -> Any:
    """Start ``server`` (a RemoteServer), sync ``files`` from it through ``pipeline``, return the result."""

    async def scenario() -> Any:
        async with server:
            units = file_units(server.manifest_url, files)
            return await declarative_version(
                units,
                db=db,
                storage=storage,
                remote=RemoteConfig(url=server.manifest_url),
                repository="r",
                pipeline=pipeline,
                batch_wait=0.01,
                **options,
            )

    return asyncio.run(scenario())


def version_content(db: Database, repository: str, number: int | None = None) -> set[tuple[str, str]]:
    """(relative_path, sha256) of every file in a version (the latest complete one by default)."""
    files = file_plugin.FileContent.__table__
    rc = RepositoryContent.__table__
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, repository)
        if number is None:
            number = latest_version(conn, repo_id)
        query = (
            select(files.c.relative_path, files.c.sha256)
            .join(rc, rc.c.content_id == files.c.id)
            .where(membership_filter(repo_id, number))
        )
        rows = conn.execute(query).all()
    pairs = {(path, digest) for path, digest in rows}
    assert len(pairs) == len(rows), "a content unit is in the version twice"
    return pairs


def version_numbers(db: Database, repository: str) -> list[int]:
    """The numbers of the repository's complete versions."""
    with db.engine.connect() as conn:
        return [v.number for v in list_versions(conn, repository)]


def count_rows(db: Database, table: Any, *, distinct: Any = None) -> int:
    """Rows of ``table`` (a mapped class or Table), or distinct values of column ``distinct``."""
    table = getattr(table, "__table__", table)
    expr = func.count(func.distinct(distinct)) if distinct is not None else func.count()
    with db.engine.connect() as conn:
        return conn.execute(select(expr).select_from(table)).scalar_one()


def assert_no_duplicate_rows(db: Database) -> None:
    """No artifact is stored twice (by sha256), no content unit twice (by type and natural key)."""
    artifact, content = Artifact.__table__, Content.__table__
    files = file_plugin.FileContent.__table__
    assert count_rows(db, artifact) == count_rows(db, artifact, distinct=artifact.c.sha256)
    assert count_rows(db, content) == count_rows(
        db, content, distinct=content.c.content_type + ":" + content.c.key_digest
    )
    with db.engine.connect() as conn:
        pairs = conn.execute(select(files.c.relative_path, files.c.sha256)).all()
    assert len(pairs) == len(set(pairs))


def executions(parameters: Any, many: bool) -> int:
    """Statements one cursor call runs: one per row for a DBAPI executemany over rows, else one.

    SQLAlchemy's multi-row INSERT pages arrive as one flat parameter set and count once.
    """
    rows = (
        many and isinstance(parameters, list | tuple) and parameters and isinstance(parameters[0], list | tuple | dict)
    )
    return len(parameters) if rows else 1


@contextmanager
def count_statements(db: Database) -> Iterator[list[str]]:
    """Record every SQL statement sent through ``db.engine`` while the block runs."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        # A DBAPI executemany over a list of rows runs once per row (psycopg2 sends each one).
        statements.extend([statement] * executions(parameters, many))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def compared_in_sql(statements: list[str]) -> bool:
    """Whether a resync's comparison (``unchanged``) ran: it reads its table of the declared units."""
    return any("FROM unchanged_" in s for s in statements)


def key_lookups(statements: list[str]) -> int:
    """Statements of the whole path's content lookup (dedup): none when the comparison settled every unit."""
    return sum(1 for s in statements if "key_digest IN" in s)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread, all released at once; return results (or the exceptions raised)."""
    barrier = threading.Barrier(len(calls))
    outcome: list[Any] = [None] * len(calls)

    def worker(index: int) -> None:
        barrier.wait()
        try:
            outcome[index] = calls[index]()
        except Exception as exc:  # handed back to the caller
            outcome[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def assert_artifacts_intact(db: Database, storage: LocalStorage) -> None:
    """Every stored artifact's bytes hash to its recorded sha256 and size; no download is left half done."""
    artifact = Artifact.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(select(artifact.c.sha256, artifact.c.size, artifact.c.location)).all()
    for sha256, size, location in rows:
        assert location == storage.location_for(sha256)
        with storage.open(location) as handle:
            data = handle.read()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha256, size)
    assert list((storage.root / "tmp").iterdir()) == []


def failed_paths(failures: list[Any]) -> list[str]:
    """The relative paths of failed file units, from their reports ("file PATH, SHA256")."""
    return [failure.unit.rsplit(", ", 1)[0].removeprefix("file ") for failure in failures]


#: the bound-variable limit of the ``tight_sqlite`` database
TIGHT_LIMIT = 999


@pytest.fixture
def tight_sqlite(tmp_path: Path) -> Iterator[Database]:
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
