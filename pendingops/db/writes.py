"""Batched, concurrency-safe writes of Artifacts, Content, ContentArtifacts and RemoteArtifacts.

Every insert is "insert or ignore, then read back what was ignored", with rows sorted by a stable
key, so two syncs saving the same rows at once neither fail nor deadlock nor create duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Table, bindparam, select, update

from pendingops.db.database import Database
from pendingops.db.lookups import link_to_stored, stored_content_by_id
from pendingops.db.schema import OTHER_DIGESTS, Artifact, Content, ContentArtifact, RemoteArtifact
from pendingops.pending import PendingArtifact, PendingContent

_artifact = Artifact.__table__
_content = Content.__table__
_ca = ContentArtifact.__table__
_ra = RemoteArtifact.__table__


class ArtifactLocator(Protocol):
    """What saving needs of the storage (an ``ArtifactStorage``): where the file of a sha256 is kept."""

    def location_for(self, sha256: str) -> str: ...


def _insert_ignore_returning(
    conn: Connection, db: Database, table: Table, rows: list[dict[str, Any]], conflict: list[str], returning: list[str]
) -> list[Any]:
    """Insert ``rows`` skipping conflicts on ``conflict``; return the inserted rows' ``returning``."""
    stmt = db.insert(table).on_conflict_do_nothing(index_elements=conflict)
    return db.insert_rows(conn, stmt, rows, *(table.c[name] for name in returning))


def save_units(
    conn: Connection, db: Database, storage: ArtifactLocator, units: Sequence[PendingContent], remote_id: int
) -> set[int]:
    """Save a batch of units with all their rows, in the caller's transaction; return the content ids it created.

    Content is immutable: a unit whose natural key is already stored (or declared by an earlier
    unit of the batch) with other artifacts or other bytes is failed, never saved as that content.
    """
    _save_artifacts(conn, db, storage, units)
    new_content = _save_content(conn, db, units)
    _link_content_saved_meanwhile(conn, db, [u for u in units if not u.failed], new_content, remote_id)
    _save_content_artifacts(conn, db, [u for u in units if not u.failed], new_content)
    _save_remote_artifacts(conn, db, [u for u in units if not u.failed], remote_id)
    return new_content


def _save_artifacts(conn: Connection, db: Database, storage: ArtifactLocator, units: Sequence[PendingContent]) -> None:
    pending: dict[str, list[PendingArtifact]] = {}
    for unit in units:
        for artifact in unit.artifacts:
            if artifact.artifact_id is None and artifact.stored_sha256 is not None:
                pending.setdefault(artifact.stored_sha256, []).append(artifact)
    if not pending:
        return
    rows = []
    for sha256 in sorted(pending):
        first = pending[sha256][0]
        row = {"sha256": sha256, "size": first.stored_size, "location": storage.location_for(sha256)}
        row.update({name: first.stored_digests.get(name) for name in OTHER_DIGESTS})
        rows.append(row)
    ids = {r.sha256: r.id for r in _insert_ignore_returning(conn, db, _artifact, rows, ["sha256"], ["id", "sha256"])}
    missing = sorted(set(pending) - set(ids))
    for chunk in db.chunks(missing, 1):
        query = select(_artifact.c.sha256, _artifact.c.id).where(_artifact.c.sha256.in_(chunk))
        ids.update({sha256: artifact_id for sha256, artifact_id in conn.execute(query)})
    for sha256, artifacts in pending.items():
        for artifact in artifacts:
            artifact.artifact_id = ids[sha256]


def _save_content(conn: Connection, db: Database, units: Sequence[PendingContent]) -> set[int]:
    """Create the content rows units still lack; return the ids created by this call."""
    pending: dict[tuple[str, str], list[PendingContent]] = {}
    for unit in units:
        if unit.content_id is None:
            pending.setdefault((unit.content_type.content_type_name(), unit.key_digest()), []).append(unit)
    if not pending:
        return set()
    rows = [{"content_type": t, "key_digest": d} for t, d in sorted(pending)]
    inserted = _insert_ignore_returning(
        conn, db, _content, rows, ["content_type", "key_digest"], ["id", "content_type", "key_digest"]
    )
    ids = {(r.content_type, r.key_digest): r.id for r in inserted}
    created = set(ids.values())
    missing: dict[str, list[str]] = {}
    for type_name, digest in sorted(key for key in pending if key not in ids):
        missing.setdefault(type_name, []).append(digest)
    for type_name, digests in missing.items():
        for chunk in db.chunks(digests, 1, other_params=1):
            query = select(_content.c.key_digest, _content.c.id).where(
                _content.c.content_type == type_name, _content.c.key_digest.in_(chunk)
            )
            ids.update({(type_name, d): i for d, i in conn.execute(query)})
    typed_rows: dict[type[Content], list[dict[str, Any]]] = {}
    for key, group in pending.items():
        first = group[0]
        for unit in group:
            unit.content_id = ids[key]
            if unit is not first and _artifact_set(unit) != _artifact_set(first):
                unit.fail("save", _DECLARED_TWICE)
        if ids[key] in created:
            row = {"id": ids[key], **{name: first.fields.get(name) for name in first.content_type.field_names()}}
            typed_rows.setdefault(first.content_type, []).append(row)
    for content_type, rows_of_type in typed_rows.items():
        table = content_type.__table__  # type: ignore[attr-defined]
        rows_of_type.sort(key=lambda r: r["id"])
        db.insert_rows(conn, table.insert(), rows_of_type, table.c.id)
    return created


