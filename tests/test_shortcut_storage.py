"""The remote-unchanged shortcut is taken only when the storage holds what the base version needs:
the storage is part of the settings fingerprint, and a storage the database claims for the first
time runs the whole sync. Both databases, a real server."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from pendingops import LocalStorage, RemoteConfig, sync_remote
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.file import FilePlugin
from tests.remote_server import RemoteServer

FILES = {f"d/f{i}": f"shortcut storage {i}\n".encode() for i in range(3)}


def _problems(db, storage) -> list[StorageProblem]:
    return [found for found in verify_storage(db, storage) if isinstance(found, StorageProblem)]


def _folder(tmp_path: Path, name: str) -> LocalStorage:
    (tmp_path / name).mkdir()
    return LocalStorage(tmp_path / name)


def test_a_storage_claimed_for_the_first_time_runs_the_whole_sync(db, tmp_path):
    """Storage A, then the same database and repository with an empty storage B: every file is fetched
    into B, and B verifies."""
    first, second = _folder(tmp_path, "a"), _folder(tmp_path, "b")

    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            result = await sync_remote(FilePlugin(), remote, db=db, storage=first, repository="r")
            assert (result.version.number, result.added) == (1, 3)
            again = await sync_remote(FilePlugin(), remote, db=db, storage=first, repository="r")
            assert again.remote_unchanged  # the same storage: the shortcut holds
            moved = await sync_remote(FilePlugin(), remote, db=db, storage=second, repository="r")
            assert not moved.remote_unchanged and not moved.created
            assert server.file_requests() == 6  # every file again, into B
            # a run that found files missing is no base for the shortcut: the next runs whole, finds all
            settled = await sync_remote(FilePlugin(), remote, db=db, storage=second, repository="r")
            assert not settled.remote_unchanged and server.file_requests() == 6
            assert (await sync_remote(FilePlugin(), remote, db=db, storage=second, repository="r")).remote_unchanged

    asyncio.run(scenario())
    assert _problems(db, second) == []
    assert _problems(db, first) == []


def test_a_storage_this_database_already_owns_is_part_of_the_fingerprint(db, tmp_path):
    """B was claimed before by another repository's sync: going back and forth between A and B for
    repository r runs whole each time the storage changes, and never leaves B short of a file."""
    first, second = _folder(tmp_path, "a"), _folder(tmp_path, "b")

    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server, RemoteServer({"other": b"o"}) as elsewhere:
            other = RemoteConfig(url=elsewhere.manifest_url)
            await sync_remote(FilePlugin(), other, db=db, storage=second, repository="o")
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=first, repository="r")
            into_b = await sync_remote(FilePlugin(), remote, db=db, storage=second, repository="r")
            assert not into_b.remote_unchanged
            assert server.file_requests() == 6
            back = await sync_remote(FilePlugin(), remote, db=db, storage=first, repository="r")
            assert not back.remote_unchanged
            assert server.file_requests() == 6  # A still holds every file: found, not fetched
            assert (await sync_remote(FilePlugin(), remote, db=db, storage=first, repository="r")).remote_unchanged

    asyncio.run(scenario())
    assert _problems(db, second) == []


def test_a_storage_folder_emptied_and_claimed_again_runs_the_whole_sync(db, tmp_path):
    """The same folder, replaced by an empty one (a lost disk, a restored backup without the files):
    its owner record is gone with the files, so it is claimed anew and the sync runs whole."""
    folder = tmp_path / "a"

    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            folder.mkdir()
            await sync_remote(FilePlugin(), remote, db=db, storage=LocalStorage(folder), repository="r")
            shutil.rmtree(folder)
            folder.mkdir()
            again = await sync_remote(FilePlugin(), remote, db=db, storage=LocalStorage(folder), repository="r")
            assert not again.remote_unchanged
            assert server.file_requests() == 6

    asyncio.run(scenario())
    assert _problems(db, LocalStorage(folder)) == []
