"""Whole syncs through the ready-made pipeline, against a real server and both databases."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections import Counter
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pendingops import RemoteConfig, SyncFailed, SyncResult, declarative_version, sync_remote
from pendingops import operators as ops
from pendingops.db.schema import Artifact, RemoteArtifact, SyncRun
from pendingops.download.fetcher import DownloadError
from pendingops.maintenance.lifecycle import delete_version, rollback
from pendingops.plugins.file import FilePlugin
from tests.conftest import count_rows, count_statements, file_set, file_units, version_content, version_numbers
from tests.remote_server import Fault, RemoteServer


def _files(n: int, tag: str = "") -> dict[str, bytes]:
    return {f"dir{i % 3}/file {i}.txt": f"{tag}content {i}\n".encode() for i in range(n)}


def test_initial_sync_then_mirror_resync(db, storage):
    async def scenario():
        async with RemoteServer(_files(30)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            first = await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", batch_size=7)
            assert (first.version.number, first.added, first.removed) == (1, 30, 0)
            server.files = _files(20) | {"new.txt": b"new"}
            second = await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", mirror=True)
            assert (second.version.number, second.added, second.removed) == (2, 1, 10)
            assert second.version.content_count == 21
            assert server.file_requests() == 31
            noop = await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", mirror=True)
            assert not noop.created and noop.version.number == 2
            assert server.file_requests() == 31

    asyncio.run(scenario())


# -- the error policy ------------------------------------------------------------------------------

BASE = {f"base/{i}": f"base {i}".encode() for i in range(4)}
NEW = {f"new/{i}": f"new {i}".encode() for i in range(6)}
MISSING = {"zz/missing": b"the server says 404"}


def _sync(db, storage, server: RemoteServer, **options):
    remote = RemoteConfig(url=server.manifest_url, retries=0, **options.pop("remote", {}))
    return sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", batch_wait=0.01, **options)


def _stored(storage, files: dict[str, bytes]) -> bool:
    return all(storage.exists(storage.location_for(sha)) for _, sha in file_set(files))


def test_fail_policy_keeps_the_version_and_the_downloaded_artifacts(db, storage):
    async def scenario():
        async with RemoteServer(BASE) as server:
            await _sync(db, storage, server)
            server.files = BASE | NEW | MISSING
            server.faults = {"zz/missing": Fault(status=404)}
            pipeline = [ops.dedup(), ops.download(n=1), ops.save()]  # one at a time, zz/missing last
            with pytest.raises(SyncFailed, match=r"zz/missing.*download failed.*HTTP 404") as caught:
                await _sync(db, storage, server, pipeline=pipeline)
            assert [(f.stage, f.unit.split(",")[0]) for f in caught.value.failures] == [("download", "file zz/missing")]
            assert version_numbers(db, "r") == [0, 1]
            assert version_content(db, "r") == file_set(BASE)
            assert _stored(storage, NEW)  # downloaded before the failure: kept for the rerun
            assert count_rows(db, Artifact) <= len(BASE | NEW)

            server.faults = {}
            rerun = await _sync(db, storage, server)
            assert (rerun.version.number, rerun.added) == (2, 7)
            assert version_content(db, "r") == file_set(BASE | NEW | MISSING)
            assert all(server.requests[p] == 1 for p in BASE | NEW)  # nothing fetched twice
            assert server.requests["zz/missing"] == 2

    asyncio.run(scenario())


def test_skip_policy_reports_failed_units_and_adds_the_rest(db, storage):
    async def scenario():
        async with RemoteServer(BASE | NEW | MISSING, faults={"zz/missing": Fault(status=404)}) as server:
            result = await _sync(db, storage, server, on_error="skip")
            assert result.created and (result.added, result.failed_count) == (10, 1)
            (failure,) = result.failures
            assert failure.unit.startswith("file zz/missing,") and failure.stage == "download"
            assert "HTTP 404" in failure.reason
            assert version_content(db, "r") == file_set(BASE | NEW)

    asyncio.run(scenario())


def test_mirror_keeps_a_failed_unit_the_previous_version_had(db, storage):
    async def scenario():
        async with RemoteServer(BASE | MISSING) as server:
            await _sync(db, storage, server, remote={"policy": "on_demand"})  # nothing downloaded yet
            assert version_content(db, "r") == file_set(BASE | MISSING)

            # Now: zz/missing is gone from the server (listed, but 404), new/0 too; base/0 left the remote.
            server.files = {p: d for p, d in BASE.items() if p != "base/0"} | MISSING | {"new/0": NEW["new/0"]}
            server.faults = {"zz/missing": Fault(status=404), "new/0": Fault(status=404)}
            result = await _sync(db, storage, server, mirror=True, on_error="skip")
            assert {f.unit.split(",")[0] for f in result.failures} == {"file zz/missing", "file new/0"}
            assert (result.added, result.removed) == (0, 1)
            kept = {p: d for p, d in BASE.items() if p != "base/0"} | MISSING
            assert version_content(db, "r") == file_set(kept)
            assert version_content(db, "r", 1) == file_set(BASE | MISSING)

    asyncio.run(scenario())


def test_fail_policy_in_mirror_mode_changes_nothing(db, storage):
    async def scenario():
        async with RemoteServer(BASE) as server:
            await _sync(db, storage, server)
            server.files = NEW | MISSING
            server.faults = {"zz/missing": Fault(status=404)}
            with pytest.raises(SyncFailed):
                await _sync(db, storage, server, mirror=True)
            assert version_numbers(db, "r") == [0, 1]
            assert version_content(db, "r") == file_set(BASE)

    asyncio.run(scenario())


def test_an_explicit_pipeline_replaces_the_default_even_when_empty(db, storage):
    async def scenario():
        async with RemoteServer(BASE) as server:
            # Nothing looks up, downloads or saves: units never get a content id, so nothing is added.
            empty = await _sync(db, storage, server, pipeline=[])
            assert not empty.created and server.file_requests() == 0
            default = await _sync(db, storage, server)
            assert default.added == len(BASE) and server.file_requests() == len(BASE)

    asyncio.run(scenario())


def test_a_failed_unit_whose_content_is_already_stored_is_never_added(db, storage):
    """Content an on_demand sync of another repository saved has a content id before this sync looks it
    up; when its download then fails, the unit is still left out, under the skip policy too."""
    files = {"a": b"file a", "b": b"file b"}

    async def scenario():
        async with RemoteServer(files) as server:
            lazy = RemoteConfig(url=server.manifest_url, policy="on_demand")
            await sync_remote(FilePlugin(), lazy, db=db, storage=storage, repository="lazy")
            assert version_content(db, "lazy") == file_set(files) and server.file_requests() == 0

            server.faults = {"a": Fault(status=404)}
            result = await _sync(db, storage, server, on_error="skip")
            assert (result.added, result.failed_count) == (1, 1)
            assert [(f.unit.split(",")[0], f.stage) for f in result.failures] == [("file a", "download")]
            assert version_content(db, "r") == file_set({"b": files["b"]})
            assert version_content(db, "lazy") == file_set(files)
            assert server.requests["a"] == 1

    asyncio.run(scenario())


# -- the remote-unchanged shortcut ----------------------------------------------------------------


async def _sync_file(db, storage, remote: RemoteConfig, **options) -> SyncResult:
    return await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", **options)


def _last_run(db) -> tuple[str, int | None, bool, str | None]:
    runs = SyncRun.__table__
    with db.engine.connect() as conn:
        row = conn.execute(
            select(runs.c.state, runs.c.version_number, runs.c.remote_unchanged, runs.c.index_digest)
            .order_by(runs.c.id.desc())
            .limit(1)
        ).one()
    return tuple(row)  # type: ignore[return-value]


def _with_server(files: dict[str, bytes], steps) -> None:
    """Run ``steps(server)`` while ``files`` are served."""

    async def scenario() -> None:
        async with RemoteServer(files) as server:
            await steps(server)

    asyncio.run(scenario())


def test_an_unchanged_manifest_ends_the_sync_after_fetching_it(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url)
        first = await _sync_file(db, storage, remote, mirror=True)
        assert first.created and not first.remote_unchanged
        before = Counter(server.requests)
        with count_statements(db) as statements:
            again = await _sync_file(db, storage, remote, mirror=True)
        assert again.remote_unchanged and not again.created
        assert (again.version.number, again.version.content_count) == (1, 12)
        assert server.requests - before == Counter({"PULP_MANIFEST": 1})  # the manifest, nothing else
        assert _last_run(db) == ("completed", None, True, hashlib.sha256(server.manifest()).hexdigest())
        assert len(statements) <= 40, statements
        assert version_numbers(db, "r") == [0, 1]
        third = await _sync_file(db, storage, remote, mirror=True)  # a short-cut run is a base for the next
        assert third.remote_unchanged

    _with_server(_files(12), steps)


def test_a_changed_byte_in_the_manifest_runs_the_whole_sync(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url)
        await _sync_file(db, storage, remote)
        server.manifest_override = server.manifest() + b"# the same files, one more byte\n"
        same_units = await _sync_file(db, storage, remote)
        assert not same_units.remote_unchanged and not same_units.created
        assert (await _sync_file(db, storage, remote)).remote_unchanged
        server.manifest_override = None
        server.files["new.txt"] = b"new"
        changed = await _sync_file(db, storage, remote)
        assert not changed.remote_unchanged and (changed.version.number, changed.added) == (2, 1)

    _with_server(_files(6), steps)


@pytest.mark.parametrize(
    "change",
    [
        {"policy": "on_demand"},
        {"mirror": True},
        {"options": {"flavour": "other"}},
        {"max_file_size": 10**6},
        {"name": "another remote"},
    ],
    ids=["policy", "mirror", "plugin-options", "max-file-size", "remote-name"],
)
def test_changed_settings_run_the_whole_sync(db, storage, change):
    async def steps(server: RemoteServer) -> None:
        mirror = change.get("mirror", False)
        settings = {key: value for key, value in change.items() if key != "mirror"}
        await _sync_file(db, storage, RemoteConfig(url=server.manifest_url))
        changed = RemoteConfig(url=server.manifest_url, **settings)
        resync = await _sync_file(db, storage, changed, mirror=mirror)
        assert not resync.remote_unchanged
        assert (await _sync_file(db, storage, changed, mirror=mirror)).remote_unchanged

    _with_server(_files(5), steps)


def test_a_remote_moved_to_another_url_runs_the_whole_sync_and_records_the_new_urls(db, storage):
    """The same remote (by name) now at another URL, serving a byte-identical manifest: the files' URLs
    changed (on_demand fetches and ``verify --repair`` use them), so the sync runs whole and records them."""
    files = _files(5)

    async def scenario() -> None:
        async with RemoteServer(dict(files)) as old, RemoteServer(dict(files)) as new:
            assert old.manifest() == new.manifest() and old.base_url != new.base_url
            await _sync_file(db, storage, RemoteConfig(url=old.manifest_url, name="upstream"))
            assert _recorded_urls(db) == {old.base_url + quote(path) for path in files}
            moved = RemoteConfig(url=new.manifest_url, name="upstream")
            resync = await _sync_file(db, storage, moved)
            assert not resync.remote_unchanged
            assert _recorded_urls(db) == {new.base_url + quote(path) for path in files}
            assert (await _sync_file(db, storage, moved)).remote_unchanged

    asyncio.run(scenario())


def _recorded_urls(db) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(select(RemoteArtifact.__table__.c.url)).scalars())


def test_timeouts_retries_and_concurrency_do_not_defeat_the_shortcut(db, storage):
    async def steps(server: RemoteServer) -> None:
        await _sync_file(db, storage, RemoteConfig(url=server.manifest_url))
        other = RemoteConfig(url=server.manifest_url, retries=0, download_concurrency=2, read_timeout=5.0)
        assert (await _sync_file(db, storage, other, on_error="skip", batch_size=2)).remote_unchanged

    _with_server(_files(5), steps)


def test_a_rollback_since_the_last_sync_runs_the_whole_sync(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url)
        await _sync_file(db, storage, remote, mirror=True)
        del server.files["dir0/file 0.txt"]
        await _sync_file(db, storage, remote, mirror=True)  # version 2
        server.files["dir0/file 0.txt"] = b"back"
        await _sync_file(db, storage, remote, mirror=True)  # version 3
        rollback(db, "r", 2)  # version 4 holds version 2's content, the manifest lists version 3's
        resync = await _sync_file(db, storage, remote, mirror=True)
        assert not resync.remote_unchanged
        assert (resync.version.number, resync.added) == (5, 1)

    _with_server(_files(4), steps)


def test_a_version_made_by_another_sync_since_runs_the_whole_sync(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url)
        await _sync_file(db, storage, remote)
        other = file_units(server.manifest_url, {"elsewhere.txt": b"x"})
        on_demand = RemoteConfig(url=server.manifest_url, policy="on_demand")  # nothing fetched: the manifest stays
        await declarative_version(other, db=db, storage=storage, remote=on_demand, repository="r", mirror=True)
        resync = await _sync_file(db, storage, remote)
        assert not resync.remote_unchanged and resync.added == 4

    _with_server(_files(4), steps)


def test_deleting_an_older_version_keeps_the_shortcut(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url)
        await _sync_file(db, storage, remote)
        server.files["more.txt"] = b"more"
        await _sync_file(db, storage, remote)
        delete_version(db, "r", 1)  # the latest version, and so the repository's content, is unchanged
        assert (await _sync_file(db, storage, remote)).remote_unchanged

    _with_server(_files(3), steps)


def test_a_failed_previous_run_runs_the_whole_sync(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url, retries=0)
        await _sync_file(db, storage, remote)
        server.faults["PULP_MANIFEST"] = Fault(status=500, times=1)
        with pytest.raises(DownloadError, match="500"):
            await _sync_file(db, storage, remote)
        assert _last_run(db)[0] == "failed"
        assert not (await _sync_file(db, storage, remote)).remote_unchanged

    _with_server(_files(3), steps)


def test_a_previous_run_with_failed_units_runs_the_whole_sync(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url, retries=0)
        server.faults["dir1/file 1.txt"] = Fault(status=404, times=1)
        first = await _sync_file(db, storage, remote, on_error="skip")
        assert first.failed_count == 1 and _last_run(db)[3] is None
        healed = await _sync_file(db, storage, remote, on_error="skip")
        assert not healed.remote_unchanged and (healed.added, healed.failed_count) == (1, 0)
        assert (await _sync_file(db, storage, remote, on_error="skip")).remote_unchanged

    _with_server(_files(3), steps)


def test_a_run_that_found_stored_files_missing_is_no_base_for_the_shortcut(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url)
        await _sync_file(db, storage, remote)
        with db.engine.connect() as conn:
            location = conn.execute(select(Artifact.__table__.c.location).limit(1)).scalar_one()
        storage.delete(location)
        # the shortcut does not look at storage: verify finds the file, --force (or verify --repair) fetches it
        assert (await _sync_file(db, storage, remote)).remote_unchanged
        before = server.file_requests()
        forced = await _sync_file(db, storage, remote, force=True)
        assert not forced.remote_unchanged and server.file_requests() == before + 1
        assert not (await _sync_file(db, storage, remote)).remote_unchanged  # the forced run found a file missing
        assert (await _sync_file(db, storage, remote)).remote_unchanged

    _with_server(_files(3), steps)


def test_force_runs_the_whole_sync_and_is_a_base_for_the_next(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url)
        await _sync_file(db, storage, remote)
        forced = await _sync_file(db, storage, remote, force=True)
        assert not forced.remote_unchanged and not forced.created
        assert _last_run(db)[2] is False
        assert (await _sync_file(db, storage, remote)).remote_unchanged

    _with_server(_files(3), steps)


def test_a_sync_with_its_own_pipeline_is_never_short_cut(db, storage):
    async def steps(server: RemoteServer) -> None:
        remote = RemoteConfig(url=server.manifest_url)
        pipeline = [ops.dedup(), ops.download(), ops.save()]
        await _sync_file(db, storage, remote, pipeline=pipeline)
        assert _last_run(db)[3] is None
        assert not (await _sync_file(db, storage, remote, pipeline=pipeline)).remote_unchanged
        assert not (await _sync_file(db, storage, remote)).remote_unchanged  # no base: the earlier runs recorded none

    _with_server(_files(3), steps)


_repositories = itertools.count()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["none", "touch", "add", "drop", "rollback"]), st.booleans()), max_size=6))
def test_a_short_cut_sync_never_misses_a_change(db, storage, steps: list[tuple[str, bool]]):
    """Whenever a sync ends at the shortcut, the whole sync run right after it changes nothing.

    Each step changes the remote (its manifest's bytes only, a file more, a file less) or rolls the
    repository back to version 1, or neither, then syncs, in mirror mode or not.
    """
    repository = f"p{next(_repositories)}"

    async def sync(server: RemoteServer, mirror: bool, force: bool = False) -> SyncResult:
        remote = RemoteConfig(url=server.manifest_url, policy="on_demand")  # rows only: nothing to download
        return await sync_remote(
            FilePlugin(), remote, db=db, storage=storage, repository=repository, mirror=mirror, force=force
        )

    async def scenario() -> None:
        async with RemoteServer({"a.txt": b"a", "b.txt": b"b"}) as server:
            await sync(server, mirror=True)
            for number, (change, mirror) in enumerate(steps):
                if change == "touch":
                    server.manifest_override = server.manifest() + b"#\n"
                elif change == "add":
                    server.manifest_override, server.files[f"new {number}.txt"] = None, f"{number}".encode()
                elif change == "drop" and server.files:
                    server.manifest_override = None
                    del server.files[min(server.files)]
                elif change == "rollback":
                    rollback(db, repository, 1)
                result = await sync(server, mirror)
                if result.remote_unchanged:
                    whole = await sync(server, mirror, force=True)
                    assert not whole.created and whole.version.number == result.version.number

    asyncio.run(scenario())
