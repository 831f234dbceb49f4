"""A repository's lifecycle: what changed between versions, rolling back, retention and removal.

Everything that writes holds the repository's lock (so it waits for a running sync of that
repository, and a sync waits for it) and writes in one transaction: a process killed half way
leaves nothing of it visible. Nothing here deletes content or artifacts: what no version holds any
more is left to ``remove_orphans``, which already never races a sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select

from pendingops.db import lifecycle as sql
from pendingops.db.database import Database
from pendingops.db.locks import RepositoryLock
from pendingops.db.schema import RepositoryContent, RepositoryVersion
from pendingops.db.statistics import refresh_statistics
from pendingops.db.versions import VersionError, discard_incomplete_versions, find_repository, latest_version
from pendingops.maintenance.listing import StoredUnit, content_types, load_units

T = TypeVar("T")
_rc = RepositoryContent.__table__
_version = RepositoryVersion.__table__


@dataclass(slots=True)
class VersionDiff:
    """Units in version ``b`` and not in ``a`` (added), the reverse (removed), and (before, after) pairs
    that are the same item with other content (changed; left out of added and removed)."""

    repository: str
    a: int
    b: int
    added: list[StoredUnit] = field(default_factory=list)
    removed: list[StoredUnit] = field(default_factory=list)
    changed: list[tuple[StoredUnit, StoredUnit]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "from": self.a,
            "to": self.b,
            "added": [unit.as_json() for unit in self.added],
            "removed": [unit.as_json() for unit in self.removed],
            "changed": [{**after.as_json(), "previous": before.as_json()} for before, after in self.changed],
        }


@dataclass(frozen=True, slots=True)
class Rollback:
    """The outcome of a rollback: ``number`` is None when the target already was the latest."""

    repository: str
    target: int
    latest: int
    number: int | None
    added: int = 0
    removed: int = 0


def diff_versions(db: Database, repository: str, a: int, b: int) -> VersionDiff:
    """Compare two complete versions from the membership rows that changed between them."""
    types = content_types()
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, repository)
        for number in (a, b):
            sql.require_version(conn, repo_id, repository, number)
        ids = sql.diff_ids(conn, repo_id, a, b)
        added = load_units(conn, ids.added, types)
        removed = load_units(conn, ids.removed, types)
    result = VersionDiff(repository, a, b)
    result.changed = _pair_items(removed, added, types)
    paired = {id(unit) for pair in result.changed for unit in pair}
    result.added = [u for u in added if id(u) not in paired]
    result.removed = [u for u in removed if id(u) not in paired]
    return result


def _pair_items(
    removed: list[StoredUnit], added: list[StoredUnit], types: dict[str, Any]
) -> list[tuple[StoredUnit, StoredUnit]]:
    """Pair a removed and an added unit of one type with the same item key (one to one)."""

    def item(unit: StoredUnit) -> tuple[Any, ...] | None:
        names = getattr(types.get(unit.content_type), "item_key", ())
        return (unit.content_type, *(unit.fields.get(n) for n in names)) if names else None

    before: dict[tuple[Any, ...], StoredUnit] = {}
    for unit in removed:
        key = item(unit)
        if key is not None:
            before.setdefault(key, unit)
    pairs = []
    for unit in added:
        key = item(unit)
        if key is not None and key in before:
            pairs.append((before.pop(key), unit))
    return pairs


def _locked(db: Database, repository: str, work: Callable[[Connection, int], T]) -> T:
    """Run ``work(conn, repository_id)`` in one transaction under the repository's lock."""
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, repository)
    with RepositoryLock(db, repo_id):

        def locked_work(conn: Connection) -> T:
            if not _exists(conn, repo_id):
                raise VersionError(f"repository {repository!r} was removed meanwhile")
            discard_incomplete_versions(conn, repo_id)  # we hold the lock: any incomplete one is abandoned
            return work(conn, repo_id)

        return db.transact(locked_work)


