"""Repository versions: creating, filling, finishing and discarding them, set-based."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, exists, func, insert, or_, select, update

from pendingops.db.database import Database, dialect_insert
from pendingops.db.names import check_repository_name
from pendingops.db.schema import (
    Content,
    DeclaredContent,
    Remote,
    Repository,
    RepositoryContent,
    RepositoryVersion,
)
from pendingops.remote import RemoteConfig

_repo = Repository.__table__
_version = RepositoryVersion.__table__
_rc = RepositoryContent.__table__
_declared = DeclaredContent.__table__
_remote = Remote.__table__
_content = Content.__table__


class VersionError(RuntimeError):
    """A repository or version does not exist, or cannot be built now."""


class RepositoryGone(VersionError):
    """A sync bound to a repository (a queued or scheduled one) that was deleted since: nothing is synced."""


class VersionLost(VersionError):
    """The version being built is no longer this sync's: another sync discarded it or finished one.

    It happens only when this sync lost its repository lock (its database session ended) and
    another sync took the lock meanwhile; the version is never finished.
    """


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A complete repository version, as reported to callers."""

    repository: str
    number: int
    content_count: int
    added: int
    removed: int
    base_number: int | None
    #: the version a rollback copied (None: a sync made it)
    rolled_back_to: int | None = None


@dataclass(slots=True)
class NewVersion:
    """The version being built: invisible until ``finish_version`` marks it complete."""

    id: int
    number: int
    base_number: int
    base_count: int


def ensure_repository(conn: Connection, name: str, *, identity: tuple[int, str] | None = None) -> int:
    """Return the repository's id, creating it with an empty complete version 0 if needed.

    Safe when another process creates the same repository at the same time. A reserved name is refused
    (ReservedName). With ``identity`` (the id and creation stamp a queued sync was bound to) nothing is
    created: the repository must still be that one, else ``RepositoryGone``, in the same transaction.
    """
    check_repository_name(name)
    if identity is not None:
        return require_repository(conn, name, identity)
    found = conn.execute(select(_repo.c.id).where(_repo.c.name == name)).scalar()
    if found is not None:
        return found
    stmt = dialect_insert(conn.dialect.name, _repo).values(name=name)
    repo_id = conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]).returning(_repo.c.id)).scalar()
    if repo_id is None:  # created meanwhile by someone else, with its version 0
        return conn.execute(select(_repo.c.id).where(_repo.c.name == name)).scalar_one()
    conn.execute(insert(_version).values(repository_id=repo_id, number=0, complete=True, content_count=0))
    return repo_id


def require_repository(conn: Connection, name: str, identity: tuple[int, str]) -> int:
    """The id of repository ``name`` if it is still the one of ``identity`` (id, creation stamp), else
    ``RepositoryGone``: SQLite may give a new repository the id of a deleted one, hence the stamp."""
    if repository_identity(conn, name) != identity:
        raise RepositoryGone(
            f"repository {name!r} was deleted after this sync was queued; nothing was synced (queue it again)"
        )
    return identity[0]


def repository_identity(conn: Connection, name: str) -> tuple[int, str] | None:
    """A repository's id and creation stamp, or None when there is no repository ``name``."""
    row = conn.execute(select(_repo.c.id, _repo.c.created_at).where(_repo.c.name == name)).first()
    return None if row is None else (row.id, str(row.created_at))


def find_repository(conn: Connection, name: str) -> int:
    found = conn.execute(select(_repo.c.id).where(_repo.c.name == name)).scalar()
    if found is None:
        raise VersionError(f"no repository named {name!r}")
    return found


def ensure_remote(conn: Connection, remote: RemoteConfig) -> int:
    """Return the remote row's id (by name), creating or updating it to match ``remote``."""
    name = remote.display_name
    found = conn.execute(select(_remote.c.id).where(_remote.c.name == name)).scalar()
    recorded = {"url": remote.url, "policy": remote.policy, "max_file_size": remote.max_file_size}
    if found is None:
        stmt = dialect_insert(conn.dialect.name, _remote).values(name=name, **recorded)
        created = conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]).returning(_remote.c.id)).scalar()
        if created is not None:
            return created
        found = conn.execute(select(_remote.c.id).where(_remote.c.name == name)).scalar_one()
    conn.execute(update(_remote).where(_remote.c.id == found).values(**recorded))
    return found


def latest_version(conn: Connection, repository_id: int) -> int:
    return conn.execute(
        select(func.max(_version.c.number)).where(_version.c.repository_id == repository_id, _version.c.complete)
    ).scalar_one()


def discard_incomplete_versions(conn: Connection, repository_id: int) -> int:
    """Undo every incomplete version of the repository (left by a crash or a failed sync)."""
    rows = conn.execute(
        select(_version.c.id, _version.c.number).where(
            _version.c.repository_id == repository_id, _version.c.complete.is_(False)
        )
    ).all()
    for version_id, number in rows:
        _undo_version(conn, repository_id, version_id, number)
    return len(rows)


def _undo_version(conn: Connection, repository_id: int, version_id: int, number: int) -> None:
    """Delete an incomplete version and the membership changes it made.

    The version row is deleted by id first, and nothing else happens unless that row was still
    there and incomplete: membership rows carry only the version's number, which another version
    may have taken by the time a stale undo runs.
    """
    gone = conn.execute(
        delete(_version).where(
            _version.c.id == version_id, _version.c.repository_id == repository_id, _version.c.complete.is_(False)
        )
    ).rowcount
    if not gone:
        return
    conn.execute(delete(_rc).where(_rc.c.repository_id == repository_id, _rc.c.version_added == number))
    conn.execute(
        update(_rc)
        .where(_rc.c.repository_id == repository_id, _rc.c.version_removed == number)
        .values(version_removed=None)
    )
    conn.execute(delete(_declared).where(_declared.c.version_id == version_id))


