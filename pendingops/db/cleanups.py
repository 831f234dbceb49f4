"""The record of orphan cleanups: written by each cleanup, read by syncs.

A cleanup is recorded before it deletes anything. A sync that lost its store lock in an outage and
takes it again compares the latest record with the one it saw at its start: a newer one means files
it found stored may be gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import Connection, func, select

from pendingops.db.schema import StoreCleanup

_cleanup = StoreCleanup.__table__


def record_cleanup_start(conn: Connection) -> int:
    """Record that an orphan cleanup starts now; its id."""
    return conn.execute(_cleanup.insert().values(started_at=datetime.now(UTC)).returning(_cleanup.c.id)).scalar_one()


def record_cleanup_end(conn: Connection, cleanup_id: int, removed: Mapping[str, int]) -> None:
    """Record that cleanup ``cleanup_id`` ended; ``removed``: its content, artifacts, bytes and stray_files."""
    conn.execute(_cleanup.update().where(_cleanup.c.id == cleanup_id).values(finished_at=datetime.now(UTC), **removed))


def latest_cleanup(conn: Connection) -> int:
    """The id of the latest orphan cleanup that may have deleted something (0: none yet)."""
    return conn.execute(select(func.coalesce(func.max(_cleanup.c.id), 0))).scalar_one()
