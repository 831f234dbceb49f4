"""Whether a repository's fetches may reach private addresses (``sync --allow-private-destinations``).

A repository remembers what its last successful sync ran with: a later sync without the flag (by
hand, queued or scheduled) runs with it, and so does every fetch made for the repository outside a
sync: serve's on_demand and streamed files, export's fetch of files not stored yet, and
``verify --repair`` (which allows an artifact what any repository holding it allows).
"""

from __future__ import annotations

from sqlalchemy import Connection, exists, select, update

from pendingops.db.database import Database
from pendingops.db.schema import ContentArtifact, Repository, RepositoryContent

_repo = Repository.__table__
_ca = ContentArtifact.__table__
_rc = RepositoryContent.__table__


def remember(conn: Connection, repository_id: int, allowed: bool) -> None:
    """Record what a successful sync of the repository ran with (in the sync's finishing transaction)."""
    conn.execute(update(_repo).where(_repo.c.id == repository_id).values(allow_private_destinations=allowed))


def for_sync(db: Database, repository: str, given: bool | None) -> bool:
    """What a sync runs with: ``given``, or (None) what the repository remembers (False for a new one)."""
    if given is not None:
        return given
    with db.engine.connect() as conn:
        found = conn.execute(select(_repo.c.allow_private_destinations).where(_repo.c.name == repository)).scalar()
    return bool(found)


def for_repository(conn: Connection, repository_id: int) -> bool:
    query = select(_repo.c.allow_private_destinations).where(_repo.c.id == repository_id)
    return bool(conn.execute(query).scalar())


def for_artifact(conn: Connection, artifact_id: int) -> bool:
    """True when a repository that holds (or held) content of the stored artifact allows private addresses."""
    holders = (
        select(_rc.c.repository_id)
        .join(_ca, _ca.c.content_id == _rc.c.content_id)
        .where(_ca.c.artifact_id == artifact_id)
    )
    query = select(exists().where(_repo.c.id.in_(holders), _repo.c.allow_private_destinations))
    return bool(conn.execute(query).scalar())
