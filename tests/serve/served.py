"""Helpers for the content server's tests: sync files into versions, run the server in-process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import bcrypt
from aiohttp import web

from pendingops import Database, LocalStorage, RemoteConfig, declarative_version
from pendingops.plugins.file import FilePlugin
from pendingops.serve import ContentServer
from pendingops.serve.run import url_of
from tests.conftest import file_units
from tests.loopback import LoopbackServer
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
    runner = server.runner()
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


@dataclass
class GatedOrigin(LoopbackServer):
    """An origin serving ``files`` whose answers the test controls: each request is counted and held
    until ``gate`` is set; ``corrupt`` paths get other bytes of the same size; ``stall`` paths get
    their headers and ``stall_after`` bytes, then nothing until ``release_stall`` is set, then the rest."""

    files: dict[str, bytes]
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    corrupt: set[str] = field(default_factory=set)
    stall: set[str] = field(default_factory=set)
    stall_after: int = 0
    release_stall: asyncio.Event = field(default_factory=asyncio.Event)
    requests: Counter[str] = field(default_factory=Counter)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    @property
    def manifest_url(self) -> str:
        return self.base_url + "PULP_MANIFEST"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path == "PULP_MANIFEST":
            lines = [f"{p},{hashlib.sha256(d).hexdigest()},{len(d)}\n" for p, d in sorted(self.files.items())]
            return web.Response(body="".join(lines).encode())
        self.requests[path] += 1
        await self.gate.wait()
        data = self.files[path]
        if path in self.corrupt:
            data = bytes((b + 1) % 256 for b in data)
        if path not in self.stall:
            return web.Response(body=data)
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        try:
            if self.stall_after:
                await response.write(data[: self.stall_after])
            await self.release_stall.wait()
            await response.write(data[self.stall_after :])
        except (ConnectionError, RuntimeError):  # the client hung up meanwhile
            pass
        return response


#: the real htpasswd (apache2-utils), when installed; without it entries are made with bcrypt as it makes them
HTPASSWD = shutil.which("htpasswd")


def htpasswd_entry(user: str, password: str, *, cost: int = 5) -> str:
    """``user:hash`` as ``htpasswd -B`` writes it ($2y$, cost 5 by default)."""
    if HTPASSWD is not None:
        done = subprocess.run(
            [HTPASSWD, "-n", "-b", "-B", "-C", str(cost), user, password], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()
    hashed = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=cost)).decode()
    return f"{user}:$2y${hashed[4:]}"


def basic(user: str, password: str) -> str:
    """The Authorization header of HTTP Basic credentials."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
