"""When each version of a repository was made, and by which sync runs (started, finished, remote)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from pendingops.db.schema import Remote, RepositoryVersion, SyncRun
from pendingops.db.versions import find_repository

_version = RepositoryVersion.__table__
_run = SyncRun.__table__
_remote = Remote.__table__


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A sync run that made a version: when it started and finished, from which remote, in which mode."""

    started: datetime
    finished: datetime | None
    remote: str | None
    mirror: bool

    def as_json(self) -> dict[str, object]:
        return {
            "started": iso(self.started),
            "finished": iso(self.finished),
            "remote": self.remote,
            "mirror": self.mirror,
        }


@dataclass(slots=True)
class VersionHistory:
    created: datetime
    runs: list[RunRecord] = field(default_factory=list)


def version_history(conn: Connection, repository: str) -> dict[int, VersionHistory]:
    """Each complete version's creation time and the sync runs that made it, by version number."""
    repo_id = find_repository(conn, repository)
    found = {
        number: VersionHistory(created)
        for number, created in conn.execute(
            select(_version.c.number, _version.c.created_at).where(
                _version.c.repository_id == repo_id, _version.c.complete
            )
        )
    }
    runs = (
        select(_run.c.version_number, _run.c.started_at, _run.c.finished_at, _remote.c.name, _run.c.mirror)
        .outerjoin(_remote, _remote.c.id == _run.c.remote_id)
        .where(_run.c.repository_id == repo_id, _run.c.version_number.is_not(None))
        .order_by(_run.c.id)
    )
    for number, started, finished, remote, mirror in conn.execute(runs):
        if number in found:
            found[number].runs.append(RunRecord(started, finished, remote, mirror))
    return found


def iso(when: datetime | None) -> str | None:
    """ISO 8601 in UTC, to the second (SQLite gives naive UTC values back)."""
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def shown(when: datetime | None) -> str:
    """A timestamp for tables: ``2026-11-28 16:45:39`` (UTC), or ``-``."""
    text = iso(when)
    return text.replace("T", " ").removesuffix("Z") if text else "-"
