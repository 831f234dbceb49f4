"""The server's own pages and its access control, through real requests: a login for everything but the
health check, and only the repositories it was told to serve."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from yarl import URL

from pendingops.serve.auth import BasicAuth
from pendingops.serve.operating import Operating
from tests.serve.served import basic, content_server, file_url, htpasswd_entry, sync_files

FILES = {"a.txt": b"served\n"}


async def answer(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with session.get(URL(url, encoded=True), headers=headers, allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.read()


def test_everything_but_the_health_check_needs_a_login(db, storage, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(htpasswd_entry("alice", "s3cret") + "\n")

    async def scenario() -> None:
        await sync_files(db, storage, FILES)
        operating = Operating(db, storage, auth=BasicAuth(htpasswd))
        async with content_server(db, storage, operating=operating) as server, aiohttp.ClientSession() as session:
            login = {"Authorization": basic("alice", "s3cret")}
            pages = (server.base_url, server.base_url + "r/", file_url(server, "a.txt"), server.base_url + "-/metrics")
            for url in pages:
                for headers in ({}, {"Authorization": basic("alice", "wrong")}, {"Authorization": basic("eve", "x")}):
                    status, found, body = await answer(session, url, **headers)
                    assert (status, body) == (401, b"authentication required\n"), url
                    assert found["WWW-Authenticate"] == 'Basic realm="pendingops"'
                assert (await answer(session, url, **login))[0] == 200, url
            assert (await answer(session, file_url(server, "a.txt"), **login))[2] == FILES["a.txt"]
            status, _, body = await answer(session, server.base_url + "-/health")
            assert (status, json.loads(body)["status"]) == (200, "ok")

    asyncio.run(scenario())


def test_only_the_repositories_given_are_served_or_listed(db, storage) -> None:
    async def scenario() -> None:
        for repository in ("a", "b", "c"):
            await sync_files(db, storage, FILES, repository=repository)
        async with (
            content_server(db, storage, repositories=["a", "c"]) as server,
            aiohttp.ClientSession() as session,
        ):
            for served in ("a", "c"):
                found = await answer(session, file_url(server, "a.txt", repository=served))
                assert found[::2] == (200, FILES["a.txt"])
            for url in (file_url(server, "a.txt", repository="b"), server.base_url + "b/", server.base_url + "b/1/"):
                status, _, body = await answer(session, url)
                assert (status, body) == (404, b"not found: no repository 'b'\n"), url
            status, _, body = await answer(session, server.base_url, Accept="application/json")
            assert status == 200 and [entry["name"] for entry in json.loads(body)["entries"]] == ["a/", "c/"]
            status, _, body = await answer(session, server.base_url)
            assert b'href="./a/"' in body and b"./b/" not in body

    asyncio.run(scenario())


def test_the_reserved_name_holds_only_the_servers_own_pages(db, storage) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, FILES)
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            for page in ("-/health", "-/metrics"):
                assert (await answer(session, server.base_url + page))[0] == 200
            for other in ("-/", "-/1/a.txt", "-/latest/", "-/healthz"):
                assert (await answer(session, server.base_url + other))[0] == 404, other

    asyncio.run(scenario())
