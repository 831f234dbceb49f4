"""Orphan removal keeps everything any version references, old versions included."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from pendingops import RemoteConfig, SyncFailed, sync_remote
from pendingops.db.schema import Artifact, Content
from pendingops.maintenance.orphans import remove_orphans
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.file import FilePlugin
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
    async def run() -> None:
        files = {f"f{i}": bytes([i]) * 10 for i in range(6)}
        async with RemoteServer(files, faults={"f5": Fault(status=404)}) as server:
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            try:
                await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", batch_size=2)
            except SyncFailed:
                return
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
    assert [p for p in (storage.root / "artifacts").rglob("*") if p.is_file()] == []
    assert [p for p in verify_storage(db, storage) if isinstance(p, StorageProblem)] == []
