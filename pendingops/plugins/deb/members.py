"""The packages each suite unit's indexes listed (``deb_release_member``), recorded once per suite unit.

A step after ``save``: a suite unit that is new, or that an interrupted sync saved without its
members, gets them from the sync's catalog in one transaction, before any version holds it. Our own
indexes list a version's packages by these rows, and they tell whether a version is the upstream's set.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, select

from pendingops.context import current_context
from pendingops.db.database import Database
from pendingops.pending import PendingContent
from pendingops.plugins.deb import catalog
from pendingops.plugins.deb.content import DebRelease, DebReleaseMember

_member = DebReleaseMember.__table__


def wants_members(unit: PendingContent) -> bool:
    """A saved suite unit that carries its catalog's listings."""
    return unit.content_type is DebRelease and unit.content_id is not None and "members" in unit.extra


async def record_members(unit: PendingContent) -> None:
    """Record the packages the suite unit's indexes listed, from the sync's catalog, unless they are."""
    sync = current_context()
    catalog_path, suite = unit.extra["members"]
    what = "recording the suite's packages"
    await sync.transact(_write_members, sync.db, unit.content_id, catalog_path, suite, what=what)


def _write_members(conn: Connection, db: Database, release_id: int, catalog_path: Path, suite: str) -> None:
    if conn.execute(select(_member.c.release_id).where(_member.c.release_id == release_id).limit(1)).first():
        return  # recorded when the unit was first saved: the same Release and selection list the same packages
    insert = db.insert(_member).on_conflict_do_nothing(index_elements=[c.name for c in _member.primary_key])
    for rows in catalog.members(catalog_path, suite):
        values = [
            {"release_id": release_id, "component": c, "index_architecture": a, "package_key": key}
            for c, a, key in rows
        ]
        db.insert_rows(conn, insert, values, _member.c.release_id)
