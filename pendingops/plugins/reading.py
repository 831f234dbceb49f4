"""Reading a version from a plugin's published files and pages, without the schema's internals.

``VersionRef.units(ContentType)`` (implemented by ``version_units``) streams the rows of a content
type a version holds, a page at a time on short connections, in a stable order; ``artifact_stored``
and ``artifact_size`` are the SQL expressions a plugin adds when one of its artifacts matters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, tuple_

from pendingops.db.database import Database
from pendingops.db.schema import Artifact, Content, ContentArtifact, RemoteArtifact, RepositoryContent
from pendingops.db.versions import membership_filter

_rc = RepositoryContent.__table__
_ca = ContentArtifact.__table__
_artifact = Artifact.__table__
_ra = RemoteArtifact.__table__
#: rows read per statement
PAGE = 1000

#: a test on an artifact's relative path (a SQL column), e.g. ``lambda path: path.endswith(".tar.gz")``
PathTest = Callable[[Any], ColumnElement[bool]]


def artifact_stored(content_type: type[Content], path: PathTest | None = None) -> ColumnElement[bool]:
    """True where the unit holds a stored artifact (whose relative path passes ``path``, if given)."""
    table = content_type.__table__  # type: ignore[attr-defined]
    conditions = [_ca.c.content_id == table.c.id, _ca.c.artifact_id.is_not(None)]
    if path is not None:
        conditions.append(path(_ca.c.relative_path))
    return exists().where(*conditions)


def artifact_size(content_type: type[Content], path: PathTest | None = None) -> ColumnElement[Any]:
    """The size of the unit's artifact (passing ``path``): the stored file's, else a remote's declared, else NULL."""
    table = content_type.__table__  # type: ignore[attr-defined]
    mine = _ca.c.content_id == table.c.id
    if path is not None:
        mine = mine & path(_ca.c.relative_path)
    stored = select(_artifact.c.size).join(_ca, _ca.c.artifact_id == _artifact.c.id).where(mine).limit(1)
    declared = select(func.max(_ra.c.size)).join(_ca, _ca.c.id == _ra.c.content_artifact_id).where(mine)
    return func.coalesce(stored.scalar_subquery(), declared.scalar_subquery())


def version_units(
    db: Database,
    repository_id: int,
    number: int,
    stored_only: bool,
    content_type: type[Content],
    *,
    latest_per: Sequence[str] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    columns: Sequence[Any] = (),
) -> Iterator[Any]:
    """The rows of ``content_type`` version ``number`` holds: its columns, ``version_added``, then ``columns``.

    In natural-key order by default. With ``latest_per`` (column names), one row per value of those
    columns, in their order: the unit the latest version added (an additive sync may keep a file
    both as it was and as changed later). With ``stored_only``, only units holding a stored artifact.
    Read ``PAGE`` rows per statement, each on its own short connection (no transaction held open).
    """
    table = content_type.__table__  # type: ignore[attr-defined]
    keys = [table.c[name] for name in (latest_per or content_type.natural_key)]
    query = (
        select(table, _rc.c.version_added, *columns)
        .join(_rc, _rc.c.content_id == table.c.id)
        .where(membership_filter(repository_id, number), *where)
    )
    if stored_only:
        query = query.where(artifact_stored(content_type))
    if latest_per:
        query = query.order_by(*keys, _rc.c.version_added.desc(), table.c.id.desc())
    else:
        keys.append(table.c.id)  # a natural key is unique: the id only makes the order total
        query = query.order_by(*keys)
    query = query.limit(PAGE)
    last: tuple[Any, ...] | None = None
    names = [k.name for k in keys]
    while True:
        page = query if last is None else query.where(tuple_(*keys) > tuple_(*last))
        with db.engine.connect() as conn:
            rows = conn.execution_options(isolation_level="AUTOCOMMIT").execute(page).all()
        if not rows:
            return
        for row in rows:
            key = tuple(getattr(row, name) for name in names)
            if latest_per and key == last:
                continue  # an older unit of the same item
            last = key
            yield row
