"""Batched existence queries: what is already stored, so nothing is created or fetched twice."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, select

from pendingops.db.database import Database
from pendingops.db.schema import Artifact, Content, ContentArtifact, RemoteArtifact, RepositoryContent
from pendingops.pending import PendingContent

_content = Content.__table__
_ca = ContentArtifact.__table__
_ra = RemoteArtifact.__table__
_rc = RepositoryContent.__table__
_artifact = Artifact.__table__


def query_existing_content(
    conn: Connection, db: Database, units: Sequence[PendingContent], repository_id: int, remote_id: int
) -> None:
    """Fill ``content_id``, ``in_base`` and per-artifact row ids of units whose content exists.

    One statement per chunk: content joined with its ContentArtifacts, this remote's
    RemoteArtifacts and the repository's current membership.
    """
    by_digest: dict[tuple[str, str], list[PendingContent]] = {}
    for unit in units:
        by_digest.setdefault((unit.content_type.content_type_name(), unit.key_digest()), []).append(unit)
    digests = sorted({digest for _, digest in by_digest})
    for chunk in db.chunks(digests, 1, other_params=2):  # remote_id and repository_id
        query = (
            select(
                _content.c.id,
                _content.c.content_type,
                _content.c.key_digest,
                _ca.c.id.label("ca_id"),
                _ca.c.relative_path,
                _ca.c.artifact_id,
                _ra.c.url,
                _ra.c.sha256,
                _ra.c.size,
                _rc.c.id.label("membership"),
            )
            .select_from(_content)
            .outerjoin(_ca, _ca.c.content_id == _content.c.id)
            .outerjoin(_ra, and_(_ra.c.content_artifact_id == _ca.c.id, _ra.c.remote_id == remote_id))
            .outerjoin(
                _rc,
                and_(
                    _rc.c.content_id == _content.c.id,
                    _rc.c.repository_id == repository_id,
                    _rc.c.version_removed.is_(None),
                ),
            )
            .where(_content.c.key_digest.in_(chunk))
        )
        for content_id, type_name, digest, ca_id, path, artifact_id, url, sha256, size, member in conn.execute(query):
            for unit in by_digest.get((type_name, digest), ()):
                unit.content_id = content_id
                unit.in_base = member is not None
                for artifact in unit.artifacts:
                    if artifact.relative_path != path:
                        continue
                    artifact.content_artifact_id = ca_id
                    if artifact_id is not None:
                        artifact.artifact_id = artifact_id
                        artifact.artifact_linked = True
                    artifact.remote_artifact_current = (
                        url == artifact.url and sha256 == artifact.sha256 and size == artifact.size
                    )


def query_existing_artifacts(conn: Connection, db: Database, units: Sequence[PendingContent]) -> int:
    """Set ``artifact_id`` of artifacts whose sha256 is already stored; return how many."""
    wanted: dict[str, list] = {}
    for unit in units:
        for artifact in unit.artifacts:
            if artifact.artifact_id is None and artifact.sha256:
                wanted.setdefault(artifact.sha256, []).append(artifact)
    found = 0
    for chunk in db.chunks(sorted(wanted), 1):
        for row in conn.execute(select(_artifact.c.id, _artifact.c.sha256).where(_artifact.c.sha256.in_(chunk))):
            for artifact in wanted[row.sha256]:
                artifact.artifact_id = row.id
                found += 1
    return found
