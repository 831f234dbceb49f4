"""Remove content no repository version references, then artifacts no content references."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Select, Table, and_, delete, exists, func, select

from pendingops.db.cleanups import record_cleanup_end, record_cleanup_start
from pendingops.db.database import Database
from pendingops.db.locks import StoreLock
from pendingops.db.schema import Artifact, Content, ContentArtifact, RepositoryContent
from pendingops.db.statistics import refresh_statistics
from pendingops.storage.base import ArtifactStorage
from pendingops.storage.owner import Ownership, claim_storage

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
    #: temporary files and objects of dead syncs (never counted by a dry run)
    temp_files: int = 0
    #: stray files kept because another database may own them (written before this storage recorded its owner)
    kept_files: int = 0


def remove_orphans(db: Database, storage: ArtifactStorage, *, dry_run: bool = False) -> OrphanReport:
    """Delete orphaned content and artifacts (rows, then files), in batches; report what went.

    Content is an orphan when no version of any repository (old ones included) holds it; an
    artifact is an orphan when no content unit links it; a stored file is stray when no artifact
    row records it, unless it was written before the storage recorded its owning database (another
    database sharing the folder then may own it); temporary files and objects dead syncs left go too.
    A storage another database owns is refused (``StorageOwnedElsewhere``). It waits for running
    syncs to finish and holds new ones back meanwhile, so it never removes what a sync has found and
    is about to use. With ``dry_run`` nothing is deleted.
    """
    ownership = claim_storage(db, storage)
    with StoreLock(db, shared=False) as lock:
        if dry_run:
            return _remove_orphans(lock, storage, ownership, dry_run)
        # Recorded before anything is deleted: a sync that lost its store lock in an outage and
        # takes it again learns from this row that files it downloaded may be gone.
        cleanup_id = lock.transact(record_cleanup_start)
        report = _remove_orphans(lock, storage, ownership, dry_run)
        removed = {name: getattr(report, name) for name in ("content", "artifacts", "bytes", "stray_files")}
        lock.transact(record_cleanup_end, cleanup_id, removed)
    gone = {"content": report.content, "content_artifact": report.content, "remote_artifact": report.content}
    refresh_statistics(db, gone | {"artifact": report.artifacts})
    return report


def _remove_orphans(lock: StoreLock, storage: ArtifactStorage, ownership: Ownership, dry_run: bool) -> OrphanReport:
    # Every step runs on the lock's own session: a lost session stops the cleanup, never lets it
    # go on without the lock while a sync starts.
    report = OrphanReport()
    after = 0
    while (last := lock.transact(_window_end, _content, after)) is not None:
        ids = lock.transact(_orphan_content_ids, after, last)
        report.content += len(ids)
        if ids and not dry_run:
            lock.transact(_delete_content, ids)
        after = last
    after = 0
    while (last := lock.transact(_window_end, _artifact, after)) is not None:
        rows = lock.transact(_orphan_artifacts, after, last, dry_run)
        report.artifacts += len(rows)
        report.bytes += sum(size for _, _, size in rows)
        if rows and not dry_run:
            # Only the files of rows really deleted: a sync may have linked one meanwhile.
            for location in lock.transact(_delete_artifacts, [row_id for row_id, _, _ in rows]):
                storage.delete(location)
        after = last
    locations = storage.iter_locations()
    while chunk := tuple(islice(locations, _BATCH)):
        known = lock.transact(_recorded_locations, chunk)
        for location in chunk:
            if location in known:
                continue
            if ownership.may_be_foreign(storage, location):
                report.kept_files += 1
            else:
                report.stray_files += 1
                if not dry_run:
                    storage.delete(location)
    if not dry_run:
        report.temp_files = storage.remove_stale_temp_files()
    return report


def _none(column: Any, *where: Any) -> Any:
    """True where no row matches ``where``: a correlated probe per row, never a join of the whole table.

    PostgreSQL turns ``NOT EXISTS`` into a hash anti-join that reads every membership row for each
    batch; a scalar subquery stays a per-row index probe on both databases.
    """
    return select(column).where(*where).limit(1).scalar_subquery().is_(None)


def _content_unreferenced() -> Any:
    return _none(_rc.c.id, _rc.c.content_id == _content.c.id)


def _window_end(conn: Connection, table: Table, after: int) -> int | None:
    """The last id of the next ``_BATCH`` rows of ``table`` after ``after``, or None at the end.

    Each check then looks at one window of ids: the planner probes the membership index for those
    rows instead of joining the whole membership table once per batch.
    """
    window = select(table.c.id).where(table.c.id > after).order_by(table.c.id).limit(_BATCH).subquery()
    return conn.execute(select(func.max(window.c.id))).scalar()


def _recorded_locations(conn: Connection, locations: tuple[str, ...]) -> set[str]:
    query = select(_artifact.c.location).where(_artifact.c.location.in_(locations))
    return set(conn.execute(query).scalars())


def _orphan_content_query(after: int, last: int) -> Select[tuple[int]]:
    in_window = and_(_content.c.id > after, _content.c.id <= last)
    return select(_content.c.id).where(in_window, _content_unreferenced()).order_by(_content.c.id)


def _orphan_content_ids(conn: Connection, after: int, last: int) -> list[int]:
    return list(conn.execute(_orphan_content_query(after, last)).scalars())


def _delete_content(conn: Connection, ids: list[int]) -> None:
    # Content types' own tables, ContentArtifacts and RemoteArtifacts go by ON DELETE CASCADE.
    conn.execute(delete(_content).where(_content.c.id.in_(ids), _content_unreferenced()))


def _orphan_artifacts_query(after: int, last: int, *, dry_run: bool) -> Select[tuple[int, str, int]]:
    """Artifacts of the id window no content links; in a dry run, no content that stays links.

    A dry run deleted no orphaned content, so artifacts only that content links count as orphans
    too: the dry run reports what the real run removes.
    """
    links = [_ca.c.artifact_id == _artifact.c.id]
    if dry_run:
        links.append(exists().where(_rc.c.content_id == _ca.c.content_id))
    return (
        select(_artifact.c.id, _artifact.c.location, _artifact.c.size)
        .where(_artifact.c.id > after, _artifact.c.id <= last, _none(_ca.c.id, *links))
        .order_by(_artifact.c.id)
    )


def _orphan_artifacts(conn: Connection, after: int, last: int, dry_run: bool) -> list[tuple[int, str, int]]:
    return [tuple(row) for row in conn.execute(_orphan_artifacts_query(after, last, dry_run=dry_run))]


def _delete_artifacts(conn: Connection, ids: list[int]) -> list[str]:
    unreferenced = _none(_ca.c.id, _ca.c.artifact_id == _artifact.c.id)
    stmt = delete(_artifact).where(_artifact.c.id.in_(ids), unreferenced).returning(_artifact.c.location)
    return list(conn.execute(stmt).scalars())
