"""A full disk stops the whole sync, even under ``on_error="skip"``: skipping every unit that could not
be written would make a wrong version. Storage on a small tmpfs; the rerun after space is freed fetches
only what is missing."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pendingops import LocalStorage, RemoteConfig, SyncFailed, sync_remote
from pendingops.plugins.file import FilePlugin
from tests.conftest import assert_artifacts_intact, file_set, version_content, version_numbers
from tests.remote_server import RemoteServer

#: 24 files of 256 KiB: 6 MiB, three times what the 2 MiB tmpfs holds
FILES = {f"f{i:02}.bin": bytes([i]) * (256 * 1024) for i in range(24)}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_sync_and_the_rerun_fetches_only_what_is_missing(db, small_disk):
    storage = LocalStorage(small_disk / "storage")

    async def sync(server: RemoteServer):
        remote = RemoteConfig(url=server.manifest_url, download_concurrency=2)
        return await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", on_error="skip")

    async def scenario() -> tuple[str, int, dict[str, int]]:
        async with RemoteServer(dict(FILES)) as server:
            with pytest.raises(SyncFailed) as failed:
                await sync(server)
            first = dict(server.requests)
            stored = len(list((storage.root / "artifacts").rglob("*/*")))
            assert 0 < stored < len(FILES)
            subprocess.run(["mount", "-o", "remount,size=16M", str(small_disk)], check=True)
            result = await sync(server)
            assert result.failed_count == 0 and result.added == len(FILES)
            second = {path: count - first.get(path, 0) for path, count in server.requests.items()}
            return str(failed.value), stored, second

    message, stored, second = asyncio.run(scenario())
    assert "no space left" in message and str(small_disk / "storage") in message and "\n" not in message
    fetched_again = sum(second.get(path, 0) for path in FILES)
    assert fetched_again == len(FILES) - stored  # files already stored were not downloaded again
    assert version_numbers(db, "r") == [0, 1]
    assert version_content(db, "r") == file_set(FILES)
    assert_artifacts_intact(db, storage)


#: 600 files of 8 KiB (4.7 MiB of data, more in blocks): small bodies, written in batches off the loop
SMALL_FILES = {f"s{i:03}.bin": i.to_bytes(2, "big") * (4 * 1024) for i in range(600)}


def test_a_full_disk_under_batched_small_writes_fails_the_sync_and_no_row_points_at_a_missing_file(db, small_disk):
    """Small files are written in batches after their download; one that finds the disk full stops
    the sync (no version, one line naming the folder), and every row written before points at a file."""
    storage = LocalStorage(small_disk / "storage")

    async def sync(server: RemoteServer):
        remote = RemoteConfig(url=server.manifest_url, download_concurrency=4)
        return await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", on_error="skip")

    async def scenario() -> str:
        async with RemoteServer(dict(SMALL_FILES)) as server:
            with pytest.raises(SyncFailed) as failed:
                await sync(server)
            assert_artifacts_intact(db, storage)  # the rows saved before the disk filled point at whole files
            subprocess.run(["mount", "-o", "remount,size=16M", str(small_disk)], check=True)
            result = await sync(server)
            assert result.failed_count == 0 and result.added == len(SMALL_FILES)
            return str(failed.value)

    message = asyncio.run(scenario())
    assert "no space left" in message and str(small_disk / "storage") in message and "\n" not in message
    assert version_numbers(db, "r") == [0, 1]
    assert version_content(db, "r") == file_set(SMALL_FILES)
    assert_artifacts_intact(db, storage)
