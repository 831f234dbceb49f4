"""Fill, never overwrite: a stored unit's NULL field (a column added since it was saved) gets the declared value.

A plugin's release 2 may add a column; content saved by release 1 has NULL there, and a resync
declares the value. The lookup notes which stored fields are NULL where the unit declares one
(``find_unfilled``: one statement per content type and chunk, reading only rows with a NULL), and
``save`` writes them (``fill_fields``: one UPDATE per content type and chunk). Only nullable columns
outside the natural key are ever written, and only where they are NULL: content stays immutable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, and_, case, func, literal, or_, select, update

from pendingops.db.database import Database
from pendingops.db.schema import Content
from pendingops.pending import PendingContent


def fillable_columns(content_type: type[Content]) -> list[Column[Any]]:
    """The columns a resync may fill: nullable, outside the natural key (and not ``id``)."""
    table = content_type.__table__  # type: ignore[attr-defined]
    key = set(content_type.natural_key)
    return [c for c in table.columns if c.nullable and c.name != "id" and c.name not in key]


def _by_type(units: Sequence[PendingContent]) -> dict[type[Content], list[PendingContent]]:
    grouped: dict[type[Content], list[PendingContent]] = {}
    for unit in units:
        if unit.content_id is not None and not unit.failed:
            grouped.setdefault(unit.content_type, []).append(unit)
    return grouped


def find_unfilled(conn: Connection, db: Database, units: Sequence[PendingContent]) -> None:
    """Set ``unit.unfilled`` of stored units whose stored row is NULL where the unit declares a value."""
    for content_type, group in _by_type(units).items():
        columns = [c for c in fillable_columns(content_type) if any(u.fields.get(c.name) is not None for u in group)]
        if not columns:
            continue
        table = content_type.__table__  # type: ignore[attr-defined]
        by_id = {u.content_id: u for u in group}
        query_columns = [table.c.id, *columns]
        any_null = or_(*(c.is_(None) for c in columns))
        for chunk in db.chunks(sorted(by_id), 1):  # type: ignore[type-var]
            for row in conn.execute(select(*query_columns).where(table.c.id.in_(chunk), any_null)):
                unit = by_id[row[0]]
                declared = {
                    c.name: unit.fields[c.name]
                    for c, stored in zip(columns, row[1:], strict=True)
                    if stored is None and unit.fields.get(c.name) is not None
                }
                if declared:
                    unit.unfilled = declared


def fill_fields(conn: Connection, db: Database, units: Sequence[PendingContent]) -> set[int]:
    """Write the declared values of ``unit.unfilled`` where the stored field is still NULL; return the ids filled.

    One UPDATE per content type and chunk: each column is set to ``COALESCE(column, CASE id ... END)``
    for the rows where it is NULL and declared, so a value another sync filled meanwhile stays.
    """
    filled: set[int] = set()
    for content_type, group in _by_type([u for u in units if u.unfilled]).items():
        table = content_type.__table__  # type: ignore[attr-defined]
        names = sorted({name for u in group for name in u.unfilled})
        group.sort(key=lambda u: u.content_id or 0)
        for chunk in db.chunks(group, 1 + 3 * len(names)):
            sets: dict[str, Any] = {}
            wanted = []
            for name in names:
                column = table.c[name]
                declaring = {u.content_id: u.unfilled[name] for u in chunk if name in u.unfilled}
                if not declaring:
                    continue
                values = {i: literal(v, column.type) for i, v in declaring.items()}
                sets[name] = func.coalesce(column, case(values, value=table.c.id))
                wanted.append(and_(column.is_(None), table.c.id.in_(sorted(declaring))))  # type: ignore[type-var]
            stmt = update(table).where(or_(*wanted)).values(sets).returning(table.c.id)
            filled.update(conn.execute(stmt).scalars())
        for unit in group:
            unit.unfilled = {}
    return filled