def _link_content_saved_meanwhile(
    conn: Connection, db: Database, units: Sequence[PendingContent], new_content: set[int], remote_id: int
) -> None:
    """Units whose content another sync (or an earlier batch) saved after their lookup: link or fail them."""
    late = [u for u in units if u.content_id not in new_content and _lacks_ca_ids(u)]
    if not late:
        return
    stored = stored_content_by_id(conn, db, [u.content_id for u in late if u.content_id is not None], remote_id)
    for unit in late:
        assert unit.content_id is not None
        problem = link_to_stored(unit, stored[unit.content_id])
        if problem:
            unit.fail("save", problem)


def _save_content_artifacts(
    conn: Connection, db: Database, units: Sequence[PendingContent], new_content: set[int]
) -> None:
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    fill: dict[int, int] = {}
    for unit in units:
        assert unit.content_id is not None
        for artifact in unit.artifacts:
            if unit.content_id in new_content:
                rows.setdefault(
                    (unit.content_id, artifact.relative_path),
                    {
                        "content_id": unit.content_id,
                        "relative_path": artifact.relative_path,
                        "artifact_id": artifact.artifact_id,
                    },
                )
            elif artifact.content_artifact_id is not None and artifact.artifact_id and not artifact.artifact_linked:
                fill[artifact.content_artifact_id] = artifact.artifact_id
                artifact.artifact_linked = True
    if rows:
        ordered = [rows[key] for key in sorted(rows)]
        inserted = db.insert_rows(conn, _ca.insert(), ordered, _ca.c.id, _ca.c.content_id, _ca.c.relative_path)
        ids = {(c, p): i for i, c, p in inserted}
        for unit in units:
            for artifact in unit.artifacts:
                if (unit.content_id, artifact.relative_path) in ids:
                    artifact.content_artifact_id = ids[(unit.content_id, artifact.relative_path)]
                    artifact.artifact_linked = artifact.artifact_id is not None
    if fill:
        # Content first saved on demand whose file is now downloaded: link the artifact.
        stmt = (
            update(_ca)
            .where(_ca.c.id == bindparam("ca_id"), _ca.c.artifact_id.is_(None))
            .values(artifact_id=bindparam("artifact_id"))
        )
        conn.execute(stmt, [{"ca_id": k, "artifact_id": v} for k, v in sorted(fill.items())])


def _lacks_ca_ids(unit: PendingContent) -> bool:
    return any(a.content_artifact_id is None for a in unit.artifacts)


_DECLARED_TWICE = (
    "declared twice in this sync with different artifacts under one natural key; "
    "stored content never changes, so changed artifacts need a changed natural key"
)


def _artifact_set(unit: PendingContent) -> frozenset[tuple[str, str | None]]:
    """What a unit says its content holds: relative paths and the bytes' sha256 where known."""
    return frozenset((a.relative_path, a.stored_sha256 or a.sha256) for a in unit.artifacts)


def _save_remote_artifacts(conn: Connection, db: Database, units: Sequence[PendingContent], remote_id: int) -> None:
    rows: dict[int, dict[str, Any]] = {}
    for unit in units:
        for artifact in unit.artifacts:
            if artifact.remote_artifact_current or artifact.content_artifact_id is None:
                continue
            row = {
                "content_artifact_id": artifact.content_artifact_id,
                "remote_id": remote_id,
                "url": artifact.url,
                "size": artifact.size,
                "sha256": artifact.sha256,
            }
            row.update({name: artifact.digests.get(name) for name in OTHER_DIGESTS})
            rows[artifact.content_artifact_id] = row
            artifact.remote_artifact_current = True
    if not rows:
        return
    ordered = [rows[key] for key in sorted(rows)]
    stmt = db.insert(_ra)
    stmt = stmt.on_conflict_do_update(
        index_elements=["content_artifact_id", "remote_id"],
        set_={name: stmt.excluded[name] for name in ("url", "size", "sha256", *OTHER_DIGESTS)},
    )
    db.insert_rows(conn, stmt, ordered, _ra.c.id)


def link_fetched_artifact(
    conn: Connection, db: Database, content_artifact_id: int, location: str, size: int, digests: dict[str, str]
) -> int:
    """Record an artifact fetched after its sync (on demand) and link it to its content; return its id.

    ``digests`` holds the sha256 and any others computed. The file is already in storage, verified.
    """
    row = {"sha256": digests["sha256"], "size": size, "location": location}
    row.update({name: digests.get(name) for name in OTHER_DIGESTS})
    inserted = _insert_ignore_returning(conn, db, _artifact, [row], ["sha256"], ["id"])
    if inserted:
        artifact_id = inserted[0].id
    else:
        artifact_id = conn.execute(select(_artifact.c.id).where(_artifact.c.sha256 == row["sha256"])).scalar_one()
    conn.execute(
        update(_ca).where(_ca.c.id == content_artifact_id, _ca.c.artifact_id.is_(None)).values(artifact_id=artifact_id)
    )
    return artifact_id
