"""Batched, concurrency-safe writes of Artifacts, Content, ContentArtifacts and RemoteArtifacts.

Every insert is "insert or ignore, then read back what was ignored", with rows sorted by a stable
key, so two syncs saving the same rows at once neither fail nor deadlock nor create duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, update

from pendingops.db.database import Database
from pendingops.db.schema import OTHER_DIGESTS, Artifact, Content, ContentArtifact, RemoteArtifact
from pendingops.pending import PendingArtifact, PendingContent
from pendingops.storage.base import ArtifactStorage

_artifact = Artifact.__table__
_content = Content.__table__
_ca = ContentArtifact.__table__
_ra = RemoteArtifact.__table__


def _insert_ignore_returning(
    conn: Connection, db: Database, table: Table, rows: list[dict[str, Any]], conflict: list[str], returning: list[str]
) -> list[Any]:
    """Insert ``rows`` skipping conflicts on ``conflict``; return the inserted rows' ``returning``."""
    stmt = db.insert(table).on_conflict_do_nothing(index_elements=conflict)
    return db.insert_rows(conn, stmt, rows, *(table.c[name] for name in returning))


def save_units(
    conn: Connection, db: Database, storage: ArtifactStorage, units: Sequence[PendingContent], remote_id: int
) -> None:
    """Save a batch of units with all their rows, in the caller's transaction.

    Content is immutable: a unit whose content is already stored but declares an artifact that
    content does not have is failed (its natural key should have changed), never silently
    saved without that artifact.
    """
    _save_artifacts(conn, db, storage, units)
    new_content = _save_content(conn, db, units)
    _save_content_artifacts(conn, db, units, new_content)
    for unit in units:
        unlinked = [a.relative_path for a in unit.artifacts if a.content_artifact_id is None]
        if unlinked:
            unit.fail(
                "save",
                f"content already stored under this natural key has no artifact {', '.join(map(repr, unlinked))}; "
                "stored content never changes, so a changed artifact needs a changed natural key",
            )
    _save_remote_artifacts(conn, db, [u for u in units if not u.failed], remote_id)


def _save_artifacts(conn: Connection, db: Database, storage: ArtifactStorage, units: Sequence[PendingContent]) -> None:
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
    missing = sorted({d for key in pending if key not in ids for d in [key[1]]})
    for chunk in db.chunks(missing, 1):
        query = select(_content.c.content_type, _content.c.key_digest, _content.c.id).where(
            _content.c.key_digest.in_(chunk)
        )
        ids.update({(t, d): i for t, d, i in conn.execute(query)})
    typed_rows: dict[type[Content], list[dict[str, Any]]] = {}
    for key, group in pending.items():
        for unit in group:
            unit.content_id = ids[key]
        if ids[key] in created:
            first = group[0]
            row = {"id": ids[key], **{name: first.fields.get(name) for name in first.content_type.field_names()}}
            typed_rows.setdefault(first.content_type, []).append(row)
    for content_type, rows_of_type in typed_rows.items():
        table = content_type.__table__  # type: ignore[attr-defined]
        rows_of_type.sort(key=lambda r: r["id"])
        db.insert_rows(conn, table.insert(), rows_of_type, table.c.id)
    return created


def _save_content_artifacts(
    conn: Connection, db: Database, units: Sequence[PendingContent], new_content: set[int]
) -> None:
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    # Content another sync created between our lookup and our insert: find its rows.
    unknown = sorted({u.content_id for u in units if u.content_id not in new_content and _lacks_ca_ids(u)})
    known: dict[tuple[int, str], tuple[int, int | None]] = {}
    for chunk in db.chunks(unknown, 1):
        query = select(_ca.c.content_id, _ca.c.relative_path, _ca.c.id, _ca.c.artifact_id).where(
            _ca.c.content_id.in_(chunk)
        )
        for content_id, path, ca_id, artifact_id in conn.execute(query):
            known[(content_id, path)] = (ca_id, artifact_id)
    fill: dict[int, int] = {}
    for unit in units:
        assert unit.content_id is not None
        for artifact in unit.artifacts:
            key = (unit.content_id, artifact.relative_path)
            if unit.content_id in new_content:
                rows.setdefault(
                    key,
                    {
                        "content_id": unit.content_id,
                        "relative_path": artifact.relative_path,
                        "artifact_id": artifact.artifact_id,
                    },
                )
                continue
            if artifact.content_artifact_id is None and key in known:
                artifact.content_artifact_id, stored_artifact = known[key]
                if stored_artifact is not None:
                    artifact.artifact_id = artifact.artifact_id or stored_artifact
                    artifact.artifact_linked = True
            if artifact.content_artifact_id is not None and artifact.artifact_id and not artifact.artifact_linked:
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
