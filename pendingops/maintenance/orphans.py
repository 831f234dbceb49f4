"""Remove content no repository version references, then artifacts no content references."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Connection, Select, and_, delete, exists, select

from pendingops.db.database import Database
from pendingops.db.locks import StoreLock
from pendingops.db.schema import Artifact, Content, ContentArtifact, RepositoryContent
from pendingops.storage.base import ArtifactStorage

_content = Content.__table__
_rc = RepositoryContent.__table__
_ca = ContentArtifact.__table__
_artifact = Artifact.__table__
_BATCH = 1000


@dataclass(slots=True)
class OrphanReport:
    content: int = 0
    artifacts: int = 0
    bytes: int = 0
    #: files in storage with no Artifact row (downloads of syncs that failed before saving them)
    stray_files: int = 0


def remove_orphans(db: Database, storage: ArtifactStorage, *, dry_run: bool = False) -> OrphanReport:
    """Delete orphaned content and artifacts (rows, then files), in batches; report what went.

    Content is an orphan when no version of any repository (old ones included) holds it; an
    artifact is an orphan when no content unit links it; a stored file is stray when no artifact
    row records it. It waits for running syncs to finish and holds new ones back meanwhile, so it
    never removes what a sync has found and is about to use. With ``dry_run`` nothing is deleted.
    """
    with StoreLock(db, shared=False):
        return _remove_orphans(db, storage, dry_run)


def _remove_orphans(db: Database, storage: ArtifactStorage, dry_run: bool) -> OrphanReport:
    report = OrphanReport()
    last = 0
    while ids := db.transact(_orphan_content_ids, last):
        report.content += len(ids)
        last = ids[-1]
        if not dry_run:
            db.transact(_delete_content, ids)
    last = 0
    while rows := db.transact(_orphan_artifacts, last, dry_run):
        report.artifacts += len(rows)
        report.bytes += sum(size for _, _, size in rows)
        last = rows[-1][0]
        if not dry_run:
            # Only the files of rows really deleted: a sync may have linked one meanwhile.
            for location in db.transact(_delete_artifacts, [row_id for row_id, _, _ in rows]):
                storage.delete(location)
    locations = storage.iter_locations()
    while chunk := tuple(islice(locations, _BATCH)):
        known = db.transact(_recorded_locations, chunk)
        for location in chunk:
            if location not in known:
                report.stray_files += 1
                if not dry_run:
                    storage.delete(location)
    return report


def _recorded_locations(conn: Connection, locations: tuple[str, ...]) -> set[str]:
    query = select(_artifact.c.location).where(_artifact.c.location.in_(locations))
    return set(conn.execute(query).scalars())


def _orphan_content_query(after: int) -> Select[tuple[int]]:
    referenced = exists().where(_rc.c.content_id == _content.c.id)
    return select(_content.c.id).where(_content.c.id > after, ~referenced).order_by(_content.c.id).limit(_BATCH)


def _orphan_content_ids(conn: Connection, after: int) -> list[int]:
    return list(conn.execute(_orphan_content_query(after)).scalars())


def _delete_content(conn: Connection, ids: list[int]) -> None:
    # Content types' own tables, ContentArtifacts and RemoteArtifacts go by ON DELETE CASCADE.
    conn.execute(delete(_content).where(_content.c.id.in_(ids), ~exists().where(_rc.c.content_id == _content.c.id)))


def _orphan_artifacts(conn: Connection, after: int, dry_run: bool) -> list[tuple[int, str, int]]:
    """The next batch of artifacts no content links; in a dry run, no content that stays links.

    A dry run deleted no orphaned content, so artifacts only that content links count as orphans
    too: the dry run reports what the real run removes.
    """
    links = _ca.c.artifact_id == _artifact.c.id
    if dry_run:
        links = and_(links, exists().where(_rc.c.content_id == _ca.c.content_id))
    query = (
        select(_artifact.c.id, _artifact.c.location, _artifact.c.size)
        .where(_artifact.c.id > after, ~exists().where(links))
        .order_by(_artifact.c.id)
        .limit(_BATCH)
    )
    return [tuple(row) for row in conn.execute(query)]


def _delete_artifacts(conn: Connection, ids: list[int]) -> list[str]:
    unreferenced = ~exists().where(_ca.c.artifact_id == _artifact.c.id)
    stmt = delete(_artifact).where(_artifact.c.id.in_(ids), unreferenced).returning(_artifact.c.location)
    return list(conn.execute(stmt).scalars())