def _exists(conn: Connection, repo_id: int) -> bool:
    return (
        conn.execute(select(func.count()).select_from(_version).where(_version.c.repository_id == repo_id)).scalar_one()
        > 0
    )


def rollback(db: Database, repository: str, target: int) -> Rollback:
    """Make a new version (latest + 1) whose content is version ``target``'s; no downloads."""

    def work(conn: Connection, repo_id: int) -> Rollback:
        sql.require_version(conn, repo_id, repository, target)
        latest = latest_version(conn, repo_id)
        difference = sql.diff_ids(conn, repo_id, target, latest)
        if not difference.added and not difference.removed:
            return Rollback(repository, target, latest, None)
        number, added, removed = sql.rollback_to(conn, repo_id, target)
        return Rollback(repository, target, latest, number, added, removed)

    done = _locked(db, repository, work)
    refresh_statistics(db, {"repository_content": done.added + done.removed})
    return done


def delete_version(db: Database, repository: str, number: int) -> None:
    """Remove one complete version that is not the latest."""

    def work(conn: Connection, repo_id: int) -> None:
        sql.require_version(conn, repo_id, repository, number)
        if number == latest_version(conn, repo_id):
            raise VersionError(f"version {number} is the latest of {repository!r} and cannot be removed")
        _remove_versions(conn, repo_id, [number], changed)

    changed: list[int] = []
    _locked(db, repository, work)
    refresh_statistics(db, {"repository_content": sum(changed), "repository_version": 1})


def retain(db: Database, repository: str, keep: int) -> list[int]:
    """Remove all but the ``keep`` latest versions (``keep`` >= 1); return the removed numbers."""
    if keep < 1:
        raise ValueError(f"--keep must be at least 1, got {keep}")

    def work(conn: Connection, repo_id: int) -> list[int]:
        doomed = sql.versions_beyond(conn, repo_id, keep)
        _remove_versions(conn, repo_id, doomed, changed)
        return doomed

    changed: list[int] = []
    removed = _locked(db, repository, work)
    refresh_statistics(db, {"repository_content": sum(changed), "repository_version": len(removed)})
    return removed


def apply_retention(db: Database, repository: str, keep: int | None = None) -> list[int]:
    """After a sync: remember ``keep`` for the repository if given, then apply what it remembers."""

    def work(conn: Connection, repo_id: int) -> list[int]:
        if keep is not None:
            if keep < 1:
                raise ValueError(f"--retain must be at least 1, got {keep}")
            sql.set_retention(conn, repo_id, keep)
        remembered = sql.retention(conn, repo_id)
        if remembered is None:
            return []
        doomed = sql.versions_beyond(conn, repo_id, remembered)
        _remove_versions(conn, repo_id, doomed, changed)
        return doomed

    changed: list[int] = []
    removed = _locked(db, repository, work)
    refresh_statistics(db, {"repository_content": sum(changed), "repository_version": len(removed)})
    return removed


def _remove_versions(conn: Connection, repo_id: int, numbers: list[int], changed: list[int]) -> None:
    """Remove versions ``numbers``, noting in ``changed`` the membership rows that rewrites."""
    changed.append(sql.membership_changes(conn, repo_id, numbers))
    sql.delete_versions(conn, repo_id, numbers)


@dataclass(frozen=True, slots=True)
class RemovedRepository:
    name: str
    versions: int
    latest: int


def describe_repository(db: Database, name: str) -> RemovedRepository:
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, name)
        return RemovedRepository(name, len(sql.complete_numbers(conn, repo_id)), latest_version(conn, repo_id))


def delete_repository(db: Database, name: str) -> RemovedRepository:
    """Remove a repository, its versions and sync records; its content becomes orphans unless shared."""

    def work(conn: Connection, repo_id: int) -> RemovedRepository:
        found = RemovedRepository(name, len(sql.complete_numbers(conn, repo_id)), latest_version(conn, repo_id))
        sql.delete_repository(conn, repo_id)
        return found

    return _locked(db, name, work)
