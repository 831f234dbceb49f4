"""Whole syncs through the ready-made pipeline, against a real server and both databases."""

from __future__ import annotations

import asyncio

import pytest

from pendingops import RemoteConfig, SyncFailed, sync_remote
from pendingops import operators as ops
from pendingops.db.schema import Artifact
from pendingops.plugins.file import FilePlugin
from tests.conftest import count_rows, file_set, version_content, version_numbers
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
