"""A version's units in natural-key order: by content type, then by each type's natural key.

Read a page at a time along the natural key's unique index (keyset paging, no OFFSET), so the
cost of a page does not grow with the version. Units of a type whose plugin is not installed come
last, in id order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from sqlalchemy import Connection, select, tuple_

from pendingops.db.database import Database
from pendingops.db.schema import Content, RepositoryContent
from pendingops.db.versions import find_repository, membership_filter, version_info
from pendingops.maintenance.listing import StoredUnit, content_types, read_units

_rc = RepositoryContent.__table__
_content = Content.__table__
_PAGE = 1000


def iter_version_content_by_key(db: Database, repository: str, number: int | None = None) -> Iterator[StoredUnit]:
    """The units of a complete version, sorted by content type and natural key."""
    with db.engine.connect() as conn:
        info = version_info(conn, repository, number)
        repo_id = find_repository(conn, repository)
        present = _types_in_version(conn, repo_id, info.number)
    types = content_types()
    for type_name in sorted(name for name in present if name in types):
        yield from _by_key(db, repo_id, info.number, types[type_name], types)
    unknown = sorted(name for name in present if name not in types)
    if unknown:
        yield from _by_id(db, repo_id, info.number, unknown, types)


def _types_in_version(conn: Connection, repo_id: int, number: int) -> set[str]:
    query = (
        select(_content.c.content_type)
        .join(_rc, _rc.c.content_id == _content.c.id)
        .where(membership_filter(repo_id, number))
        .distinct()
    )
    return set(conn.execute(query).scalars())


def _by_key(
    db: Database, repo_id: int, number: int, cls: type[Content], types: dict[str, type[Content]]
) -> Iterator[StoredUnit]:
    table = cls.__table__  # type: ignore[attr-defined]
    key = [table.c[name] for name in cls.natural_key]
    after: tuple[Any, ...] | None = None
    while True:
        query = (
            select(table.c.id, *key, _rc.c.version_added)
            .join(_rc, _rc.c.content_id == table.c.id)
            .where(membership_filter(repo_id, number))
            .order_by(*key)
            .limit(_PAGE)
        )
        if after is not None:
            query = query.where(tuple_(*key) > tuple_(*after))
        with db.engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return
            page = [_Row(row.id, cls.content_type_name(), row.version_added) for row in rows]
            units = read_units(conn, page, types)
        yield from units
        after = tuple(rows[-1][1 : 1 + len(key)])


def _by_id(
    db: Database, repo_id: int, number: int, type_names: list[str], types: dict[str, type[Content]]
) -> Iterator[StoredUnit]:
    after = 0
    while True:
        query = (
            select(_content.c.id, _content.c.content_type, _rc.c.version_added)
            .join(_rc, _rc.c.content_id == _content.c.id)
            .where(membership_filter(repo_id, number), _content.c.content_type.in_(type_names), _content.c.id > after)
            .order_by(_content.c.id)
            .limit(_PAGE)
        )
        with db.engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return
            units = read_units(conn, rows, types)
        yield from units
        after = rows[-1].id


class _Row(NamedTuple):
    """What ``read_units`` needs of a row."""

    id: int
    content_type: str
    version_added: int
