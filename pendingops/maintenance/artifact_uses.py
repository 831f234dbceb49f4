"""Where a stored file is used: the repositories and paths that hold it now, for a report on a bad file.

``verify`` names a damaged file by its sha256; a person needs to know which repository and path it
is. The repositories' current content (membership rows not yet removed) holding the artifact are
read, a few at most: it is asked only for the files found damaged.
"""

from __future__ import annotations

from sqlalchemy import select

from pendingops.db.database import Database
from pendingops.db.schema import Artifact, ContentArtifact, Repository, RepositoryContent

_artifact = Artifact.__table__
_ca = ContentArtifact.__table__
_rc = RepositoryContent.__table__
_repository = Repository.__table__


def artifact_uses(db: Database, sha256: str, limit: int = 3) -> tuple[list[tuple[str, str]], int]:
    """Up to ``limit`` (repository, relative path) holding the file of ``sha256`` now, and how many there are."""
    query = (
        select(_repository.c.name, _ca.c.relative_path)
        .select_from(
            _artifact.join(_ca, _ca.c.artifact_id == _artifact.c.id)
            .join(_rc, _rc.c.content_id == _ca.c.content_id)
            .join(_repository, _repository.c.id == _rc.c.repository_id)
        )
        .where(_artifact.c.sha256 == sha256, _rc.c.version_removed.is_(None))
        .distinct()
        .order_by(_repository.c.name, _ca.c.relative_path)
    )
    with db.engine.connect() as conn:
        rows = [(name, path) for name, path in conn.execute(query)]
    return rows[:limit], len(rows)


def describe_uses(db: Database, sha256: str) -> str:
    """``in 'repo' at path/to/file (and N more)``, or ``in no repository now``."""
    shown, total = artifact_uses(db, sha256)
    if not shown:
        return "in no repository now"
    places = ", ".join(f"'{name}' at {path}" for name, path in shown)
    more = f" (and {total - len(shown)} more)" if total > len(shown) else ""
    return f"in {places}{more}"
