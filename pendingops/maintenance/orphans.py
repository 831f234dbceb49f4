"""Remove content no repository version references, then artifacts no content references."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, exists, select

from pendingops.db.database import Database
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


def remove_orphans(db: Database, storage: ArtifactStorage, *, dry_run: bool = False) -> OrphanReport:
    """Delete orphaned content and artifacts (rows, then files), in batches; report what went.

    Content is an orphan when no version of any repository (old ones included) holds it; an
    artifact is an orphan when no content unit links it. With ``dry_run`` nothing is deleted.
    """
    report = OrphanReport()
    last = 0
    while ids := db.transact(_orphan_content_ids, last):
        report.content += len(ids)
        last = ids[-1]
        if not dry_run:
            db.transact(_delete_content, ids)
    last = 0
    while rows := db.transact(_orphan_artifacts, last):
        report.artifacts += len(rows)
        report.bytes += sum(size for _, _, size in rows)
        last = rows[-1][0]
        if not dry_run:
            # Only the files of rows really deleted: a sync may have linked one meanwhile.
            for location in db.transact(_delete_artifacts, [row_id for row_id, _, _ in rows]):
                storage.delete(location)
    return report


def _orphan_content_ids(conn: Connection, after: int) -> list[int]:
    referenced = exists().where(_rc.c.content_id == _content.c.id)
    query = select(_content.c.id).where(_content.c.id > after, ~referenced).order_by(_content.c.id).limit(_BATCH)
    return list(conn.execute(query).scalars())


def _delete_content(conn: Connection, ids: list[int]) -> None:
    # Content types' own tables, ContentArtifacts and RemoteArtifacts go by ON DELETE CASCADE.
    conn.execute(delete(_content).where(_content.c.id.in_(ids), ~exists().where(_rc.c.content_id == _content.c.id)))


def _orphan_artifacts(conn: Connection, after: int) -> list[tuple[int, str, int]]:
    referenced = exists().where(_ca.c.artifact_id == _artifact.c.id)
    query = (
        select(_artifact.c.id, _artifact.c.location, _artifact.c.size)
        .where(_artifact.c.id > after, ~referenced)
        .order_by(_artifact.c.id)
        .limit(_BATCH)
    )
    return [tuple(row) for row in conn.execute(query)]


def _delete_artifacts(conn: Connection, ids: list[int]) -> list[str]:
    unreferenced = ~exists().where(_ca.c.artifact_id == _artifact.c.id)
    stmt = delete(_artifact).where(_artifact.c.id.in_(ids), unreferenced).returning(_artifact.c.location)
    return list(conn.execute(stmt).scalars())
