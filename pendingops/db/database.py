"""Opening a database and running blocking work off the event loop.

The database layer knows nothing of plugins: whoever opens a database hands it the migration
branches its schema is checked against. ``pendingops.open_database`` (in ``pendingops.plugins.database``)
hands the core's and every installed plugin's.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from pendingops.db.errors import DatabaseError, DatabaseUnreachable
from pendingops.db.urls import mask_password, password_of

if TYPE_CHECKING:
    from pendingops.db.migrations.branches import Branch

T = TypeVar("T")

#: bound variables per statement we allow ourselves; SQLite >= 3.32 accepts 32766, PostgreSQL 65535
_SQLITE_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_POSTGRES_MAX_PARAMS = 65535
#: index entries SQLite's ANALYZE reads per index (``PRAGMA analysis_limit``): enough for the planner
SQLITE_ANALYSIS_LIMIT = 1000
#: WAL pages (4 KiB each: 40 MiB) a commit may leave before it checkpoints them into the database
#: (``PRAGMA wal_autocheckpoint``; SQLite's default is 1000). Beside a large store each batch dirties
#: pages all over its random-keyed indexes, so at 1000 nearly every batch's commit copied them back and
#: synced the file: a sync beside 150,000 units spent more in those checkpoints than in its statements.
#: Fewer, larger checkpoints copy a page that several batches changed once.
SQLITE_WAL_AUTOCHECKPOINT = 10_000
#: the size a checkpointed WAL file is cut back to (``PRAGMA journal_size_limit``): the larger
#: checkpoint interval lets it grow to about 40 MB, which it need not keep on disk between syncs
SQLITE_WAL_SIZE_LIMIT = 16 * 1024 * 1024


class Database:
    """An engine plus the single worker thread that runs every blocking statement of a sync.

    ``await db.run(fn, *args)`` calls ``fn(connection, *args)`` inside one transaction on the
    worker thread, so the event loop keeps downloading while a batch is written. ``branches``
    gives the migration branches the schema must be at (called when first needed).
    """

    def __init__(self, engine: Engine, branches: Callable[[], Sequence[Branch]]) -> None:
        self.engine = engine
        self._branches = branches
        self.dialect = engine.dialect.name
        self.max_params = _SQLITE_MAX_PARAMS if self.dialect == "sqlite" else _POSTGRES_MAX_PARAMS
        self._executor: ThreadPoolExecutor | None = None

    @property
    def max_params(self) -> int:
        """Bound variables one statement may carry; multi-row INSERTs are paged to fit it."""
        return self._max_params

    @max_params.setter
    def max_params(self, value: int) -> None:
        self._max_params = value
        self.engine.dialect.insertmanyvalues_max_parameters = value  # type: ignore[attr-defined]

    def migration_branches(self) -> list[Branch]:
        """The branches handed in at opening: the core's, and each plugin's that ships migrations."""
        return list(self._branches())

    def create_schema(self) -> None:
        """Create a new database (or a newly installed plugin's tables) at head; refuse an out-of-date one.

        Raises ``SchemaOutOfDate`` (a ``DatabaseError``) when a migration is pending: ``pendingops db
        upgrade`` applies it. See ``pendingops.db.migrations``.
        """
        from pendingops.db.migrations.check import ensure_schema

        ensure_schema(self.engine, self.migration_branches())

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args, **kwargs)`` in a transaction on the database thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pendingops-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self.transact, fn, *args, **kwargs))

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT, which has ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
        return dialect_insert(self.dialect, table)

    @staticmethod
    def insert_rows(conn: Connection, stmt: Any, rows: Sequence[dict[str, Any]], *returning: Any) -> list[Any]:
        """Run an INSERT over many rows as multi-row statements and return the ``returning`` rows.

        SQLAlchemy pages the rows into multi-row INSERTs sized to the bound-variable limit, from
        one cached statement; the RETURNING clause is what makes it do so on every driver (without
        it psycopg2 sends an ON CONFLICT insert once per row, and sqlite3 steps a plain one per row).
        """
        if not rows:
            return []
        return list(conn.execute(stmt.returning(*returning), rows))

    def insert_new(
        self, conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """INSERT ``rows`` (tuples of ``columns``) into ``table``, skipping rows a unique index already holds.

        Multi-row ``VALUES`` sent as the driver's own SQL, paged under the bound-variable limit: no
        statement compiled per page size and nothing returned, for writes that need neither.
        """
        mark = "?" if self.dialect == "sqlite" else "%s"
        one = "(" + ", ".join([mark] * len(columns)) + ")"
        head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
        for chunk in self.chunks(rows, len(columns)):
            flat = tuple(value for row in chunk for value in row)
            conn.exec_driver_sql(head + ", ".join([one] * len(chunk)) + " ON CONFLICT DO NOTHING", flat)

    def transact(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args, **kwargs)`` in a transaction on the calling thread."""
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    def rows_per_statement(self, columns: int, *, other_params: int = 0) -> int:
        """How many rows of ``columns`` bound values fit in one statement that binds ``other_params`` more."""
        return max(1, (self.max_params - other_params) // max(1, columns))

    def chunks(self, items: Sequence[T], columns: int, *, other_params: int = 0) -> Iterator[Sequence[T]]:
        """Split ``items`` so each chunk's statement stays under the bound-variable limit.

        ``columns`` is the values each item binds; ``other_params`` the statement's other bound values.
        """
        step = self.rows_per_statement(columns, other_params=other_params)
        for start in range(0, len(items), step):
            yield items[start : start + step]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.engine.dispose()


def connection_lost(exc: BaseException) -> str | None:
    """One line saying the database connection was lost (a restart, a failover), or None if it was not."""
    if not isinstance(exc, DBAPIError):
        return None
    # psycopg2 gives an error the server sent a SQLSTATE; one without is the client's own: the
    # connection broke or could not be made (the server is restarting).
    client_side = isinstance(exc, OperationalError) and getattr(exc.orig, "pgcode", "") is None
    if not (exc.connection_invalidated or client_side):
        return None
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection closed"
    # A server that refuses the connection itself (no such database or role, a wrong password)
    # will refuse it again: that is not an outage, unless it is starting, stopping or recovering.
    if "FATAL:" in reason and not any(phrase in reason for phrase in _TRANSIENT_REFUSALS):
        return None
    return f"database connection lost ({reason})"


#: what a PostgreSQL server says when it refuses connections for a while (SQLSTATE 57P01, 57P03, 53300)
_TRANSIENT_REFUSALS = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "terminating connection due to administrator command",
    "too many clients",
    "remaining connection slots are reserved",
)


def dialect_insert(dialect: str, table: Table) -> Any:
    """The INSERT of ``dialect`` ('sqlite' or 'postgresql'), which has ``on_conflict_do_nothing``."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def open_database(url: str, *, branches: Callable[[], Sequence[Branch]], create: bool = True) -> Database:
    """Open (and by default create the schema of) the database at ``url``, at the heads of ``branches``.

    A bare filesystem path is taken as an SQLite file. Raises ``DatabaseError`` with a one-line
    reason when the URL is malformed, the server cannot be reached, the file is not a database or
    its schema needs ``pendingops db upgrade``.
    """
    if "://" not in url:
        url = "sqlite:///" + os.path.abspath(url)
    shown, password = mask_password(url), password_of(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number...
        if password is None:
            raise DatabaseError(f"invalid database URL {shown!r}: {exc}") from None
        parsed = None
    if parsed is None or (password is not None and parsed.password != unquote(password)):
        # Parsed otherwise than here, pieces of the password would show in the driver's errors.
        raise DatabaseError(
            f"invalid database URL {shown!r}: expected dialect://user:password@host:port/database"
            " (an '@', ':' or '/' in the password must be percent-encoded: %40, %3A, %2F)"
        )
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed.render_as_string(hide_password=False), parsed.database)
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg2")
        engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    else:
        raise DatabaseError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:// or postgresql://")
    db = Database(engine, branches)
    if create:
        try:
            db.create_schema()
        except DBAPIError as exc:  # unreachable server, refused login, a file that is not a database...
            db.close()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            error = DatabaseUnreachable if connection_lost(exc) else DatabaseError
            raise error(f"cannot open database {parsed.render_as_string(hide_password=True)}: {reason}") from None
        except DatabaseError:  # the schema needs an upgrade (SchemaOutOfDate)
            db.close()
            raise
    return db


def _sqlite_engine(url: str, database: str | None) -> Engine:
    in_memory = database in (None, "", ":memory:")
    if not in_memory:
        folder = os.path.dirname(os.path.abspath(database or ""))
        if not os.path.isdir(folder):
            problem = "is not a folder" if os.path.exists(folder) else "does not exist"
            raise DatabaseError(f"cannot open database {url}: {folder} {problem}")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if in_memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Leave transaction control to SQLAlchemy's BEGIN, not pysqlite's implicit one.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
            cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "close")
    def _optimize(dbapi_conn: Any, _record: Any) -> None:
        # SQLite's own check of the statistics of the tables this connection used, bounded in time.
        try:
            dbapi_conn.execute(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
            dbapi_conn.execute("PRAGMA optimize")
        except Exception:  # a closing connection owes nothing more: the next one may do it
            pass

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Reads made outside a transaction (isolation_level="AUTOCOMMIT") take no write lock.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
