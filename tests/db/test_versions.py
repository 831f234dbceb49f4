"""Repository versions: intervals, finishing, discarding, and concurrent registration."""

from __future__ import annotations

import asyncio
import functools

import pytest
from sqlalchemy import select, update

from pendingops import RemoteConfig, SyncFailed, VersionError, declarative_version, open_database
from pendingops import operators as ops
from pendingops.db.names import ReservedName
from pendingops.db.schema import Remote, Repository, RepositoryContent, RepositoryVersion
from pendingops.db.versions import (
    associate_content,
    begin_version,
    declare_content,
    discard_incomplete_versions,
    ensure_remote,
    ensure_repository,
    finish_version,
    version_info,
)
from pendingops.db.writes import save_units
from tests.conftest import POSTGRES_URL, count_rows, file_units, race, second_database, version_content, version_numbers

URL = "http://remote.invalid/PULP_MANIFEST"
FILES = {name: name.encode() * 3 for name in "abcdef"}


def _saved_ids(db, storage, files: dict[str, bytes]) -> dict[str, int]:
    """Save on-demand file units; return content ids by path."""
    remote_id = db.transact(ensure_remote, RemoteConfig(url=URL, policy="on_demand"))
    units = file_units(URL, files)
    db.transact(save_units, db, storage, units, remote_id)
    return {u.fields["relative_path"]: u.content_id for u in units}


def _build(db, repo_id: int, add: list[int], *, declare: list[int] | None = None, mirror: bool = False):
    def build(conn):
        version = begin_version(conn, repo_id)
        associate_content(conn, db, repo_id, version, add)
        if mirror:
            declare_content(conn, db, version, [*add, *(declare or [])])
        return version, finish_version(conn, repo_id, version, mirror=mirror)

    return db.transact(build)


def _paths(db, repo: str, number: int | None = None) -> set[str]:
    return {path for path, _ in version_content(db, repo, number)}


def test_new_repository_has_an_empty_complete_version_zero(db):
    first = db.transact(ensure_repository, "r")
    assert db.transact(ensure_repository, "r") == first
    assert version_numbers(db, "r") == [0]
    info = db.transact(version_info, "r")
    assert (info.number, info.content_count, info.base_number) == (0, 0, None)
    with pytest.raises(VersionError, match="no repository named 'nope'"):
        db.transact(version_info, "nope")
    with pytest.raises(VersionError, match="has no version 7"):
        db.transact(version_info, "r", 7)


def test_no_repository_is_made_with_the_reserved_name(db, storage):
    with pytest.raises(ReservedName, match="'-' is reserved"):
        db.transact(ensure_repository, "-")
    with pytest.raises(ReservedName):  # every way a sync starts goes through the same check
        units = file_units(URL, FILES)
        asyncio.run(declarative_version(units, db=db, storage=storage, remote=RemoteConfig(url=URL), repository="-"))
    assert count_rows(db, Repository) == 0
    db.transact(ensure_repository, "-a-")  # only the name itself is kept
    assert count_rows(db, Repository) == 1


def test_versions_are_intervals_and_old_versions_never_change(db, storage):
    ids = _saved_ids(db, storage, FILES)
    repo = db.transact(ensure_repository, "r")
    _, (added, removed) = _build(db, repo, [ids["a"], ids["b"], ids["c"]])
    assert (added, removed) == (3, 0)
    _, (added, removed) = _build(db, repo, [ids["d"]], declare=[ids["b"]], mirror=True)
    assert (added, removed) == (1, 2)
    _, (added, removed) = _build(db, repo, [ids["a"], ids["b"]])  # a comes back, b is still there
    assert (added, removed) == (1, 0)

    assert _paths(db, "r", 0) == set()
    assert _paths(db, "r", 1) == {"a", "b", "c"}
    assert _paths(db, "r", 2) == {"b", "d"}
    assert _paths(db, "r", 3) == {"a", "b", "d"}
    infos = [db.transact(version_info, "r", n) for n in (1, 2, 3)]
    counts = [(v.number, v.content_count, v.added, v.removed) for v in infos]
    assert counts == [(1, 3, 3, 0), (2, 2, 1, 2), (3, 3, 1, 0)]
    # Rows in proportion to changes: a has two intervals, the others one.
    assert count_rows(db, RepositoryContent) == 5


def test_a_mirror_removal_leaves_what_earlier_versions_removed_alone(db, storage):
    """Two mirror syncs in a row, each removing something: the second touches only what is still in
    the repository, so the version the first one made keeps its content."""
    ids = _saved_ids(db, storage, FILES)
    repo = db.transact(ensure_repository, "r")
    _build(db, repo, [ids["a"], ids["b"], ids["c"]])
    _, (added, removed) = _build(db, repo, [], declare=[ids["b"], ids["c"]], mirror=True)
    assert (added, removed) == (0, 1)
    _, (added, removed) = _build(db, repo, [ids["d"]], declare=[ids["c"]], mirror=True)
    assert (added, removed) == (1, 1)

    assert _paths(db, "r", 1) == {"a", "b", "c"}
    assert _paths(db, "r", 2) == {"b", "c"}
    assert _paths(db, "r", 3) == {"c", "d"}
    counts = [
        (v.number, v.content_count, v.added, v.removed) for v in (db.transact(version_info, "r", n) for n in (2, 3))
    ]
    assert counts == [(2, 2, 0, 1), (3, 2, 1, 1)]
    rc = RepositoryContent.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(select(rc.c.content_id, rc.c.version_added, rc.c.version_removed)).all()
    assert sorted(rows) == sorted([(ids["a"], 1, 2), (ids["b"], 1, 3), (ids["c"], 1, None), (ids["d"], 3, None)])


