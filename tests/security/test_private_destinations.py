"""A remote's data never steers a fetch into the private network (guarantees 4 and 10), on SQLite and PostgreSQL.

A hostile PEP 503 index links its files to an internal service (a second server on another
loopback port, standing in for one): by IP literal, through a 302 from the index's own host, and
by a name that resolves to loopback. No policy (immediate, on_demand, streamed) lets a request reach
it, and a client of ``serve`` gets an error, never its bytes, unless the operator allowed private
destinations for the repository.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.plugins.python import PythonPlugin
from tests.conftest import POSTGRES_URL, fresh_database
from tests.loopback import LoopbackServer
from tests.remote_server import Fault, RemoteServer
from tests.serve.served import content_server, file_url
from tests.server_thread import ServerThread

SCRIPT = str(Path(sys.executable).parent / "pendingops")
SECRETS = b"".join(b"secret line %02d: the internal service's own data\n" % i for i in range(40))
SECRETS_SHA256 = hashlib.sha256(SECRETS).hexdigest()
#: the three ways the index names the internal service: an IP literal, a redirect, a name resolving to loopback
LITERAL, REDIRECTED, NAMED = "evilpy-1.0.tar.gz", "evilpy-1.1.tar.gz", "evilpy-1.2.tar.gz"


@dataclass
class InternalService(LoopbackServer):
    """What must stay unreachable: it counts every request and answers with its secrets."""

    requests: Counter[str] = field(default_factory=Counter)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.match_info["path"]] += 1
        return web.Response(body=SECRETS)


def hostile_index(internal: InternalService) -> RemoteServer:
    """An index whose ``evilpy`` files all lead to ``internal``, each with the secrets' true sha256
    (so only the address, not the digest, can stop them)."""
    port = internal.base_url.rstrip("/").rsplit(":", 1)[1]
    links = {
        LITERAL: f"http://127.0.0.1:{port}/internal/secrets",
        REDIRECTED: f"../../files/{REDIRECTED}",
        NAMED: f"http://localhost:{port}/internal/secrets",
    }
    anchors = "".join(f'<a href="{url}#sha256={SECRETS_SHA256}">{name}</a>\n' for name, url in links.items())
    files = {
        "simple/": b'<a href="evilpy/">evilpy</a>\n',
        "simple/evilpy/": f"<html><body>\n{anchors}</body></html>\n".encode(),
        f"files/{REDIRECTED}": b"",
    }
    faults = {f"files/{REDIRECTED}": Fault(redirect_to=f"http://127.0.0.1:{port}/internal/secrets")}
    return RemoteServer(files, faults=faults)


async def sync_index(db: Database, storage: LocalStorage, index: RemoteServer, policy: str, **settings: object):
    remote = RemoteConfig(url=index.base_url + "simple/", policy=policy, retries=0, **settings)  # type: ignore[arg-type]
    return await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="evilpy", on_error="skip")


async def read(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


def served_path(filename: str) -> str:
    return f"packages/evilpy/{filename}"


@pytest.mark.parametrize("policy", ["on_demand", "streamed"])
def test_serve_never_fetches_from_a_private_address_and_the_client_gets_an_error(
    db: Database, storage: LocalStorage, policy: str
) -> None:
    async def scenario() -> None:
        async with InternalService() as internal, hostile_index(internal) as index:
            result = await sync_index(db, storage, index, policy)
            assert result.failed_count == 0 and result.added == 3  # nothing is fetched yet
            plugins = [PythonPlugin()]
            async with content_server(db, storage, plugins=plugins) as server, aiohttp.ClientSession() as session:
                for filename in (LITERAL, REDIRECTED, NAMED):
                    status, body = await read(session, file_url(server, served_path(filename), repository="evilpy"))
                    assert status == 502, filename
                    assert b"secret" not in body
            assert index.requests[f"files/{REDIRECTED}"] == 1  # the index's own host was asked, and its 302 refused
            assert sum(internal.requests.values()) == 0

    asyncio.run(scenario())


def test_a_sync_refuses_each_private_destination_in_one_line_naming_its_host(
    db: Database, storage: LocalStorage
) -> None:
    async def scenario() -> tuple[list[str], str, str]:
        async with InternalService() as internal, hostile_index(internal) as index:
            result = await sync_index(db, storage, index, "immediate")
            assert sum(internal.requests.values()) == 0
            return [failure.reason for failure in result.failures], internal.base_url, index.base_url

    reasons, internal, own = asyncio.run(scenario())
    hint = "pass --allow-private-destinations to allow it"
    port = internal.rstrip("/").rsplit(":", 1)[1]
    assert sorted(reasons) == sorted(
        [
            f"http://127.0.0.1:{port}/internal/secrets: refused: 127.0.0.1 is a loopback address; {hint}",
            f"{own}files/{REDIRECTED}: refused: 127.0.0.1 is a loopback address; {hint}",
            f"http://localhost:{port}/internal/secrets: refused: 127.0.0.1 (host localhost) is a loopback address;"
            f" {hint}",
        ]
    )


def test_private_destinations_the_operator_allowed_are_remembered_for_serving(
    db: Database, storage: LocalStorage
) -> None:
    async def scenario() -> None:
        async with InternalService() as internal, hostile_index(internal) as index:
            await sync_index(db, storage, index, "on_demand", allow_private_destinations=True)
            plugins = [PythonPlugin()]
            async with content_server(db, storage, plugins=plugins) as server, aiohttp.ClientSession() as session:
                url = file_url(server, served_path(LITERAL), repository="evilpy")
                assert await read(session, url) == (200, SECRETS)
            assert internal.requests["internal/secrets"] == 1

    asyncio.run(scenario())


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> str:
    db = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    db.close()
    return url


def test_sync_allow_private_destinations_is_remembered_until_a_sync_without_it_succeeds(
    db_url: str, tmp_path: Path
) -> None:
    """The file plugin's manifest names its file on its own host, which redirects to another loopback server."""

    def sync(manifest_url: str, *flags: str) -> subprocess.CompletedProcess[str]:
        command = [SCRIPT, "--db", db_url, "--storage", str(tmp_path / "storage"), "sync", manifest_url]
        return subprocess.run([*command, "--repo", "r", "--force", *flags], capture_output=True, text=True, timeout=120)

    data = {"a.txt": b"a file kept on another host\n"}
    with ServerThread(data) as elsewhere, ServerThread(data) as remote:
        remote.faults["a.txt"] = Fault(redirect_to=elsewhere.base_url + "a.txt")
        refused = sync(remote.manifest_url)
        assert refused.returncode == 1
        assert "refused: 127.0.0.1 is a loopback address; pass --allow-private-destinations" in refused.stderr
        assert elsewhere.requests["a.txt"] == 0

        allowed = sync(remote.manifest_url, "--allow-private-destinations")
        assert allowed.returncode == 0, allowed.stderr
        assert elsewhere.requests["a.txt"] == 1
        (tmp_path / "storage" / "artifacts").rename(tmp_path / "old-artifacts")  # the next sync fetches it again

        remembered = sync(remote.manifest_url)
        assert remembered.returncode == 0, remembered.stderr
        assert "private destinations allowed, as remembered for 'r'" in remembered.stdout
        assert elsewhere.requests["a.txt"] == 2

        (tmp_path / "storage" / "artifacts").rename(tmp_path / "older-artifacts")
        off = sync(remote.manifest_url, "--no-allow-private-destinations")
        assert off.returncode == 1
        assert "pass --allow-private-destinations" in off.stderr
        del remote.faults["a.txt"]  # served by the remote itself: the sync succeeds, and what it ran with is kept
        assert sync(remote.manifest_url, "--no-allow-private-destinations").returncode == 0

        remote.faults["a.txt"] = Fault(redirect_to=elsewhere.base_url + "a.txt")
        (tmp_path / "storage" / "artifacts").rename(tmp_path / "oldest-artifacts")
        again = sync(remote.manifest_url)
        assert again.returncode == 1
        assert "private destinations allowed" not in again.stdout
        assert elsewhere.requests["a.txt"] == 2
