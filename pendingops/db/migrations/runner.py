"""Upgrade, downgrade and report the schema through Alembic, under the locks that keep syncs out.

``db upgrade`` takes the store lock exclusively (running syncs and orphan cleanup finish first, new
ones wait), then runs every pending revision of every branch in one transaction holding the schema
lock (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE), so two upgrades at once take turns
and the second finds nothing to do. On SQLite, foreign keys are off while tables are rebuilt
(batch mode copies them) and checked before commit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pendingops.db.database import Database
from pendingops.db.locks import StoreLock
from pendingops.db.migrations import drift
from pendingops.db.migrations.branches import Branch
from pendingops.db.migrations.check import (
    SchemaOutOfDate,
    SchemaState,
    create_at_head,
    lock_schema,
    record,
    schema_state,
)

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass(slots=True)
class Outcome:
    """What an upgrade or downgrade did: the revisions before and after, and whether it created tables."""

    before: dict[str, str | None]
    after: dict[str, str | None]
    created: list[str]


def alembic_config(conn: Connection, branches: list[Branch]) -> Any:
    """An Alembic ``Config`` over every branch's revision folder, running on ``conn``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", HERE)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(b.location) for b in branches))
    config.attributes["connection"] = conn
    return config


@contextmanager
def migration_connection(db: Database) -> Iterator[Connection]:
    """A connection for schema changes: on SQLite with foreign keys off, checked before commit."""
    with db.engine.connect() as conn:
        if db.dialect != "sqlite":
            yield conn
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")  # only takes effect outside a transaction: before BEGIN
        try:
            yield conn
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


@contextmanager
def exclusive(db: Database, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the store lock exclusively: no sync or orphan cleanup runs meanwhile."""
    lock = StoreLock(db, shared=False)
    if not lock.acquire_blocking(False):
        if on_wait is not None:
            on_wait()
        lock.acquire_blocking(True)
    try:
        yield
    finally:
        lock.release()


class UnknownRevision(SchemaOutOfDate):
    """A downgrade or upgrade target no installed branch has (bad input: exit 2)."""


@contextmanager
def _revision_named(target: str) -> Iterator[None]:
    """Turn Alembic's complaint about ``target`` (no such revision or branch, too far back) into one line."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        yield
    except (CommandError, RevisionError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnknownRevision(
            f"no revision {target!r} to go to ({reason}); 'pendingops db status' lists the branches and revisions"
        ) from None


def _revisions(state: SchemaState) -> dict[str, str | None]:
    return {b.branch.name: b.current if b.state != "unversioned" else None for b in state.branches}


def _check_foreign_keys(db: Database, conn: Connection) -> None:
    if db.dialect == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise SchemaOutOfDate(f"the migration left {len(broken)} row(s) with broken foreign keys; nothing changed")


def upgrade(db: Database, *, on_wait: Callable[[], None] | None = None) -> Outcome:
    """Bring every branch ``db`` was opened with to head; stamp a database made before migrations first."""
    branches = db.migration_branches()
    with exclusive(db, on_wait), migration_connection(db) as conn, conn.begin():
        lock_schema(conn)
        state = schema_state(conn, branches)
        before = _revisions(state)
        if state.newer:
            raise SchemaOutOfDate(state.problem())
        created: list[str] = []
        if not state.creatable:
            # tables made before migrations: each such branch is at its first revision
            record(conn, branches, {b.current for b in state.branches if b.state == "unversioned" and b.current})
            from alembic import command

            with _revision_named("heads"):
                command.upgrade(alembic_config(conn, branches), "heads")
            state = schema_state(conn, branches)
        if state.creatable:
            created = [b.branch.name for b in state.branches if b.state == "missing"]
            create_at_head(conn, state)  # new branches, and tables of content types without migrations
        _check_foreign_keys(db, conn)
        return Outcome(before, _revisions(state), created)


def downgrade(db: Database, target: str) -> Outcome:
    """Go back to ``target`` (Alembic syntax: ``core_0001``, ``file@-1``...), where the revisions allow it."""
    from alembic import command

    branches = db.migration_branches()
    with exclusive(db), migration_connection(db) as conn, conn.begin():
        lock_schema(conn)
        state = schema_state(conn, branches)
        if not state.versioned or any(b.state == "unversioned" for b in state.branches):
            raise SchemaOutOfDate(state.problem())
        before = _revisions(state)
        with _revision_named(target):
            command.downgrade(alembic_config(conn, branches), target)
        _check_foreign_keys(db, conn)
        after = _revisions(schema_state(conn, branches))
    return Outcome(before, after, [])


def status(db: Database) -> dict[str, Any]:
    """The database's revisions against the installed ones, as a JSON-ready dict."""
    branches = db.migration_branches()
    with db.engine.connect() as conn:
        state = schema_state(conn, branches)
        # drift matters once every branch is at head (a pending revision may be the one adding the column)
        drifts = drift.compare(conn, branches) if state.up_to_date else []
    problem = state.problem() if not state.up_to_date else drift.problem(drifts) if drifts else None
    return {
        "database": db.engine.url.render_as_string(hide_password=True),
        "versioned": state.versioned,
        "up_to_date": state.up_to_date and not drifts,
        "problem": problem,
        "drift": [d.as_json() for d in drifts],
        "branches": [
            {
                "name": b.branch.name,
                "current": b.current if b.state != "unversioned" else None,
                "head": b.branch.head,
                "state": b.state,
                "pending": [{"revision": r.id, "description": r.description} for r in b.branch.pending(b.current)],
            }
            for b in state.branches
        ],
        "unknown_revisions": state.unknown,
    }


__all__ = ["Outcome", "UnknownRevision", "alembic_config", "downgrade", "status", "upgrade"]
