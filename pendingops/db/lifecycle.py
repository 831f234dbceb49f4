"""Set-based statements of a repository's lifecycle: diff, rollback, version and repository removal.

Every function here runs in the caller's transaction and expects the caller to hold the
repository's lock. Membership intervals stay *compact*: after a version is removed, every row's
``version_added`` and ``version_removed`` name versions that exist (or NULL), no row covers only
removed versions, and a unit present without a gap has one row. So a version's added and removed
counts are the rows that start and end at it, and a diff reads only the rows that changed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, Select, Subquery, and_, delete, func, insert, literal, or_, select, union, update

from pendingops.db.schema import DeclaredContent, Repository, RepositoryContent, RepositoryVersion, SyncRun
from pendingops.db.versions import VersionError, begin_version, latest_version

_rc = RepositoryContent.__table__
_version = RepositoryVersion.__table__
_repo = Repository.__table__
_run = SyncRun.__table__
_declared = DeclaredContent.__table__


@dataclass(frozen=True, slots=True)
class DiffIds:
    """Content ids in version ``b`` and not in ``a`` (added), and the other way round (removed)."""

    added: list[int]
    removed: list[int]


def complete_numbers(conn: Connection, repository_id: int) -> list[int]:
    """The repository's complete version numbers, ascending."""
    query = select(_version.c.number).where(_version.c.repository_id == repository_id, _version.c.complete)
    return list(conn.execute(query.order_by(_version.c.number)).scalars())


def require_version(conn: Connection, repository_id: int, repository: str, number: int) -> None:
    found = conn.execute(
        select(_version.c.id).where(
            _version.c.repository_id == repository_id, _version.c.number == number, _version.c.complete
        )
    ).first()
    if found is None:
        raise VersionError(f"repository {repository!r} has no version {number}")


def _changed_between(repository_id: int, low: int, high: int) -> Subquery:
    """Content ids with a membership row starting or ending in (low, high]: all that can differ."""
    rows = _rc.alias("changed")  # an alias of its own: never correlated with an outer statement's table
    started = select(rows.c.content_id).where(
        rows.c.repository_id == repository_id, rows.c.version_added > low, rows.c.version_added <= high
    )
    ended = select(rows.c.content_id).where(
        rows.c.repository_id == repository_id, rows.c.version_removed > low, rows.c.version_removed <= high
    )
    return union(started, ended).subquery()


def _member(repository_id: int, number: int, content_id: object) -> object:
    """True where the content is in version ``number`` (one index probe per candidate).

    The version bounds and the repository are compared as ``column + 0``: no index can serve them,
    so the probe is one of the content's few rows (its index) whatever the statistics say. Served by
    a version index, it scans every row added up to ``number``, which SQLite's planner prefers; by a
    (repository, version) index, every row of the repository, which PostgreSQL's picks when its
    statistics were gathered before the repository grew.
    """
    rows = _rc.alias()
    probe = select(rows.c.id).where(
        rows.c.content_id == content_id,
        rows.c.repository_id + 0 == repository_id,
        rows.c.version_added + 0 <= number,
        or_(rows.c.version_removed.is_(None), rows.c.version_removed + 0 > number),
    )
    return probe.limit(1).scalar_subquery().is_not(None)


def _only_in(repository_id: int, present: int, absent: int) -> Select[tuple[int]]:
    """Content ids in version ``present`` and not in version ``absent``, found from the changes between them."""
    candidates = _changed_between(repository_id, min(present, absent), max(present, absent))
    cid = candidates.c.content_id
    return (
        select(cid)
        .where(_member(repository_id, present, cid), ~_member(repository_id, absent, cid))  # type: ignore[operator]
        .order_by(cid)
    )


def diff_ids(conn: Connection, repository_id: int, a: int, b: int) -> DiffIds:
    """What version ``b`` has that ``a`` lacks, and the reverse, in time proportional to the changes."""
    added = list(conn.execute(_only_in(repository_id, b, a)).scalars())
    removed = list(conn.execute(_only_in(repository_id, a, b)).scalars())
    return DiffIds(added, removed)


def rollback_to(conn: Connection, repository_id: int, target: int) -> tuple[int, int, int]:
    """Create version latest+1 holding exactly version ``target``'s content; return (number, added, removed).

    End the rows of what came after ``target``, start rows for what left since. What came after is
    read first (the diff, proportional to the change) and its current rows are ended by content id,
    in chunks, with the repository compared as ``repository_id + 0``: each chunk is found through the
    content index whatever the statistics say. As one statement, a planner whose statistics predate
    the repository's growth walked all of its current rows (the ``(repository, version_removed)``
    index) once per unit that came after: quadratic.
    """
    version = begin_version(conn, repository_id)
    latest = version.base_number
    came_after = list(conn.execute(_only_in(repository_id, latest, target)).scalars())
    removed = 0
    current = and_(_rc.c.repository_id + 0 == repository_id, _rc.c.version_removed.is_(None))
    for chunk in _chunks(came_after):
        ending = update(_rc).where(_rc.c.content_id.in_(chunk), current).values(version_removed=version.number)
        removed += conn.execute(ending).rowcount
    left = _only_in(repository_id, target, latest).subquery()
    added = conn.execute(
        insert(_rc).from_select(
            ["repository_id", "content_id", "version_added"],
            select(literal(repository_id), left.c.content_id, literal(version.number)),
        )
    ).rowcount
    count = conn.execute(
        select(_version.c.content_count).where(_version.c.repository_id == repository_id, _version.c.number == target)
    ).scalar_one()
    conn.execute(
        update(_version)
        .where(_version.c.id == version.id)
        .values(complete=True, added_count=added, removed_count=removed, content_count=count, rolled_back_to=target)
    )
    return version.number, added, removed


