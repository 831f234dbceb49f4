"""Credentials and custom headers go to the remote's own origin only (guarantee 4)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass, field

from aiohttp import web

from pendingops import PendingArtifact, RemoteConfig
from pendingops.download.fetcher import Fetcher
from tests.loopback import LoopbackServer

DATA = b"bytes behind a login\n" * 10
SHA256 = hashlib.sha256(DATA).hexdigest()
TOKEN_HEADER = "X-Api-Token"
TOKEN = "t0ken-of-the-remote"
USER, PASSWORD = "alice", "pa55word"


@dataclass
class RecordingServer(LoopbackServer):
    """Serves ``DATA`` at ``/f``, redirects ``/away`` to ``redirect_to``, records every request's headers."""

    redirect_to: str = ""
    seen: list[dict[str, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        if request.match_info["path"] == "away":
            return web.Response(status=302, headers={"Location": self.redirect_to})
        return web.Response(body=DATA)

    def secrets_seen(self) -> set[str]:
        """Which of the remote's secrets reached this server."""
        found = set()
        for headers in self.seen:
            if TOKEN_HEADER.lower() in {name.lower() for name in headers}:
                found.add(TOKEN_HEADER)
            if "authorization" in {name.lower() for name in headers}:
                found.add("Authorization")
        return found


def _run(own: RecordingServer, other: RecordingServer, where: str, storage) -> None:
    """Fetch ``f`` from the remote's own server (``own``), the other server (``other``), or through
    the own server's redirect to the other one (``away``), with credentials and a custom header."""

    async def run() -> None:
        async with own, other:
            own.redirect_to = other.base_url + "f"
            url = {"own": own.base_url + "f", "other": other.base_url + "f", "away": own.base_url + "away"}[where]
            remote = RemoteConfig(
                url=own.base_url + "PULP_MANIFEST",
                username=USER,
                password=PASSWORD,
                headers={TOKEN_HEADER: TOKEN},
                retries=0,
                allow_private_destinations=True,  # the other origin is a second loopback server
            )
            async with Fetcher(remote, storage) as fetcher:
                await fetcher.fetch(PendingArtifact(url=url, relative_path="f", size=len(DATA), sha256=SHA256))

    asyncio.run(run())


def test_the_remotes_own_origin_gets_its_credentials_and_headers(storage) -> None:
    own, other = RecordingServer(), RecordingServer()
    _run(own, other, "own", storage)
    assert own.secrets_seen() == {TOKEN_HEADER, "Authorization"}
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert own.seen[0]["Authorization"] == expected and own.seen[0][TOKEN_HEADER] == TOKEN
    assert other.seen == []


def test_a_file_on_another_origin_gets_no_credentials_nor_headers(storage) -> None:
    own, other = RecordingServer(), RecordingServer()
    _run(own, other, "other", storage)
    assert len(other.seen) == 1
    assert other.secrets_seen() == set()


def test_a_redirect_to_another_origin_carries_no_credentials_nor_headers(storage) -> None:
    own, other = RecordingServer(), RecordingServer()
    _run(own, other, "away", storage)
    assert len(own.seen) == 1 and len(other.seen) == 1
    assert other.secrets_seen() == set()
