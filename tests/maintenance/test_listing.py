"""Listing a version: files not downloaded yet show what their remote declared."""

from __future__ import annotations

import asyncio
import hashlib

from pendingops import RemoteConfig, sync_remote
from pendingops.maintenance.listing import iter_version_content
from pendingops.plugins.file import FilePlugin
from tests.conftest import sync_served
from tests.remote_server import RemoteServer

FILES = {"a.txt": b"alpha", "b.txt": b"bravo!"}


def test_on_demand_files_show_the_declared_sha256_and_size(db, storage) -> None:
    sync_served(db, storage, RemoteServer(dict(FILES)), None, FILES, mirror=False)
    # a second repository, on demand, of other files: nothing downloaded
    other = {"c.txt": b"charlie", "d.txt": b"delta delta"}
    server = RemoteServer(dict(other))

    async def on_demand() -> None:
        async with server:
            remote = RemoteConfig(url=server.manifest_url, policy="on_demand")
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="lazy")

    asyncio.run(on_demand())
    assert server.file_requests() == 0
    shown = {u.natural_key["relative_path"]: u.as_json()["artifacts"] for u in iter_version_content(db, "lazy")}
    assert shown == {
        path: [{"relative_path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "stored": False}]
        for path, data in other.items()
    }
    stored = {
        u.natural_key["relative_path"]: u.as_json()["artifacts"][0]["stored"] for u in iter_version_content(db, "r")
    }
    assert stored == {"a.txt": True, "b.txt": True}
