"""Lifecycle statements against a model: diff, rollback and version removal keep every version exact."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pendingops import RemoteConfig, VersionError
from pendingops.db import lifecycle as sql
from pendingops.db.schema import RepositoryContent, RepositoryVersion
from pendingops.db.versions import (
    associate_content,
    begin_version,
    declare_content,
    ensure_remote,
    ensure_repository,
    find_repository,
    finish_version,
    membership_filter,
)
from pendingops.db.writes import save_units
from tests.conftest import file_units, fresh_database

URL = "http://remote.invalid/PULP_MANIFEST"
_rc = RepositoryContent.__table__
_version = RepositoryVersion.__table__
shared_fixtures = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

contents = st.sets(st.integers(0, 7), max_size=8)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("delete"), st.integers(0, 20)),
        st.tuples(st.just("rollback"), st.integers(0, 20)),
        st.tuples(st.just("retain"), st.integers(1, 4)),
    ),
    max_size=6,
)


class Repo:
    """One example's repository, its content ids, and the model: version number -> content ids."""

    def __init__(self, db: Any, storage: Any) -> None:
        self.db = db
        self.name = f"r-{uuid.uuid4().hex}"
        remote_id = db.transact(ensure_remote, RemoteConfig(url=URL, policy="on_demand"))
        units = file_units(URL, {f"{self.name}/{i}": f"{self.name}{i}".encode() for i in range(8)})
        db.transact(save_units, db, storage, units, remote_id)
        self.ids = [u.content_id for u in units]
        self.id = db.transact(ensure_repository, self.name)
        self.model: dict[int, set[int]] = {0: set()}

    def sync(self, members: set[int]) -> None:
        wanted = {self.ids[i] for i in members}

        def build(conn: Any) -> tuple[int, int]:
            version = begin_version(conn, self.id)
            associate_content(conn, self.db, self.id, version, sorted(wanted))
            declare_content(conn, self.db, version, sorted(wanted))
            return version.number, sum(finish_version(conn, self.id, version, mirror=True))

        number, changes = self.db.transact(build)
        if changes:
            self.model[number] = wanted

    def members(self, conn: Any, number: int) -> set[int]:
        rows = conn.execute(select(_rc.c.content_id).where(membership_filter(self.id, number))).scalars().all()
        assert len(rows) == len(set(rows)), "a unit is in a version twice"
        return set(rows)

    def check(self) -> None:
        with self.db.engine.connect() as conn:
            numbers = sql.complete_numbers(conn, self.id)
            assert numbers == sorted(self.model)
            rows = {
                r.number: r for r in conn.execute(select(_version).where(_version.c.repository_id == self.id)).all()
            }
            previous: int | None = None
            for number in numbers:
                expected = self.model[number]
                assert self.members(conn, number) == expected, number
                before = self.model[previous] if previous is not None else set()
                row = rows[number]
                assert (row.content_count, row.added_count, row.removed_count) == (
                    len(expected),
                    len(expected - before),
                    len(before - expected),
                ), number
                if previous is not None:
                    assert row.base_number == previous
                previous = number
            for a in numbers:
                for b in numbers:
                    found = sql.diff_ids(conn, self.id, a, b)
                    assert (set(found.added), set(found.removed)) == (
                        self.model[b] - self.model[a],
                        self.model[a] - self.model[b],
                    )
            intervals = conn.execute(
                select(_rc.c.content_id, _rc.c.version_added, _rc.c.version_removed).where(
                    _rc.c.repository_id == self.id
                )
            ).all()
        ends = {(cid, removed) for cid, _, removed in intervals}
        for cid, added, removed in intervals:
            assert added in self.model and (removed is None or removed in self.model), "rows name existing versions"
            assert removed is None or removed > added
            assert (cid, added) not in ends, "an unbroken stay is one row"


@shared_fixtures
@given(history=st.lists(contents, min_size=1, max_size=5), steps=actions)
def test_every_remaining_version_keeps_its_content_and_counts(db, storage, history, steps):
    repo = Repo(db, storage)
    for members in history:
        repo.sync(members)
    repo.check()
    for action, value in steps:
        numbers = sorted(repo.model)
        latest = numbers[-1]
        if action == "delete":
            number = numbers[value % len(numbers)]
            if number == latest:
                with pytest.raises(VersionError, match="latest"):
                    db.transact(sql.delete_versions, repo.id, [number])
                continue
            db.transact(sql.delete_versions, repo.id, [number])
            del repo.model[number]
        elif action == "rollback":
            target = numbers[value % len(numbers)]
            if repo.model[target] == repo.model[latest]:
                continue
            number, added, removed = db.transact(sql.rollback_to, repo.id, target)
            assert number == latest + 1, "numbers are never reused"
            assert (added, removed) == (
                len(repo.model[target] - repo.model[latest]),
                len(repo.model[latest] - repo.model[target]),
            )
            repo.model[number] = set(repo.model[target])
        else:
            doomed = db.transact(sql.versions_beyond, repo.id, value)
            assert doomed == numbers[: max(len(numbers) - value, 0)]
            db.transact(sql.delete_versions, repo.id, doomed)
            for number in doomed:
                del repo.model[number]
        repo.check()


def test_removing_the_latest_version_is_refused(db, storage):
    repo = Repo(db, storage)
    repo.sync({1, 2})
    with pytest.raises(VersionError, match="latest version cannot be removed"):
        db.transact(sql.delete_versions, repo.id, [1])
    repo.check()


def test_removing_a_repository_leaves_its_content_for_orphan_cleanup(db, storage):
    repo, other = Repo(db, storage), Repo(db, storage)
    repo.sync({1, 2})
    other.sync({3})
    db.transact(sql.delete_repository, repo.id)
    with db.engine.connect() as conn:
        assert conn.execute(select(_rc.c.id).where(_rc.c.repository_id == repo.id)).first() is None
        assert conn.execute(select(_version.c.id).where(_version.c.repository_id == repo.id)).first() is None
    other.check()
    with db.engine.connect() as conn, pytest.raises(VersionError, match="no repository"):
        find_repository(conn, repo.name)


def test_sqlite_plans_probe_the_membership_index_per_changed_unit(tmp_path):
    """A diff (and so a rollback) reads the rows that changed through the version indexes, then
    probes the content's few rows per candidate (the content index, whatever the statistics say about
    the repository): never a scan of the repository's rows."""
    db = fresh_database("sqlite", tmp_path)
    try:
        with db.engine.connect() as conn:
            statement = sql._only_in(1, 4, 1).compile(conn, compile_kwargs={"literal_binds": True})
            plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}"))
        assert "USING INDEX repository_content_added (repository_id=? AND version_added>? AND" in plan, plan
        assert "USING INDEX repository_content_removed (repository_id=? AND version_removed>? AND" in plan, plan
        assert plan.count("USING INDEX repository_content_content (content_id=?)") == 2, plan
        assert "SCAN repository_content" not in plan, plan
    finally:
        db.close()
