"""Reading repositories, versions and their content back, streamed in batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from pendingops.db.database import Database
from pendingops.db.schema import Artifact, Content, ContentArtifact, Repository, RepositoryContent, RepositoryVersion
from pendingops.db.versions import find_repository, membership_filter, version_info

_rc = RepositoryContent.__table__
_content = Content.__table__
_ca = ContentArtifact.__table__
_artifact = Artifact.__table__
_version = RepositoryVersion.__table__
_repo = Repository.__table__

_PAGE = 1000


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One artifact of a content unit in a version: where it goes and, if stored, what it is."""

    relative_path: str
    sha256: str | None
    size: int | None
    location: str | None


@dataclass(frozen=True, slots=True)
class StoredUnit:
    content_id: int
    content_type: str
    fields: dict[str, Any]
    natural_key: dict[str, Any]
    files: list[StoredFile]
    #: the version that added this unit to the repository (the latest time, if it left and came back)
    added_in: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.content_type,
            "natural_key": self.natural_key,
            "fields": self.fields,
            "artifacts": [
                {"relative_path": f.relative_path, "sha256": f.sha256, "size": f.size, "stored": f.location is not None}
                for f in self.files
            ],
        }


def content_types() -> dict[str, type[Content]]:
    """Every content type whose module is imported, by the name stored in ``content.content_type``."""
    found: dict[str, type[Content]] = {}
    pending = list(Content.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "__tablename__" in cls.__dict__:
            found[cls.content_type_name()] = cls
    return found


def list_repositories(conn: Connection) -> list[dict[str, Any]]:
    """Each repository with its latest complete version and that version's size."""
    latest = (
        select(_version.c.repository_id, func.max(_version.c.number).label("number"))
        .where(_version.c.complete)
        .group_by(_version.c.repository_id)
        .subquery()
    )
    query = (
        select(_repo.c.name, latest.c.number, _version.c.content_count)
        .join(latest, latest.c.repository_id == _repo.c.id)
        .join(_version, (_version.c.repository_id == _repo.c.id) & (_version.c.number == latest.c.number))
        .order_by(_repo.c.name)
    )
    return [{"name": n, "latest_version": v, "content_count": c} for n, v, c in conn.execute(query)]


def iter_version_content(db: Database, repository: str, number: int | None = None) -> Iterator[StoredUnit]:
    """The units of a complete version, in content-id order, read a page at a time."""
    with db.engine.connect() as conn:
        info = version_info(conn, repository, number)
        repo_id = find_repository(conn, repository)
    types = content_types()
    last_id = 0
    while True:
        with db.engine.connect() as conn:
            page = _page(conn, repo_id, info.number, last_id, types)
        if not page:
            return
        yield from page
        last_id = page[-1].content_id


def _page(conn: Connection, repo_id: int, number: int, after: int, types: dict[str, type[Content]]) -> list[StoredUnit]:
    members = (
        select(_rc.c.content_id, _rc.c.version_added)
        .where(membership_filter(repo_id, number), _rc.c.content_id > after)
        .order_by(_rc.c.content_id)
        .limit(_PAGE)
        .subquery()
    )
    rows = conn.execute(
        select(_content.c.id, _content.c.content_type, members.c.version_added)
        .join(members, members.c.content_id == _content.c.id)
        .order_by(_content.c.id)
    ).all()
    return _units(conn, [(r.id, r.content_type, r.version_added) for r in rows], types)


def load_units(conn: Connection, content_ids: list[int], types: dict[str, type[Content]]) -> list[StoredUnit]:
    """The units with these content ids, in id order (``added_in`` is not known here: 0)."""
    units: list[StoredUnit] = []
    for start in range(0, len(content_ids), _PAGE):
        page = content_ids[start : start + _PAGE]
        rows = conn.execute(
            select(_content.c.id, _content.c.content_type).where(_content.c.id.in_(page)).order_by(_content.c.id)
        ).all()
        units.extend(_units(conn, [(r.id, r.content_type, 0) for r in rows], types))
    return units


def _units(conn: Connection, rows: list[tuple[int, str, int]], types: dict[str, type[Content]]) -> list[StoredUnit]:
    """Units for (content id, content type, version added) rows: their fields and files, read per type."""
    if not rows:
        return []
    content_ids = [content_id for content_id, _, _ in rows]
    fields: dict[int, dict[str, Any]] = {}
    for type_name in {content_type for _, content_type, _ in rows}:
        cls = types.get(type_name)
        if cls is None:
            continue
        table = cls.__table__  # type: ignore[attr-defined]
        for row in conn.execute(select(table).where(table.c.id.in_(content_ids))):
            values = dict(row._mapping)
            fields[values.pop("id")] = values
    files: dict[int, list[StoredFile]] = {}
    query = (
        select(_ca.c.content_id, _ca.c.relative_path, _artifact.c.sha256, _artifact.c.size, _artifact.c.location)
        .outerjoin(_artifact, _artifact.c.id == _ca.c.artifact_id)
        .where(_ca.c.content_id.in_(content_ids))
        .order_by(_ca.c.content_id, _ca.c.relative_path)
    )
    for content_id, path, sha256, size, location in conn.execute(query):
        files.setdefault(content_id, []).append(StoredFile(path, sha256, size, location))
    units = []
    for content_id, content_type, added_in in rows:
        cls = types.get(content_type)
        values = fields.get(content_id, {})
        key = {name: values.get(name) for name in cls.natural_key} if cls else {}
        units.append(StoredUnit(content_id, content_type, values, key, files.get(content_id, []), added_in))
    return units
