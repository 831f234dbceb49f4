"""Downloads through an HTTP proxy: the remote's ``proxy_url``, else the environment's settings."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from pendingops import PendingArtifact, RemoteConfig
from pendingops.download.fetcher import DownloadError, Fetcher
from tests.download.test_origins import DATA, PASSWORD, SHA256, USER, RecordingServer
from tests.loopback import LoopbackServer

_RELAYED_HEADERS = ("Location", "Content-Type", "Content-Length")


@dataclass
class ForwardProxy(LoopbackServer):
    """A plain HTTP forward proxy: relays each request to the origin it names, recording the target
    and the ``Proxy-Authorization`` it came with (not passed on)."""

    seen: list[tuple[str, str | None]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((str(request.url), request.headers.get("Proxy-Authorization")))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "proxy-authorization")}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as client,
            client.get(request.url, headers=headers, allow_redirects=False) as upstream,
        ):
            body = await upstream.read()
            relayed = {k: v for k, v in upstream.headers.items() if k in _RELAYED_HEADERS}
            return web.Response(status=upstream.status, body=body, headers=relayed)


def _fetch(
    own: RecordingServer, other: RecordingServer, proxy: ForwardProxy, path: str, storage, environ, **env: str
) -> None:
    """Fetch ``path`` from ``own`` (``away`` redirects to ``other``) with the remote's credentials;
    ``env``'s values, formatted with ``proxy`` once it listens, become the environment, ``proxy_url`` the remote's."""

    async def run() -> None:
        async with own, other, proxy:
            own.redirect_to = other.base_url + "f"
            settings = {name: value.format(proxy=proxy.base_url.removeprefix("http://")) for name, value in env.items()}
            proxy_url = settings.pop("proxy_url", None)
            for name, value in settings.items():
                environ.setenv(name, value)
            remote = RemoteConfig(
                url=own.base_url + "PULP_MANIFEST",
                username=USER,
                password=PASSWORD,
                retries=0,
                proxy_url=proxy_url,
                allow_private_destinations=True,  # ``other`` is a second loopback server
            )
            async with Fetcher(remote, storage) as fetcher:
                artifact = PendingArtifact(url=own.base_url + path, relative_path="f", size=len(DATA), sha256=SHA256)
                await fetcher.fetch(artifact)

    asyncio.run(run())


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _paths(proxy: ForwardProxy, *servers: RecordingServer) -> list[tuple[str, str | None]]:
    def path(target: str) -> str:
        for server in servers:
            target = target.removeprefix(server.base_url)
        return target

    return [(path(target), auth) for target, auth in proxy.seen]


def test_the_remotes_proxy_carries_every_request_and_alone_gets_its_credentials(storage, monkeypatch) -> None:
    own, other, proxy = RecordingServer(), RecordingServer(), ForwardProxy()
    _fetch(own, other, proxy, "away", storage, monkeypatch, proxy_url="http://carol:pr0xy@{proxy}")
    proxy_auth = "Basic " + base64.b64encode(b"carol:pr0xy").decode()
    assert _paths(proxy, own, other) == [("away", proxy_auth), ("f", proxy_auth)]
    assert own.secrets_seen() == {"Authorization"} and other.secrets_seen() == set()
    assert not any("Proxy-Authorization" in headers for headers in own.seen + other.seen)


def test_without_a_proxy_url_the_environments_http_proxy_is_used(storage, monkeypatch) -> None:
    own, other, proxy = RecordingServer(), RecordingServer(), ForwardProxy()
    _fetch(own, other, proxy, "f", storage, monkeypatch, http_proxy="http://{proxy}")
    assert _paths(proxy, own) == [("f", None)] and len(own.seen) == 1


def test_no_proxy_sends_the_named_hosts_direct(storage, monkeypatch) -> None:
    own, other, proxy = RecordingServer(), RecordingServer(), ForwardProxy()
    _fetch(own, other, proxy, "f", storage, monkeypatch, http_proxy="http://{proxy}", no_proxy="localhost,127.0.0.1")
    assert proxy.seen == [] and len(own.seen) == 1


@dataclass
class PublicHostProxy(ForwardProxy):
    """A proxy that answers requests for ``files.example`` itself, as a proxy reaching a public host would."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.url.host == "files.example":
            self.seen.append((str(request.url), request.headers.get("Proxy-Authorization")))
            return web.Response(body=DATA)
        return await super()._handle(request)


def test_the_operators_proxy_on_a_private_address_carries_requests_to_other_origins(storage) -> None:
    async def run() -> None:
        async with RecordingServer() as own, RecordingServer() as other, PublicHostProxy() as proxy:
            remote = RemoteConfig(url=own.base_url + "PULP_MANIFEST", retries=0, proxy_url=proxy.base_url)
            async with Fetcher(remote, storage) as fetcher:
                # the proxy is on loopback, and resolves the name itself: neither is refused
                assert await fetcher.fetch_bytes("http://files.example/f", max_size=len(DATA)) == DATA
                with pytest.raises(DownloadError, match=r"refused: 127\.0\.0\.1 is a loopback address"):
                    await fetcher.fetch_bytes(other.base_url + "f", max_size=len(DATA))  # an IP literal is checked
            assert [target for target, _ in proxy.seen] == ["http://files.example/f"]
            assert other.seen == []

    asyncio.run(run())
