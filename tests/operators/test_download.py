"""download(n): bounded transfers, on-demand policy, per-unit failures, leftovers adopted and counted apart."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import event, select

from pendingops import RemoteConfig, SyncFailed, declarative_version, sync_remote
from pendingops import operators as ops
from pendingops.db.schema import Artifact, ContentArtifact, ProgressReport, RemoteArtifact, SyncRun
from pendingops.plugins.file import FilePlugin
from pendingops.plugins.python import PythonPlugin
from pendingops.progress import ProgressSnapshot
from pendingops.storage.local import LocalStorage
from pendingops.storage.owner import claim_storage
from tests.conftest import count_rows, file_set, file_units, version_content
from tests.plugins.python_index import index_files, sample_projects
from tests.remote_server import Fault, RemoteServer


def _files(n: int) -> dict[str, bytes]:
    return {f"f{i:03}": f"file {i}".encode() * (i + 1) for i in range(n)}


def _sync(db, storage, server: RemoteServer, files: dict[str, bytes], **options):
    async def scenario():
        async with server:
            remote = RemoteConfig(url=server.manifest_url, **options.pop("remote", {}))
            units = file_units(server.manifest_url, files)
            return await declarative_version(
                units, db=db, storage=storage, remote=remote, repository="r", batch_wait=0.01, **options
            )

    return asyncio.run(scenario())


@pytest.mark.parametrize("n", [1, 2, 4])
def test_at_most_n_downloads_in_flight(db, storage, n):
    files = _files(3 * n)
    # Each response is held 0.2 s, so the n transfers the limit allows are all seen in flight at once.
    server = RemoteServer(files, delay=0.2)
    result = _sync(db, storage, server, files, pipeline=[ops.dedup(), ops.download(n=n), ops.save()])
    assert result.added == 3 * n
    assert server.max_in_flight == n
    assert server.file_requests() == 3 * n


def test_the_remote_setting_is_the_default_limit(db, storage):
    files = _files(9)
    server = RemoteServer(files, delay=0.2)
    result = _sync(db, storage, server, files, remote={"download_concurrency": 3})
    assert result.added == 9 and server.max_in_flight == 3


def test_download_needs_a_positive_limit():
    with pytest.raises(ValueError, match="n >= 1"):
        ops.download(n=0)


def test_on_demand_fetches_nothing_then_immediate_links_the_files(db, storage):
    files = _files(5)
    server = RemoteServer(files)
    lazy = _sync(db, storage, server, files, remote={"policy": "on_demand"})
    assert lazy.added == 5 and server.file_requests() == 0
    assert count_rows(db, Artifact) == 0 and count_rows(db, RemoteArtifact) == 5
    eager = _sync(db, storage, server, files)
    assert not eager.created and server.file_requests() == 5
    assert count_rows(db, Artifact) == 5 and count_rows(db, ContentArtifact) == 5
    with db.engine.connect() as conn:
        unlinked = conn.execute(
            ContentArtifact.__table__.select().where(ContentArtifact.__table__.c.artifact_id.is_(None))
        ).all()
    assert unlinked == []
    assert version_content(db, "r") == file_set(files)


def test_a_failed_download_fails_its_unit_with_the_reason(db, storage):
    files = _files(6)
    server = RemoteServer(files, faults={"f002": Fault(status=404), "f004": Fault(status=503)})
    result = _sync(db, storage, server, files, on_error="skip", remote={"retries": 1, "retry_backoff": 0})
    assert result.failed_count == 2
    reasons = {f.unit.split(",")[0].removeprefix("file "): (f.stage, f.reason) for f in result.failures}
    assert reasons["f002"][0] == "download" and "HTTP 404" in reasons["f002"][1]
    assert reasons["f004"][0] == "download" and "HTTP 503" in reasons["f004"][1] and "2 attempts" in reasons["f004"][1]
    assert server.requests["f002"] == 1 and server.requests["f004"] == 2
    kept = {p: d for p, d in files.items() if p not in ("f002", "f004")}
    assert version_content(db, "r") == file_set(kept)
    assert count_rows(db, Artifact) == 4


def test_a_bad_digest_under_fail_policy_fails_the_sync(db, storage):
    files = _files(3)
    server = RemoteServer(files, faults={"f001": Fault(wrong_bytes=True)})
    with pytest.raises(SyncFailed, match=r"f001.*download failed.*sha256 mismatch") as caught:
        _sync(db, storage, server, files, remote={"retries": 0})
    assert [(f.stage, f.unit) for f in caught.value.failures] == [("download", f"file f001, {_sha('f001', files)}")]
    assert not list((storage.root / "tmp").iterdir())


def _sha(path: str, files: dict[str, bytes]) -> str:
    (pair,) = [p for p in file_set(files) if p[0] == path]
    return pair[1]


def test_empty_files_and_odd_names(db, storage):
    files = {"empty": b"", "sp ace/ünï, cödé%20#?.txt": b"odd name", "also-empty": b""}
    server = RemoteServer(files)
    result = _sync(db, storage, server, files)
    assert result.added == 3
    assert server.file_requests() == 2  # the two empty files are one artifact, fetched once
    assert version_content(db, "r") == file_set(files)
    assert count_rows(db, Artifact) == 2


@dataclass
class InterruptingServer(RemoteServer):
    """Answers ``answer`` file requests (paths starting with ``files``), then holds the next one until
    ``release`` is set, with ``holding`` set: the test interrupts the sync at a point the server chose."""

    files_prefix: str = ""
    answer: int | None = None
    answered: int = 0
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def _respond(self, request: web.Request, path: str, data: bytes) -> web.StreamResponse:
        if path.startswith(self.files_prefix) and self.answer is not None:
            if self.answered == self.answer:
                self.holding.set()
                await self.release.wait()
            self.answered += 1
        return await super()._respond(request, path, data)

    def fetched(self) -> int:
        return sum(
            n for path, n in self.requests.items() if path.startswith(self.files_prefix) and path != "PULP_MANIFEST"
        )


def _remote_of(kind: str) -> tuple[Any, dict[str, bytes], str, str]:
    """(plugin, the remote's files, the prefix of the paths that are artifacts, the remote's path)."""
    if kind == "file":
        files = {f"dir/f{i:02}.bin": f"file {i}".encode() * (i + 1) for i in range(12)}
        return FilePlugin(), files, "dir/", "PULP_MANIFEST"
    return PythonPlugin(), index_files(sample_projects()), "files/", "simple/"


@pytest.mark.parametrize("kind", ["file", "python"])
def test_a_rerun_after_an_interruption_counts_stored_leftovers_as_adopted(db, storage, kind: str) -> None:
    """An interrupted sync leaves files in storage that no row records yet; the rerun checks and adopts
    them with no transfer: adopted + downloaded = the files, downloaded = the requests the server saw."""
    plugin, files, prefix, index = _remote_of(kind)
    artifacts = sum(1 for path in files if path.startswith(prefix))  # the python plugin: wheels, sdists, metadata
    answered = 4

    async def scenario() -> tuple[ProgressSnapshot, int]:
        async with InterruptingServer(dict(files), files_prefix=prefix, answer=answered) as origin:
            remote = RemoteConfig(url=origin.base_url + index, download_concurrency=1)
            # no batch is saved before the interruption: what was fetched is in storage, no row records it
            holds = {"batch_size": 10_000, "batch_wait": 3600.0, "batch_max_wait": 3600.0}
            first = asyncio.create_task(sync_remote(plugin, remote, db=db, storage=storage, repository="r", **holds))
            await origin.holding.wait()  # the first 4 files are stored, the 5th is being asked for
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
            origin.answer = None
            origin.release.set()
            before = origin.fetched()
            assert before == answered + 1
            snapshots: list[ProgressSnapshot] = []
            result = await sync_remote(
                plugin, remote, db=db, storage=storage, repository="r", on_progress=snapshots.append
            )
            assert result.version.number == 1 and result.failed_count == 0
            return snapshots[-1], origin.fetched() - before

    final, requests = asyncio.run(scenario())
    assert final.finished
    assert final.done("adopted") == answered
    assert final.done("downloaded") == requests == artifacts - answered
    assert final.done("adopted") + final.done("downloaded") == artifacts
    assert final.stages["downloaded"].total == artifacts - answered  # the panel's bar ends full
    assert final.stages["downloaded"].bytes < sum(len(data) for path, data in files.items() if path.startswith(prefix))
    with db.engine.connect() as conn:  # the run record keeps both counters
        run = conn.execute(select(SyncRun.id).order_by(SyncRun.id.desc()).limit(1)).scalar_one()
        rows = conn.execute(select(ProgressReport.stage, ProgressReport.done).where(ProgressReport.sync_run_id == run))
        recorded = dict(rows.all())
    assert (recorded["adopted"], recorded["downloaded"]) == (answered, artifacts - answered)


class _GatedStorage(LocalStorage):
    """Local storage whose first batched write waits until an artifact row is about to be inserted.

    Code that inserts rows before its files are written releases the gate early, and the insert
    sees a file still on its way; code that waits for its files waits here until the gate times
    out (the timeout only bounds how long a correct run waits; it decides no outcome).
    """

    def __init__(self, root: Any) -> None:
        super().__init__(root)
        self.on_their_way: set[str] = set()
        self.row_came = threading.Event()
        self.rows_before_files: list[str] = []
        self._first = True

    def put_bytes_many(self, items):
        self.on_their_way.update(sha256 for sha256, _ in items)
        if self._first:
            self._first = False
            self.row_came.wait(timeout=5.0)
        try:
            return super().put_bytes_many(items)
        finally:
            self.on_their_way.difference_update(sha256 for sha256, _ in items)

    def watch(self, db) -> None:
        @event.listens_for(db.engine, "before_cursor_execute")
        def _statement(conn, cursor, statement, parameters, context, executemany) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO ARTIFACT"):
                if self.on_their_way:
                    self.rows_before_files.append(statement)
                self.row_came.set()


def test_a_downloaded_file_is_in_storage_before_its_row(db, tmp_path) -> None:
    """Small files are written in batches after their download returns; save waits for its batch's
    writes before inserting rows, so a row never points at a file still on its way."""
    storage = _GatedStorage(tmp_path / "gated")
    storage.watch(db)
    files = _files(3)
    server = RemoteServer(files)
    result = _sync(db, storage, server, files, pipeline=[ops.dedup(), ops.download(), ops.save()])
    assert result.added == 3 and result.failed_count == 0
    assert storage.rows_before_files == []
    for data in files.values():
        stored = storage.local_path(storage.location_for(hashlib.sha256(data).hexdigest()))
        assert stored.read_bytes() == data


class _CountingStorage(LocalStorage):
    """Local storage that counts the one-file existence checks made on the event loop."""

    def __init__(self, root: Any) -> None:
        super().__init__(root)
        self.single_checks = 0

    async def exists_async(self, location: str) -> bool:
        self.single_checks += 1
        return await super().exists_async(location)


def test_dedup_looks_for_leftover_files_in_one_batch_not_per_file(db, tmp_path) -> None:
    """Whether a file is already in storage is asked once per dedup batch, off the loop: the download
    step looks at storage itself only for a file the batch found (to check and adopt it)."""
    storage = _CountingStorage(tmp_path / "counting")
    files = _files(12)
    leftover = next(iter(files.values()))
    claim_storage(db, storage)  # the storage is this database's: what it holds is a leftover of its own
    temp = storage.new_temp_path()
    temp.write_bytes(leftover)
    storage.put(temp, hashlib.sha256(leftover).hexdigest())
    server = RemoteServer(files)
    snapshots: list[ProgressSnapshot] = []
    result = _sync(db, storage, server, files, on_progress=snapshots.append)
    assert result.added == 12
    assert storage.single_checks == 0
    assert server.file_requests() == 11  # the leftover was adopted, not fetched again
    assert snapshots[-1].done("adopted") == 1


def test_a_leftover_the_batch_found_is_checked_before_it_is_adopted(db, storage) -> None:
    """A file dedup's batch found in storage is only a candidate: one with other bytes (a bit flipped
    on disk) is fetched again and replaced, never adopted on the batch's word."""
    files = _files(4)
    data = files["f002"]
    sha256 = hashlib.sha256(data).hexdigest()
    claim_storage(db, storage)
    temp = storage.new_temp_path()
    temp.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    storage.put(temp, sha256)
    server = RemoteServer(files)
    snapshots: list[ProgressSnapshot] = []
    result = _sync(db, storage, server, files, on_progress=snapshots.append)
    assert result.added == 4 and result.failed_count == 0
    assert server.file_requests() == 4
    assert snapshots[-1].done("adopted") == 0
    assert storage.local_path(storage.location_for(sha256)).read_bytes() == data
