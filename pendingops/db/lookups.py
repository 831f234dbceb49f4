"""Batched existence queries: what is already stored, so nothing is created or fetched twice.

Every lookup filters on the indexed columns it is given (content type and key digest, artifact
sha256, content id), so its cost follows the batch, not the size of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, null, select

from pendingops.db.database import Database
from pendingops.db.fill import find_unfilled
from pendingops.db.schema import OTHER_DIGESTS, Artifact, Content, ContentArtifact, RemoteArtifact, RepositoryContent
from pendingops.pending import PendingArtifact, PendingContent

_content = Content.__table__
_ca = ContentArtifact.__table__
_ra = RemoteArtifact.__table__
_rc = RepositoryContent.__table__
_artifact = Artifact.__table__

#: the stage named in the report of a unit that conflicts with stored content
LOOKUP_STAGE = "dedup"


@dataclass(slots=True)
class StoredFile:
    """One artifact of stored content: its rows, and the bytes it holds or was declared with."""

    content_artifact_id: int
    artifact_id: int | None = None
    #: the stored artifact's sha256 and size; while not downloaded, what a RemoteArtifact declared
    sha256: str | None = None
    size: int | None = None
    #: this remote's RemoteArtifact: (url, sha256, size), if it has one
    this_remote: tuple[str, str | None, int | None] | None = None

    def add_source(self, remote_id: int | None, url: str, sha256: str | None, size: int | None, mine: int) -> None:
        if remote_id == mine:
            self.this_remote = (url, sha256, size)
        if self.artifact_id is None:
            self.sha256 = self.sha256 or sha256
            self.size = self.size if self.size is not None else size


@dataclass(slots=True)
class StoredContent:
    """A stored content unit's artifacts by relative path, and whether the repository holds it now."""

    content_id: int
    files: dict[str, StoredFile] = field(default_factory=dict)
    member: bool = False


def _stored_query(remote_id: int, repository_id: int | None) -> Any:
    columns = [
        _content.c.id,
        _content.c.content_type,
        _content.c.key_digest,
        _ca.c.id.label("ca_id"),
        _ca.c.relative_path,
        _ca.c.artifact_id,
        _artifact.c.sha256.label("artifact_sha256"),
        _artifact.c.size.label("artifact_size"),
        _ra.c.remote_id,
        _ra.c.url,
        _ra.c.sha256,
        _ra.c.size,
    ]
    joined = (
        _content.outerjoin(_ca, _ca.c.content_id == _content.c.id)
        .outerjoin(_artifact, _artifact.c.id == _ca.c.artifact_id)
        .outerjoin(_ra, _ra.c.content_artifact_id == _ca.c.id)
    )
    if repository_id is None:
        columns.append(null().label("membership"))
    else:
        # A correlated probe of the membership index, not a join: without table statistics (a first
        # sync; a server without autovacuum) the planner expects a few members and joins all of them
        # to every batch, so a lookup's cost grew with the repository instead of the batch. The
        # repository is compared as ``repository_id + 0``: the probe goes through the content index
        # (a unit's few rows), never through a (repository, ...) index that statistics gathered before
        # this repository grew call nearly empty, which would scan all its rows for every unit.
        membership = select(_rc.c.id).where(
            _rc.c.repository_id + 0 == repository_id,
            _rc.c.content_id == _content.c.id,
            _rc.c.version_removed.is_(None),
        )
        columns.append(membership.scalar_subquery().label("membership"))
    return select(*columns).select_from(joined)


def _collect(rows: Iterable[Any], remote_id: int, found: dict[Any, StoredContent], by_id: bool) -> None:
    """Fold ``_stored_query`` rows into ``found``, keyed by content id or by (content type, key digest)."""
    # Rows are unpacked as tuples: named access costs more than the rest of this loop together.
    for (content_id, type_name, key_digest, ca_id, path, artifact_id, artifact_sha256, artifact_size,
         source, url, sha256, size, membership) in rows:  # fmt: skip
        key = content_id if by_id else (type_name, key_digest)
        stored = found.get(key)
        if stored is None:
            stored = found[key] = StoredContent(content_id)
        if membership is not None:
            stored.member = True
        if ca_id is None:
            continue
        file = stored.files.get(path)
        if file is None:
            file = stored.files[path] = StoredFile(ca_id, artifact_id, artifact_sha256, artifact_size)
        if url is not None:
            file.add_source(source, url, sha256, size, remote_id)


def stored_content_by_id(
    conn: Connection, db: Database, content_ids: Sequence[int], remote_id: int
) -> dict[int, StoredContent]:
    """What is stored for each of ``content_ids`` (its artifacts and their sources)."""
    found: dict[Any, StoredContent] = {}
    for chunk in db.chunks(sorted(set(content_ids)), 1):
        query = _stored_query(remote_id, None).where(_content.c.id.in_(chunk))
        _collect(conn.execute(query).all(), remote_id, found, by_id=True)
    return found


