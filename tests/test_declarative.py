"""Whole syncs through the ready-made pipeline, against a real server and both databases."""

from __future__ import annotations

import asyncio

from pendingops import RemoteConfig, sync_remote
from pendingops.plugins.file import FilePlugin
from tests.remote_server import RemoteServer


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
