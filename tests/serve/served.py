"""Helpers for the content server's tests: sync files into versions, run the server in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from aiohttp import web

from pendingops import Database, LocalStorage, RemoteConfig, declarative_version
from pendingops.plugins.file import FilePlugin
from pendingops.serve import ContentServer
from pendingops.serve.run import url_of
from tests.conftest import file_units
from tests.remote_server import RemoteServer


async def sync_files(
    db: Database, storage: LocalStorage, files: dict[str, bytes], *, repository: str = "r", **options: Any
) -> int:
    """Serve ``files`` from a test remote and sync them into a new version; return its number."""
    policy = options.pop("policy", "immediate")
    async with RemoteServer(dict(files)) as remote:
        result = await declarative_version(
            file_units(remote.manifest_url, files),
            db=db,
            storage=storage,
            remote=RemoteConfig(url=remote.manifest_url, policy=policy),
            repository=repository,
            batch_wait=0.01,
            **options,
        )
    return result.version.number


@asynccontextmanager
async def content_server(db: Database, storage: LocalStorage, **options: Any) -> AsyncIterator[ContentServer]:
    """A ContentServer listening on 127.0.0.1 at a free port, its ``base_url`` set."""
    server = ContentServer(db, storage, plugins=options.pop("plugins", [FilePlugin()]), **options)
    runner = web.AppRunner(server.build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.base_url = url_of("127.0.0.1", runner.addresses[0][1])
    try:
        yield server
    finally:
        await runner.cleanup()


def file_url(server: ContentServer, path: str, *, repository: str = "r", version: str | int = "latest") -> str:
    return f"{server.base_url}{quote(repository, safe='')}/{version}/{quote(path)}"


async def raw_request(server: ContentServer, target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    """Send ``method target`` exactly as given (nothing normalised) and return the status and body."""
    host, port = server.base_url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body