def test_a_version_that_changes_nothing_is_discarded(db, storage):
    ids = _saved_ids(db, storage, FILES)
    repo = db.transact(ensure_repository, "r")
    _build(db, repo, [ids["a"]])
    _, (added, removed) = _build(db, repo, [ids["a"]], mirror=True)
    assert (added, removed) == (0, 0)
    assert version_numbers(db, "r") == [0, 1]
    assert count_rows(db, RepositoryVersion) == 2


def test_an_incomplete_version_is_invisible_and_undone_whole(db, storage):
    ids = _saved_ids(db, storage, FILES)
    repo = db.transact(ensure_repository, "r")
    _build(db, repo, [ids["a"], ids["b"]])

    def crash(conn):
        # What a process killed while building version 2 leaves: an addition and a removal.
        version = begin_version(conn, repo)
        associate_content(conn, db, repo, version, [ids["c"]])
        rc = RepositoryContent.__table__
        conn.execute(
            update(rc)
            .where(rc.c.repository_id == repo, rc.c.content_id == ids["a"], rc.c.version_removed.is_(None))
            .values(version_removed=version.number)
        )
        return version.number

    number = db.transact(crash)
    assert number == 2
    assert version_numbers(db, "r") == [0, 1]
    assert db.transact(version_info, "r").number == 1
    assert _paths(db, "r", 1) == {"a", "b"}
    with pytest.raises(VersionError):
        db.transact(version_info, "r", 2)

    assert db.transact(discard_incomplete_versions, repo) == 1
    assert count_rows(db, RepositoryVersion) == 2
    rc = RepositoryContent.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(select(rc.c.content_id, rc.c.version_added, rc.c.version_removed)).all()
    assert sorted(rows) == sorted([(ids["a"], 1, None), (ids["b"], 1, None)])
    _, (added, removed) = _build(db, repo, [ids["d"]])
    assert (added, removed) == (1, 0)
    assert _paths(db, "r", 2) == {"a", "b", "d"}


def test_a_later_begin_discards_an_abandoned_version(db, storage):
    ids = _saved_ids(db, storage, FILES)
    repo = db.transact(ensure_repository, "r")
    db.transact(lambda conn: associate_content(conn, db, repo, begin_version(conn, repo), [ids["e"]]))
    version, (added, _) = _build(db, repo, [ids["f"]])
    assert version.number == 1 and added == 1
    assert _paths(db, "r") == {"f"}


def _race(db_kind: str, tmp_path, work, rounds: int = 15) -> list[list]:
    """Run ``work(conn, name)`` on two Database objects (two engines) in two threads at once."""
    url = f"sqlite:///{tmp_path / 'pendingops.db'}" if db_kind == "sqlite" else POSTGRES_URL
    databases = [open_database(url, create=False) for _ in range(2)]
    try:
        return [
            race(*(functools.partial(database.transact, work, f"name-{i}") for database in databases))
            for i in range(rounds)
        ]
    finally:
        for database in databases:
            database.close()


def test_concurrent_registration_of_one_repository_and_remote(db, db_kind, tmp_path):
    def register(conn, name):
        return ensure_repository(conn, name), ensure_remote(conn, RemoteConfig(url=URL, name=name))

    for first, second in _race(db_kind, tmp_path, register):
        assert not isinstance(first, Exception), first
        assert not isinstance(second, Exception), second
        assert first == second
    assert count_rows(db, Repository) == count_rows(db, Remote) == 15
    assert count_rows(db, RepositoryVersion) == 15


def test_a_sync_whose_version_another_sync_discarded_fails_and_writes_nothing_into_the_new_one(db, storage):
    """Sync A loses its repository lock mid-sync (its session ended) and sync B, which took the lock,
    discards A's incomplete version and builds its own with the same number. A's next membership write
    and its finish are fenced: A fails saying so, and B's version holds exactly B's content."""
    remote = RemoteConfig(url=URL, policy="on_demand")
    first_half, second_half = {f"a{i}": b"a%d" % i for i in range(6)}, {f"b{i}": b"b%d" % i for i in range(6)}
    b_ids = _saved_ids(db, storage, {"x": b"x"})
    other = second_database(db)
    paused, resume = asyncio.Event(), asyncio.Event()

    async def pause_once(unit) -> None:
        if unit.fields["relative_path"] == "b0":  # held before associate: its membership write comes after B
            paused.set()
            await resume.wait()

    def sync_b() -> None:
        with other.engine.connect() as conn:
            repo_id = conn.execute(select(Repository.__table__.c.id)).scalar_one()
        _build(other, repo_id, [b_ids["x"]])

    async def scenario() -> None:
        pipeline = [ops.dedup(), ops.save(), ops.enrich(pause_once), ops.associate()]
        task = asyncio.ensure_future(
            declarative_version(
                file_units(URL, {**first_half, **second_half}),
                db=db,
                storage=storage,
                remote=remote,
                repository="r",
                pipeline=pipeline,
                batch_size=6,
                batch_wait=0.01,
            )
        )
        await paused.wait()  # A has associated its first batch with its incomplete version 1
        await asyncio.to_thread(sync_b)  # B, holding the lock A lost, builds and finishes version 1
        resume.set()
        with pytest.raises(SyncFailed, match="lock was lost"):
            await task

    try:
        asyncio.run(scenario())
    finally:
        other.close()
    assert version_numbers(db, "r") == [0, 1]
    assert _paths(db, "r") == {"x"}  # nothing of A's in B's version
    with db.engine.connect() as conn:
        assert conn.execute(select(RepositoryVersion.__table__.c.complete)).scalars().all() == [True, True]
