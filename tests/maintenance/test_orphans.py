"""Orphan removal keeps everything any version references, old versions included."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select

from pendingops import PendingContent, RemoteConfig, SyncFailed, sync_remote
from pendingops import operators as ops
from pendingops.db.schema import Artifact, Content, StoreCleanup
from pendingops.maintenance.orphans import OrphanReport, remove_orphans
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.file import FilePlugin
from tests.conftest import file_set, version_content
from tests.remote_server import Fault, RemoteServer


def _count(db, table) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table.__table__)).scalar_one()


def test_old_versions_content_is_not_an_orphan(db, storage) -> None:
    async def run() -> None:
        async with RemoteServer({"a": b"1", "b": b"2"}) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")
            server.files = {"c": b"3"}
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", mirror=True)

    asyncio.run(run())
    report = remove_orphans(db, storage)
    assert (report.content, report.artifacts) == (0, 0)
    assert (_count(db, Content), _count(db, Artifact)) == (3, 3)


def test_content_of_a_failed_sync_is_removed_with_its_files(db, storage) -> None:
    saved = threading.Event()  # f5's 404 is held until a batch of the failing sync is saved

    def watch_saves() -> None:
        while not saved.wait(0.05):
            if _count(db, Content) > 0:
                saved.set()

    async def run() -> None:
        files = {f"f{i}": bytes([i]) * 10 for i in range(6)}
        async with RemoteServer(files, faults={"f5": Fault(status=404, stall=3600, until=saved)}) as server:
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            watcher = threading.Thread(target=watch_saves, daemon=True)
            watcher.start()
            try:
                await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", batch_size=2)
            except SyncFailed:
                return
            finally:
                saved.set()
                watcher.join()
            raise AssertionError("the sync should have failed")

    asyncio.run(run())
    saved_content, saved_artifacts = _count(db, Content), _count(db, Artifact)
    assert saved_content > 0 and saved_artifacts > 0
    # A download whose batch was never saved leaves a file with no row; make sure there is one.
    stray = storage.root / storage.location_for("ab" * 32)
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"left by a failed sync")
    stored_files = [p for p in (storage.root / "artifacts").rglob("*") if p.is_file()]
    dry = remove_orphans(db, storage, dry_run=True)
    assert (_count(db, Content), _count(db, Artifact)) == (saved_content, saved_artifacts)  # nothing deleted
    assert stray.exists()
    report = remove_orphans(db, storage)
    assert dry == report  # the dry run reports what the real run does: content, artifacts, bytes, stray files
    assert report.bytes == 10 * saved_artifacts
    assert report.content == saved_content and report.artifacts == saved_artifacts
    assert report.stray_files == len(stored_files) - saved_artifacts >= 1
    assert not stray.exists()
    assert (_count(db, Content), _count(db, Artifact)) == (0, 0)
    with db.engine.connect() as conn:  # the real run is recorded with what it removed; the dry run is not
        recorded = conn.execute(select(StoreCleanup.__table__)).all()
    assert len(recorded) == 1 and recorded[0].finished_at is not None
    assert (recorded[0].content, recorded[0].artifacts, recorded[0].stray_files) == (
        report.content,
        report.artifacts,
        report.stray_files,
    )
    assert [p for p in (storage.root / "artifacts").rglob("*") if p.is_file()] == []
    assert [p for p in verify_storage(db, storage) if isinstance(p, StorageProblem)] == []


def test_orphan_cleanup_waits_for_a_sync_that_found_orphans(db, storage) -> None:
    """Content a failed sync left is an orphan until a version holds it. A cleanup started while a
    sync that has found that content is running waits for the sync, then has nothing to remove."""
    files = {f"f{i}": bytes([i]) * 10 for i in range(6)}
    reports: list[OrphanReport] = []
    cleanup = threading.Thread(target=lambda: reports.append(remove_orphans(db, storage)))

    async def start_cleanup(units: list[PendingContent]) -> None:
        # Every unit of this batch has been looked up: the orphans it found are about to be used.
        if not cleanup.is_alive() and not reports:
            cleanup.start()
        # The cleanup waits for this sync to end, so this wait runs out; a cleanup that did not wait
        # would be done by then, the found content deleted under the sync.
        await asyncio.to_thread(cleanup.join, 5)

    saved = threading.Event()  # f5's 404 is held until a batch of the failing sync is saved

    def watch_saves() -> None:
        while not saved.wait(0.05):
            if _count(db, Content) > 0:
                saved.set()

    async def run() -> None:
        async with RemoteServer(files, faults={"f5": Fault(status=404, stall=3600, until=saved)}) as server:
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            watcher = threading.Thread(target=watch_saves, daemon=True)
            watcher.start()
            try:
                with pytest.raises(SyncFailed):
                    await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", batch_size=2)
            finally:
                saved.set()
                watcher.join()
            assert _count(db, Content) > 0 and _count(db, Artifact) > 0
            server.faults = {}
            pipeline = [ops.dedup(), ops.enrich_batch(start_cleanup), ops.download(), ops.save()]
            result = await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", pipeline=pipeline)
            assert result.added == 6

    asyncio.run(run())
    cleanup.join()
    assert [(r.content, r.artifacts, r.stray_files) for r in reports] == [(0, 0, 0)]
    assert version_content(db, "r") == file_set(files)
    assert [p for p in verify_storage(db, storage) if isinstance(p, StorageProblem)] == []