def membership_changes(conn: Connection, repository_id: int, numbers: Collection[int]) -> int:
    """The membership rows removing ``numbers`` rewrites or deletes: those the versions added or removed."""
    if not numbers:
        return 0
    total = conn.execute(
        select(func.coalesce(func.sum(_version.c.added_count + _version.c.removed_count), 0)).where(
            _version.c.repository_id == repository_id, _version.c.number.in_(list(numbers))
        )
    ).scalar_one()
    return int(total)


def delete_versions(conn: Connection, repository_id: int, numbers: Collection[int]) -> int:
    """Remove complete versions (never the latest) and compact the membership rows; return how many went.

    Rows that started in a removed version start at the next remaining one (or go, if they ended
    before it); rows that ended in a removed version end at the next remaining one, joined with
    the row that starts there for the same unit. The next remaining versions get their base and
    counts recomputed.
    """
    doomed = sorted(set(numbers))
    if not doomed:
        return 0
    if latest_version(conn, repository_id) in doomed:
        raise VersionError("the latest version cannot be removed")
    remaining = [n for n in complete_numbers(conn, repository_id) if n not in set(doomed)]
    gone = conn.execute(
        delete(_version).where(
            _version.c.repository_id == repository_id, _version.c.number.in_(doomed), _version.c.complete
        )
    ).rowcount
    next_of = {d: min(n for n in remaining if n > d) for d in doomed}
    repo = _rc.c.repository_id == repository_id
    for number, following in next_of.items():
        # a row that started in a removed version and ended by the next remaining one covers no version
        conn.execute(
            delete(_rc).where(
                repo,
                _rc.c.version_added == number,
                _rc.c.version_removed.is_not(None),
                _rc.c.version_removed <= following,
            )
        )
        conn.execute(update(_rc).where(repo, _rc.c.version_added == number).values(version_added=following))
        conn.execute(update(_rc).where(repo, _rc.c.version_removed == number).values(version_removed=following))
    for following in sorted(set(next_of.values())):
        _join_adjacent(conn, repository_id, following)
        _recount(conn, repository_id, following, max((n for n in remaining if n < following), default=None))
    return gone


def _join_adjacent(conn: Connection, repository_id: int, number: int) -> None:
    """Join a unit's row ending at ``number`` with its row starting there: one row per unbroken stay."""
    ending, starting = _rc.alias("ending"), _rc.alias("starting")
    pairs = conn.execute(
        select(ending.c.id, starting.c.id, starting.c.version_removed)
        .join(
            starting,
            and_(
                # "+ 0": the later row is found through the content index (the unit's few rows), not by
                # scanning the rows starting there, nor all of the repository's rows through a
                # (repository, ...) index that statistics gathered before the repository grew call small
                starting.c.repository_id + 0 == ending.c.repository_id,
                starting.c.content_id == ending.c.content_id,
                starting.c.version_added + 0 == ending.c.version_removed,
            ),
        )
        .where(ending.c.repository_id == repository_id, ending.c.version_removed == number)
    ).all()
    # the later row goes first: it may be the unit's current row, which the partial unique index allows once
    for chunk in _chunks([later for _, later, _ in pairs]):
        conn.execute(delete(_rc).where(_rc.c.id.in_(chunk)))
    by_end: dict[int | None, list[int]] = {}
    for earlier, _, until in pairs:
        by_end.setdefault(until, []).append(earlier)
    for until, earlier_ids in by_end.items():
        for chunk in _chunks(sorted(earlier_ids)):
            conn.execute(update(_rc).where(_rc.c.id.in_(chunk)).values(version_removed=until))


def _chunks(ids: list[int], size: int = 5000) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def _recount(conn: Connection, repository_id: int, number: int, base: int | None) -> None:
    def rows(column: object) -> int:
        query = select(func.count()).select_from(_rc).where(_rc.c.repository_id == repository_id, column == number)
        return conn.execute(query).scalar_one()

    conn.execute(
        update(_version)
        .where(_version.c.repository_id == repository_id, _version.c.number == number)
        .values(base_number=base, added_count=rows(_rc.c.version_added), removed_count=rows(_rc.c.version_removed))
    )


def versions_beyond(conn: Connection, repository_id: int, keep: int) -> list[int]:
    """The complete versions older than the ``keep`` latest ones."""
    numbers = complete_numbers(conn, repository_id)
    return numbers[: max(len(numbers) - keep, 0)]


def delete_repository(conn: Connection, repository_id: int) -> None:
    """Remove a repository with its versions, membership rows and sync records; content stays (orphans)."""
    conn.execute(delete(_rc).where(_rc.c.repository_id == repository_id))
    versions = select(_version.c.id).where(_version.c.repository_id == repository_id)
    conn.execute(delete(_declared).where(_declared.c.version_id.in_(versions)))
    conn.execute(delete(_version).where(_version.c.repository_id == repository_id))
    conn.execute(delete(_run).where(_run.c.repository_id == repository_id))
    conn.execute(delete(_repo).where(_repo.c.id == repository_id))


def set_retention(conn: Connection, repository_id: int, keep: int | None) -> None:
    conn.execute(update(_repo).where(_repo.c.id == repository_id).values(retain_versions=keep))


def retention(conn: Connection, repository_id: int) -> int | None:
    return conn.execute(select(_repo.c.retain_versions).where(_repo.c.id == repository_id)).scalar()


__all__ = [
    "DiffIds",
    "complete_numbers",
    "delete_repository",
    "delete_versions",
    "diff_ids",
    "membership_changes",
    "require_version",
    "retention",
    "rollback_to",
    "set_retention",
    "versions_beyond",
]
