"""What sync runs record for the remote-unchanged shortcut (see ``SyncRun``), and forgetting it."""

from __future__ import annotations

from sqlalchemy import Connection, update

from pendingops.db.schema import SyncRun

_run = SyncRun.__table__


def forget_indexes(conn: Connection) -> None:
    """Make the next sync of every repository run whole, whatever index it reads.

    For when stored content changed under the versions (an artifact quarantined): the shortcut
    would otherwise skip the sync that fetches it again. One statement.
    """
    conn.execute(update(_run).where(_run.c.index_digest.is_not(None)).values(index_digest=None))