def query_existing_content(
    conn: Connection, db: Database, units: Sequence[PendingContent], repository_id: int, remote_id: int
) -> None:
    """Fill ``content_id``, ``in_base`` and per-artifact row ids of units whose content exists.

    One statement per content type and chunk: content joined with its ContentArtifacts, their
    Artifacts and RemoteArtifacts, and the repository's current membership. A unit whose natural
    key is stored with other artifacts or other bytes fails: stored content never changes. A stored
    field that is NULL where the unit declares a value is noted for ``save`` to fill (``db/fill.py``).
    """
    by_key: dict[tuple[str, str], list[PendingContent]] = {}
    for unit in units:
        by_key.setdefault((unit.content_type.content_type_name(), unit.key_digest()), []).append(unit)
    digests_by_type: dict[str, list[str]] = {}
    for type_name, digest in sorted(by_key):
        digests_by_type.setdefault(type_name, []).append(digest)
    found: dict[Any, StoredContent] = {}
    for type_name, digests in digests_by_type.items():
        for chunk in db.chunks(digests, 1, other_params=3):  # content type, remote_id, repository_id
            query = _stored_query(remote_id, repository_id).where(
                _content.c.content_type == type_name, _content.c.key_digest.in_(chunk)
            )
            _collect(conn.execute(query).all(), remote_id, found, by_id=False)
    for key, stored in found.items():
        for unit in by_key.get(key, ()):
            unit.in_base = stored.member
            problem = link_to_stored(unit, stored)
            if problem:
                unit.fail(LOOKUP_STAGE, problem)
    find_unfilled(conn, db, [unit for key in found for unit in by_key.get(key, ())])


def link_to_stored(unit: PendingContent, stored: StoredContent) -> str | None:
    """Make ``unit`` the stored content it names; return why it cannot be, if it declares other files.

    The unit must declare the same relative paths, and for each the same bytes (sha256 and size)
    where both sides know them. On success its artifacts point at the stored rows.
    """
    unit.content_id = stored.content_id
    declared = {artifact.relative_path for artifact in unit.artifacts}
    if declared != set(stored.files):
        return _conflict(
            f"has artifacts {_paths(stored.files)}, the remote now declares {_paths(declared)}",
        )
    for artifact in unit.artifacts:
        problem = _bytes_conflict(artifact, stored.files[artifact.relative_path])
        if problem:
            return _conflict(problem)
    for artifact in unit.artifacts:
        file = stored.files[artifact.relative_path]
        artifact.content_artifact_id = file.content_artifact_id
        if file.artifact_id is not None:
            artifact.artifact_id = file.artifact_id
            artifact.artifact_linked = True
        artifact.remote_artifact_current = file.this_remote == (artifact.url, artifact.sha256, artifact.size)
    return None


def _bytes_conflict(artifact: PendingArtifact, file: StoredFile) -> str | None:
    mine = artifact.stored_sha256 or artifact.sha256
    if mine and file.sha256 and mine != file.sha256:
        return f"holds {artifact.relative_path!r} with sha256 {file.sha256}, the remote now declares {mine}"
    size = artifact.stored_size if artifact.stored_sha256 else artifact.size
    if size is not None and file.size is not None and size != file.size:
        return f"holds {artifact.relative_path!r} of {file.size} bytes, the remote now declares {size}"
    return None


def _conflict(problem: str) -> str:
    return (
        f"content already stored under this natural key {problem}; stored content never changes, "
        "so changed artifacts need a changed natural key"
    )


def _paths(paths: Iterable[str]) -> str:
    return "[" + ", ".join(map(repr, sorted(paths))) + "]"


def query_existing_artifacts(conn: Connection, db: Database, units: Sequence[PendingContent]) -> int:
    """Set ``artifact_id`` of artifacts whose sha256 is already stored; return how many.

    A unit that declares a size or another digest the stored bytes do not have fails: the remote
    contradicts itself, and a download of those bytes would be refused for the same reason.
    """
    wanted: dict[str, list[tuple[PendingContent, PendingArtifact]]] = {}
    for unit in units:
        for artifact in unit.artifacts:
            if artifact.artifact_id is None and artifact.sha256:
                wanted.setdefault(artifact.sha256, []).append((unit, artifact))
    found = 0
    digests = [_artifact.c[name] for name in OTHER_DIGESTS]
    for chunk in db.chunks(sorted(wanted), 1):
        query = select(_artifact.c.id, _artifact.c.sha256, _artifact.c.size, *digests).where(
            _artifact.c.sha256.in_(chunk)
        )
        for row in conn.execute(query):
            for unit, artifact in wanted[row.sha256]:
                problem = _stored_disagrees(artifact, row)
                if problem:
                    unit.fail(LOOKUP_STAGE, problem)
                    continue
                artifact.artifact_id = row.id
                found += 1
    return found


def _stored_disagrees(artifact: PendingArtifact, row: Any) -> str | None:
    where = f"{artifact.url}: the stored file with sha256 {artifact.sha256}"
    if artifact.size is not None and artifact.size != row.size:
        return f"{where} has {row.size} bytes, the remote declares {artifact.size}"
    for name, value in artifact.digests.items():
        stored = getattr(row, name, None)
        if stored is not None and stored != value:
            return f"{name} mismatch: {where} has {name} {stored}, the remote declares {value}"
    return None


def artifact_locations(conn: Connection, db: Database, artifact_ids: Iterable[int | None]) -> dict[int, str]:
    """The storage location of each artifact id (one indexed statement per chunk)."""
    ids = sorted(i for i in set(artifact_ids) if i is not None)
    found: dict[int, str] = {}
    for chunk in db.chunks(ids, 1):
        query = select(_artifact.c.id, _artifact.c.location).where(_artifact.c.id.in_(chunk))
        found.update({artifact_id: location for artifact_id, location in conn.execute(query)})
    return found