def begin_version(conn: Connection, repository_id: int) -> NewVersion:
    """Create the next (incomplete) version on top of the latest complete one."""
    discard_incomplete_versions(conn, repository_id)
    base = conn.execute(
        select(_version.c.number, _version.c.content_count)
        .where(_version.c.repository_id == repository_id, _version.c.complete)
        .order_by(_version.c.number.desc())
        .limit(1)
    ).first()
    if base is None:
        raise VersionError("the repository was removed while this sync waited for it; nothing was synced")
    number = base.number + 1
    version_id = conn.execute(
        insert(_version)
        .values(repository_id=repository_id, number=number, base_number=base.number, complete=False)
        .returning(_version.c.id)
    ).scalar_one()
    return NewVersion(id=version_id, number=number, base_number=base.number, base_count=base.content_count)


def claim_version(conn: Connection, version: NewVersion) -> None:
    """Check, in the caller's transaction, that the version being built is still this sync's.

    The version row is locked for the transaction (PostgreSQL), so another sync cannot discard it
    between this check and the caller's writes: every membership write is fenced by it.
    """
    query = select(_version.c.repository_id).where(_version.c.id == version.id, _version.c.complete.is_(False))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    if conn.execute(query).scalar() is None:
        raise VersionLost(
            f"version {version.number} was discarded by another sync while this one was building it "
            "(the repository lock was lost); no new version; rerun"
        )


def associate_content(
    conn: Connection, db: Database, repository_id: int, version: NewVersion, content_ids: Sequence[int]
) -> int:
    """Add content to the version being built unless already a member; return how many were added.

    The current-membership partial unique index decides, through ON CONFLICT, so the cost does not
    depend on the planner's (possibly stale) statistics of a table being filled.
    """
    claim_version(conn, version)
    rows = [
        {"repository_id": repository_id, "content_id": cid, "version_added": version.number}
        for cid in sorted(set(content_ids))
    ]
    stmt = db.insert(_rc).on_conflict_do_nothing(
        index_elements=["repository_id", "content_id"], index_where=_rc.c.version_removed.is_(None)
    )
    return len(db.insert_rows(conn, stmt, rows, _rc.c.id))


def declare_content(conn: Connection, db: Database, version: NewVersion, content_ids: Sequence[int]) -> None:
    """Record content the source declared, so a mirror finish keeps it."""
    claim_version(conn, version)
    rows = [(version.id, content_id) for content_id in sorted(set(content_ids))]
    db.insert_new(conn, _declared, ("version_id", "content_id"), rows)


def finish_version(conn: Connection, repository_id: int, version: NewVersion, *, mirror: bool) -> tuple[int, int]:
    """Remove undeclared content (mirror), count the changes and make the version visible.

    Returns (added, removed). A version that changes nothing is discarded instead. Raises
    VersionLost when the version is no longer this sync's, or another version was finished since
    its base.
    """
    claim_version(conn, version)
    if latest_version(conn, repository_id) != version.base_number:
        raise VersionLost(
            f"another sync finished a version of this repository after version {version.base_number}, "
            "while this one was building on it (the repository lock was lost); no new version; rerun"
        )
    removed = 0
    if mirror:
        declared = exists().where(_declared.c.version_id == version.id, _declared.c.content_id == _rc.c.content_id)
        removed = conn.execute(
            update(_rc)
            .where(
                _rc.c.repository_id == repository_id,
                _rc.c.version_removed.is_(None),
                _rc.c.version_added < version.number,
                ~declared,
            )
            .values(version_removed=version.number)
        ).rowcount
        conn.execute(delete(_declared).where(_declared.c.version_id == version.id))
    added = conn.execute(
        select(func.count())
        .select_from(_rc)
        .where(_rc.c.repository_id == repository_id, _rc.c.version_added == version.number)
    ).scalar_one()
    if not added and not removed:
        _undo_version(conn, repository_id, version.id, version.number)
        return 0, 0
    conn.execute(
        update(_version)
        .where(_version.c.id == version.id)
        .values(
            complete=True,
            added_count=added,
            removed_count=removed,
            content_count=version.base_count + added - removed,
        )
    )
    return added, removed


def discard_version(conn: Connection, repository_id: int, version: NewVersion) -> None:
    _undo_version(conn, repository_id, version.id, version.number)


def version_info(conn: Connection, repository: str, number: int | None = None) -> VersionInfo:
    """Describe a complete version (the latest when ``number`` is None)."""
    repo_id = find_repository(conn, repository)
    if number is None:
        number = latest_version(conn, repo_id)
    row = conn.execute(
        select(_version).where(_version.c.repository_id == repo_id, _version.c.number == number, _version.c.complete)
    ).first()
    if row is None:
        raise VersionError(f"repository {repository!r} has no version {number}")
    return VersionInfo(repository, row.number, row.content_count, row.added_count, row.removed_count, row.base_number)


def list_versions(conn: Connection, repository: str) -> list[VersionInfo]:
    repo_id = find_repository(conn, repository)
    rows = conn.execute(
        select(_version).where(_version.c.repository_id == repo_id, _version.c.complete).order_by(_version.c.number)
    ).all()
    return [
        VersionInfo(
            repository, r.number, r.content_count, r.added_count, r.removed_count, r.base_number, r.rolled_back_to
        )
        for r in rows
    ]


def membership_filter(repository_id: int, number: int):
    """The WHERE clause selecting ``repository_content`` rows visible in version ``number``."""
    return and_(
        _rc.c.repository_id == repository_id,
        _rc.c.version_added <= number,
        or_(_rc.c.version_removed.is_(None), _rc.c.version_removed > number),
    )
