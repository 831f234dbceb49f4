"""Hypothesis properties of whole syncs, against a real server and both databases.

Examples share the test's database and storage: each works in a repository of its own and with
bytes of its own (a per-example salt), and properties are checked per repository.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import update

from pendingops import RemoteConfig, SyncFailed, declarative_version, sync_remote
from pendingops import operators as ops
from pendingops.db.schema import RepositoryContent
from pendingops.db.versions import begin_version, ensure_repository
from pendingops.plugins.file import FilePlugin
from tests.conftest import (
    assert_artifacts_intact,
    assert_no_duplicate_rows,
    failed_paths,
    file_set,
    file_units,
    version_content,
    version_numbers,
)
from tests.remote_server import Fault, RemoteServer
from tests.server_thread import ServerThread

PATHS = [f"d{i % 3}/file {i}.txt" for i in range(6)] + ["with,comma", "deep/a/b/c.bin"]
CONTENTS = [b"alpha", b"beta", b"gamma", b"delta\n" * 300]

declared_sets = st.dictionaries(st.sampled_from(PATHS), st.sampled_from(CONTENTS), max_size=8)
shared_fixtures = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Example:
    """One example's own corner of the shared database and storage."""

    def __init__(self) -> None:
        self.salt = uuid.uuid4().hex
        self.repository = f"r-{self.salt}"

    def files(self, declared: dict[str, bytes]) -> dict[str, bytes]:
        return {path: f"{self.salt}:".encode() + data for path, data in declared.items()}


def _digests(*file_sets: dict[str, bytes]) -> set[str]:
    return {hashlib.sha256(data).hexdigest() for files in file_sets for data in files.values()}


async def _sync(server: RemoteServer, db, storage, repository: str, **options):
    remote = RemoteConfig(url=server.manifest_url, retries=0, **options.pop("remote", {}))
    return await sync_remote(
        FilePlugin(), remote, db=db, storage=storage, repository=repository, batch_wait=0.005, **options
    )


@shared_fixtures
@given(base=declared_sets, declared=declared_sets, mirror=st.booleans(), batch_size=st.integers(1, 5))
def test_mirror_gives_the_declared_set_and_additive_the_union(db, storage, base, declared, mirror, batch_size):
    example = Example()
    base, declared = example.files(base), example.files(declared)

    async def scenario():
        async with RemoteServer(dict(base)) as server:
            first = await _sync(server, db, storage, example.repository, batch_size=batch_size)
            server.files = dict(declared)
            second = await _sync(server, db, storage, example.repository, mirror=mirror, batch_size=batch_size)
            return first, second, server.file_requests()

    first, second, downloads = asyncio.run(scenario())
    before = file_set(base)
    expected = file_set(declared) if mirror else before | file_set(declared)
    assert version_content(db, example.repository) == expected
    assert first.created == bool(base)
    assert version_content(db, example.repository, first.version.number) == before  # unchanged by the second
    assert second.created == (expected != before)
    assert (second.added, second.removed) == (len(expected - before), len(before - expected))
    assert second.version.content_count == len(expected)
    assert downloads == len(_digests(base, declared))  # each distinct file fetched once, ever
    assert_no_duplicate_rows(db)
    assert_artifacts_intact(db, storage)


@shared_fixtures
@given(paths=st.sets(st.sampled_from(PATHS), min_size=1), n=st.integers(1, 4))
def test_downloads_in_flight_never_exceed_n(db, storage, paths, n):
    example = Example()
    files = example.files({path: path.encode() for path in paths})

    async def scenario():
        async with RemoteServer(files, delay=0.005) as server:
            pipeline = [ops.dedup(), ops.download(n=n), ops.save()]
            result = await _sync(server, db, storage, example.repository, pipeline=pipeline)
            return result, server.max_in_flight

    result, most = asyncio.run(scenario())
    assert result.added == len(files)
    assert 1 <= most <= n


@shared_fixtures
@given(base=declared_sets, declared=declared_sets, mirror=st.booleans(), data=st.data())
def test_results_do_not_depend_on_batch_size_window_or_order(db, storage, base, declared, mirror, data):
    example = Example()
    base, declared = example.files(base), example.files(declared)
    repeats = data.draw(st.lists(st.sampled_from(sorted(declared)), max_size=3)) if declared else []
    items = sorted(declared) + repeats  # a source may declare a unit more than once
    runs = [
        {
            "order": data.draw(st.permutations(items)),
            "batch_size": data.draw(st.integers(1, 12)),
            "window": data.draw(st.integers(1, 12)),
        }
        for _ in range(2)
    ]

    async def scenario():
        results = []
        async with RemoteServer() as server:
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            for i, run in enumerate(runs):
                repository = f"{example.repository}-{i}"
                server.files = dict(base)
                units = file_units(server.manifest_url, base)
                await declarative_version(units, db=db, storage=storage, remote=remote, repository=repository)
                server.files = dict(declared)
                units = [file_units(server.manifest_url, {path: declared[path]})[0] for path in run["order"]]
                results.append(
                    await declarative_version(
                        units,
                        db=db,
                        storage=storage,
                        remote=remote,
                        repository=repository,
                        mirror=mirror,
                        batch_size=run["batch_size"],
                        window=run["window"],
                        batch_wait=0.005,
                    )
                )
        return results

    first, second = asyncio.run(scenario())
    expected = file_set(declared) if mirror else file_set(base) | file_set(declared)
    assert version_content(db, f"{example.repository}-0") == version_content(db, f"{example.repository}-1") == expected
    assert (first.created, first.added, first.removed) == (second.created, second.added, second.removed)
    assert_no_duplicate_rows(db)


