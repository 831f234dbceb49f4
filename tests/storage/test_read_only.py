"""Local storage turned read-only at the end of a sync (a tmpfs remounted): one line, no new version."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from reactivex import operators as rx_ops

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.context import SyncFailed
from pendingops.declarative import default_pipeline
from pendingops.plugins.file import FilePlugin
from pendingops.storage.work_folder import work_folder
from tests.conftest import version_numbers
from tests.remote_server import RemoteServer
from tests.test_disk_full import small_disk  # noqa: F401 - the tmpfs fixture

FILES = {f"f{i}.txt": f"file {i}\n".encode() * 100 for i in range(8)}


def test_storage_read_only_at_the_end_of_a_sync_is_one_line_naming_it(
    db: Database,
    small_disk: Path,  # noqa: F811
) -> None:
    """Finding 8: every file is stored, then the storage turns read-only: the work folder cannot be
    removed; the sync fails naming the storage and the folder, with no new version (not a bare
    'Read-only file system: PULP_MANIFEST')."""
    storage = LocalStorage(small_disk / "storage")

    def read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    async def scenario() -> str:
        async with RemoteServer(dict(FILES)) as server:
            pipeline = [*default_pipeline(), rx_ops.do_action(on_completed=read_only)]
            remote = RemoteConfig(url=server.manifest_url)
            with pytest.raises(SyncFailed) as failed:
                await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", pipeline=pipeline)
            return str(failed.value)

    try:
        message = asyncio.run(scenario())
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=False)
    assert message.startswith(f"storage {storage.root}: cannot write in the work folder {storage.root}/tmp/"), message
    assert "Read-only file system" in message and message.endswith("no new version; rerun")
    assert "\n" not in message
    assert 1 not in version_numbers(db, "r")


def test_a_cleanup_in_the_work_folder_never_masks_the_error_that_caused_it(storage: LocalStorage) -> None:
    with pytest.raises(ValueError, match="the first error"), work_folder(storage) as folder:
        try:
            raise ValueError("the first error")
        finally:  # a plugin's cleanup of its file, on a storage turned read-only
            raise OSError(30, "Read-only file system", str(folder / "PULP_MANIFEST"))
    assert list((storage.root / "tmp").iterdir()) == []
