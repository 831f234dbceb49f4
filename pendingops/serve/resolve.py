"""What a version holds at a path: its files and folders, read from the database only.

Only complete versions are found. When a version holds two files at one path (an additive sync
of a changed file), the one the latest version added is served, as ``export`` writes it.
Reads run outside a transaction (autocommit): a version is immutable once complete, and a
server must not queue behind a sync's write lock to read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from pendingops.db.database import Database
from pendingops.db.schema import (
    Artifact,
    ContentArtifact,
    RemoteArtifact,
    Repository,
    RepositoryContent,
    RepositoryVersion,
)
from pendingops.db.versions import membership_filter

_repo = Repository.__table__
_version = RepositoryVersion.__table__
_rc = RepositoryContent.__table__
_ca = ContentArtifact.__table__
_artifact = Artifact.__table__
_ra = RemoteArtifact.__table__
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class ServedVersion:
    repository_id: int
    repository: str
    number: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ServedFile:
    """One file of a version: its artifact's digest and size, and its storage location once stored."""

    relative_path: str
    content_artifact_id: int
    sha256: str | None
    size: int | None
    location: str | None


@contextmanager
def reading(db: Database) -> Iterator[Connection]:
    """A connection for reads outside any transaction."""
    with db.engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


_VERSION_COLUMNS = (_repo.c.id, _version.c.number, _version.c.created_at)
_COMPLETE = (_repo.c.name == bindparam("name")) & _version.c.complete
#: built once: a request costs the query, not the building of it
_LATEST = (
    select(*_VERSION_COLUMNS)
    .join(_version, _version.c.repository_id == _repo.c.id)
    .where(_COMPLETE)
    .order_by(_version.c.number.desc())
    .limit(1)
)
_NUMBERED = (
    select(*_VERSION_COLUMNS)
    .join(_version, _version.c.repository_id == _repo.c.id)
    .where(_COMPLETE, _version.c.number == bindparam("number"))
)


def find_version(conn: Connection, repository: str, version: str) -> ServedVersion | None:
    """The complete version ``version`` ("latest" or a number) of ``repository``, or None."""
    if version == "latest":
        row = conn.execute(_LATEST, {"name": repository}).first()
    else:
        row = conn.execute(_NUMBERED, {"name": repository, "number": int(version)}).first()
    if row is None:
        return None
    return ServedVersion(row.id, repository, row.number, _utc(row.created_at))


def version_numbers(conn: Connection, repository: str) -> list[int] | None:
    """The numbers of a repository's complete versions, or None when there is no such repository."""
    repo_id = conn.execute(select(_repo.c.id).where(_repo.c.name == repository)).scalar()
    if repo_id is None:
        return None
    query = select(_version.c.number).where(_version.c.repository_id == repo_id, _version.c.complete)
    return list(conn.execute(query.order_by(_version.c.number)).scalars())


def repositories(conn: Connection) -> list[str]:
    """Names of the repositories that have a complete version."""
    query = (
        select(_repo.c.name)
        .where(select(_version.c.id).where(_version.c.repository_id == _repo.c.id, _version.c.complete).exists())
        .order_by(_repo.c.name)
    )
    return list(conn.execute(query).scalars())


def _files_query(repository_id: Any, number: Any) -> Select[Any]:
    return (
        select(
            _ca.c.id,
            _ca.c.relative_path,
            _artifact.c.sha256,
            _artifact.c.size,
            _artifact.c.location,
            _rc.c.version_added,
            _rc.c.content_id,
        )
        .join(_rc, _rc.c.content_id == _ca.c.content_id)
        .outerjoin(_artifact, _artifact.c.id == _ca.c.artifact_id)
        .where(membership_filter(repository_id, number))
    )


_FILE = (
    _files_query(bindparam("repository_id"), bindparam("number"))
    .where(_ca.c.relative_path == bindparam("path"))
    .order_by(_rc.c.version_added.desc(), _rc.c.content_id.desc())
    .limit(1)
)
_EXPECTED = (
    select(_ra.c.sha256, _ra.c.size).where(_ra.c.content_artifact_id == bindparam("ca_id")).order_by(_ra.c.id).limit(1)
)


def find_file(conn: Connection, version: ServedVersion, path: str) -> ServedFile | None:
    """The file at ``path`` in ``version`` (the latest added, if several), or None."""
    values = {"repository_id": version.repository_id, "number": version.number, "path": path}
    row = conn.execute(_FILE, values).first()
    if row is None:
        return None
    sha256, size = row.sha256, row.size
    if row.location is None:  # not stored: what its remotes promise
        expected = conn.execute(_EXPECTED, {"ca_id": row.id}).first()
        if expected is not None:
            sha256, size = expected.sha256, expected.size
    return ServedFile(row.relative_path, row.id, sha256, size, row.location)


@dataclass(slots=True)
class Folder:
    """The direct children of a folder of a version: sub-folder names and files."""

    folders: list[str]
    files: list[ServedFile]

    @property
    def empty(self) -> bool:
        return not self.folders and not self.files


def list_folder(conn: Connection, version: ServedVersion, folder: str) -> Folder:
    """The children of ``folder`` ("" for the top, else a path without a trailing "/") in ``version``."""
    prefix = f"{folder}/" if folder else ""
    base = _files_query(version.repository_id, version.number)
    if prefix:
        base = base.where(func.substr(_ca.c.relative_path, 1, len(prefix)) == prefix)
    folders: set[str] = set()
    files: dict[str, tuple[tuple[int, int], ServedFile]] = {}
    after = 0
    while True:
        rows = conn.execute(base.where(_ca.c.id > after).order_by(_ca.c.id).limit(_PAGE)).all()
        if not rows:
            break
        after = rows[-1].id
        for row in rows:
            if row.relative_path[: len(prefix)] != prefix:
                continue  # substr counts otherwise than Python (it cannot, but a path is checked, not trusted)
            rest = row.relative_path[len(prefix) :]
            name, slash, _ = rest.partition("/")
            if slash:
                folders.add(name)
                continue
            rank = (row.version_added, row.content_id)
            if name not in files or files[name][0] < rank:
                files[name] = (rank, ServedFile(row.relative_path, row.id, row.sha256, row.size, row.location))
    return Folder(sorted(folders), [files[name][1] for name in sorted(files)])


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