def test_successive_syncs_against_a_changing_remote(db, storage):
    """Many syncs, mirror and additive, some with a missing file, some after a crash: every version
    always holds what it held when it was made."""

    class Syncs(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.example = Example()
            self.repository = self.example.repository
            self.thread = ServerThread({})
            self.server = self.thread.__enter__()
            self.remote = RemoteConfig(url=self.server.manifest_url, name=self.repository, retries=0)
            db.transact(ensure_repository, self.repository)
            self.remote_files: dict[str, bytes] = {}
            #: what every complete version must hold, by number
            self.versions: dict[int, set[tuple[str, str]]] = {0: set()}

        @property
        def latest(self) -> int:
            return max(self.versions)

        def teardown(self) -> None:
            self.thread.__exit__(None, None, None)

        def change_the_remote(self, changes: dict[str, int], removals: set[str] = frozenset()) -> None:
            # Bytes unique to (path, variant): whether a download happens depends on nothing else.
            changed = {path: f"{path}:{variant}".encode() for path, variant in changes.items()}
            kept = {p: d for p, d in self.remote_files.items() if p not in removals}
            self.remote_files = kept | self.example.files(changed)
            self.server.files = dict(self.remote_files)

        @initialize(files=st.dictionaries(st.sampled_from(PATHS), st.integers(0, 2), min_size=2, max_size=6))
        def start(self, files):
            self.change_the_remote(files)

        @rule(
            changes=st.dictionaries(st.sampled_from(PATHS), st.integers(0, 2), max_size=3),
            removals=st.sets(st.sampled_from(PATHS), max_size=2),
            mirror=st.booleans(),
            batch_size=st.integers(1, 6),
            on_error=st.sampled_from(["fail", "skip"]),
            data=st.data(),
        )
        def change_then_sync(self, changes, removals, mirror, batch_size, on_error, data):
            self.change_the_remote(changes, removals)
            # A changed file is a new unit: the one whose 404 can fail it.
            changed = sorted(set(changes) & set(self.remote_files))
            broken = data.draw(st.none() | st.sampled_from(changed)) if changed else None
            self.sync(mirror, batch_size, on_error, broken)

        @rule(
            mirror=st.booleans(),
            batch_size=st.integers(1, 6),
            on_error=st.sampled_from(["fail", "skip"]),
            data=st.data(),
        )
        def resync(self, mirror, batch_size, on_error, data):
            paths = sorted(self.remote_files)
            self.sync(mirror, batch_size, on_error, data.draw(st.none() | st.sampled_from(paths)) if paths else None)

        def sync(self, mirror: bool, batch_size: int, on_error: str, broken: str | None) -> None:
            """Sync the remote, ``broken`` answering 404; check the result against the model."""
            declared = file_set(self.remote_files)
            failing: set[tuple[str, str]] = set()
            self.server.faults = {}
            if broken is not None:
                self.server.faults = {broken: Fault(status=404)}
                sha256 = hashlib.sha256(self.remote_files[broken]).hexdigest()
                if not storage.exists(storage.location_for(sha256)):  # only a missing file is fetched
                    failing = {(broken, sha256)}
            previous = self.versions[self.latest]

            async def run():
                return await declarative_version(
                    file_units(self.server.manifest_url, self.remote_files),
                    db=db,
                    storage=storage,
                    remote=self.remote,
                    repository=self.repository,
                    mirror=mirror,
                    on_error=on_error,
                    batch_size=batch_size,
                    batch_wait=0.005,
                )

            if failing and on_error == "fail":
                try:
                    asyncio.run(run())
                except SyncFailed as exc:
                    assert failed_paths(exc.failures) == [broken]
                    return
                raise AssertionError("the sync should have failed")
            result = asyncio.run(run())
            assert sorted(failed_paths(result.failures)) == sorted(path for path, _ in failing)
            added = declared - failing
            expected = added | (previous & failing) if mirror else previous | added
            assert result.created == (expected != previous)
            if result.created:
                assert result.version.number == self.latest + 1
                self.versions[result.version.number] = expected

        @rule()
        def crash_while_building_a_version(self):
            """A process killed while removing everything: its version must never show."""

            def crash(conn):
                repo_id = ensure_repository(conn, self.repository)
                version = begin_version(conn, repo_id)
                rc = RepositoryContent.__table__
                conn.execute(
                    update(rc)
                    .where(rc.c.repository_id == repo_id, rc.c.version_removed.is_(None))
                    .values(version_removed=version.number)
                )

            db.transact(crash)

        @invariant()
        def every_version_holds_what_it_held(self):
            assert version_numbers(db, self.repository) == sorted(self.versions)
            for number, expected in self.versions.items():
                assert version_content(db, self.repository, number) == expected

    run_state_machine_as_test(
        Syncs,
        settings=settings(
            stateful_step_count=15,
            # No shrinking: every step is a real sync, and the failing steps are reported as they ran.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    assert_no_duplicate_rows(db)
    assert_artifacts_intact(db, storage)
