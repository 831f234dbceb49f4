"""The run record of a sync (its ``sync_runs`` row and progress reports) and the remote-unchanged
shortcut, which is decided from the previous run's record.

A run that completed without problems records the digest of the remote index it read and of the
settings it ran with; the next run that reads the same index with the same settings, the repository
still at the version that run left, ends at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from pendingops.db import private_destinations
from pendingops.db.schema import ProgressReport, SyncRun
from pendingops.db.versions import VersionInfo, discard_version, finish_version, version_info
from pendingops.run.current import Sync


class RunRecord:
    """One sync's run record, and what it needs to decide the shortcut."""

    def __init__(self) -> None:
        self.id = 0
        #: the sync ended at once (see ``index_unchanged``)
        self.remote_unchanged = False
        self.settings_digest: str | None = None
        self.index_digest: str | None = None
        self.force = False
        #: (state, index digest, settings digest, latest version) of the repository's previous run
        self.previous: tuple[Any, ...] | None = None

    # -- the remote-unchanged shortcut ----------------------------------------------------------

    def allow_shortcut(self, settings_digest: str, *, force: bool = False) -> None:
        """Let the sync end at once when the remote's index is unchanged (see ``index_unchanged``)."""
        self.settings_digest = settings_digest
        self.force = force

    def index_unchanged(self, index_digest: str, base_number: int | None) -> bool:
        """Note the digest of the index the source read; True when the sync ends here.

        ``base_number`` is the version the new one builds on (None: no version started). It ends
        when the shortcut is allowed without ``force`` and the previous run completed without
        problems, read the same index with the same settings, and left the repository at the version
        that is still its latest. The previous run was read when this one was recorded: no statement.
        """
        if self.settings_digest is None or base_number is None:
            return False
        self.index_digest = index_digest
        if self.force:
            return False
        expected = ("completed", index_digest, self.settings_digest, base_number)
        self.remote_unchanged = self.previous == expected
        return self.remote_unchanged

    # -- the record ------------------------------------------------------------------------------

    def start(self, conn: Any, repository_id: int, remote_id: int, mirror: bool) -> int:
        """Record this run and return its id (the caller keeps it in ``id`` once committed), after
        reading the previous one (for ``index_unchanged``); runs of the repository still marked
        running ended unrecorded (the caller holds its lock)."""
        table = SyncRun.__table__
        conn.execute(
            table.update()
            .where(table.c.repository_id == repository_id, table.c.state == "running")
            .values(
                state="failed",
                error="ended without recording its outcome (killed, or the database was lost); no new version",
                finished_at=datetime.now(UTC),
            )
        )
        previous = conn.execute(
            select(table.c.state, table.c.index_digest, table.c.settings_digest, table.c.latest_version)
            .where(table.c.repository_id == repository_id)
            .order_by(table.c.id.desc())
            .limit(1)
        ).first()
        self.previous = None if previous is None else tuple(previous)
        return conn.execute(
            table.insert()
            .values(repository_id=repository_id, remote_id=remote_id, mirror=mirror, state="running")
            .returning(table.c.id)
        ).scalar_one()

    def complete(self, conn: Any, sync: Sync) -> tuple[int, int, VersionInfo]:
        """Finish the sync's version and record the run, in one transaction: visible and recorded together."""
        assert sync.version is not None
        private_destinations.remember(conn, sync.repository_id, sync.remote.allow_private_destinations)
        if self.remote_unchanged:  # nothing was declared: the empty version goes
            discard_version(conn, sync.repository_id, sync.version)
            info = version_info(conn, sync.repository, sync.version.base_number)
            self.end(conn, sync, "completed", None, None, latest=info.number)
            return 0, 0, info
        added, removed = finish_version(conn, sync.repository_id, sync.version, mirror=sync.mirror)
        created = bool(added or removed)
        info = version_info(conn, sync.repository, sync.version.number if created else sync.version.base_number)
        self.end(conn, sync, "completed", info.number if created else None, None, removed=removed, latest=info.number)
        return added, removed, info

    def abandon(self, conn: Any, sync: Sync, error: str) -> None:
        """Discard the sync's version (downloaded artifacts stay) and record why, in one transaction."""
        assert sync.version is not None
        discard_version(conn, sync.repository_id, sync.version)
        if self.id:
            self.end(conn, sync, "failed", None, error)

    def end(
        self,
        conn: Any,
        sync: Sync,
        state: str,
        number: int | None,
        error: str | None,
        *,
        removed: int = 0,
        latest: int | None = None,
    ) -> None:
        """Record how the run ended and its progress, in the caller's transaction."""
        runs = SyncRun.__table__
        # Only a run without problems may let the next one end at once: a unit that failed, or a
        # stored file found missing, is tried again by a full sync.
        clean = state == "completed" and not sync.failed_count and not sync.missing_files
        conn.execute(
            runs.update()
            .where(runs.c.id == self.id)
            .values(
                state=state,
                version_number=number,
                error=error,
                failed_units=sync.failed_count,
                finished_at=datetime.now(UTC),
                index_digest=self.index_digest if clean else None,
                settings_digest=self.settings_digest if clean else None,
                latest_version=latest,
                remote_unchanged=self.remote_unchanged and state == "completed",
            )
        )
        rows = [
            {
                "sync_run_id": self.id,
                "stage": name,
                "done": s.done + (removed if name == "removed" else 0),
                "total": s.total,
                "bytes": s.bytes,
            }
            for name, s in sync.progress.stages.items()
        ]
        conn.execute(ProgressReport.__table__.insert().values(rows))  # one multi-row statement

    def recorded_outcome(self, conn: Any, repository: str, base_number: int) -> tuple[int, int, VersionInfo] | None:
        """(added, removed, version) if this run was recorded as completed, None if it was not."""
        runs = SyncRun.__table__
        state, number = conn.execute(select(runs.c.state, runs.c.version_number).where(runs.c.id == self.id)).one()
        if state != "completed":
            return None
        info = version_info(conn, repository, base_number if number is None else number)
        return (info.added, info.removed, info) if number is not None else (0, 0, info)
