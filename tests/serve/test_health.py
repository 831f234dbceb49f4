"""``GET /-/health``: 200 when the database and the storage answer; 503 naming what failed, in bounded time,
when the database is down (a private PostgreSQL cluster stopped) or hangs (a server that never answers)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from pendingops import LocalStorage, open_database
from pendingops.storage.owner import OWNER_MARKER
from tests import test_outages
from tests.pg_cluster import PrivateCluster
from tests.serve.served import content_server, sync_files

cluster = test_outages.cluster  # the fixture: a PostgreSQL cluster of this module's own, to stop and start

OK = {"status": "ok", "database": "ok", "storage": "ok"}


async def health(session: aiohttp.ClientSession, server) -> tuple[int, dict[str, str]]:
    async with session.get(server.base_url + "-/health") as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return response.status, json.loads(await response.read())


def test_health_is_ok_when_database_and_storage_answer_and_names_a_missing_storage(db, storage) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, {"a.txt": b"a"})
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            assert await health(session, server) == (200, OK)
            (storage.root / OWNER_MARKER).rename(storage.root / "moved-away")  # as a storage unmounted
            assert await health(session, server) == (503, {**OK, "status": "unavailable", "storage": "error"})
            (storage.root / "moved-away").rename(storage.root / OWNER_MARKER)
            assert await health(session, server) == (200, OK)

    asyncio.run(scenario())


@pytest.mark.postgres
def test_health_says_503_while_the_database_is_stopped_and_ok_once_it_is_back(
    cluster: PrivateCluster, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="pendingops.serve")
    storage = LocalStorage(tmp_path / "storage")
    db = open_database(cluster.url)
    try:

        async def scenario() -> None:
            await sync_files(db, storage, {"a.txt": b"a"})
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                assert await health(session, server) == (200, OK)
                cluster.stop()
                started = time.monotonic()
                down = await health(session, server)
                took = time.monotonic() - started
                assert down == (503, {"status": "unavailable", "database": "error", "storage": "ok"})
                assert await health(session, server) == down  # said in the log once, answered every time
                cluster.start()
                assert await health(session, server) == (200, OK)
                print(f"503 with the database stopped answered in {took:.3f} s")

        asyncio.run(scenario())
    finally:
        db.close()
        if not cluster.running():
            cluster.start()
    said = [r.getMessage() for r in caplog.records if r.name == "pendingops.serve" and "health" in r.getMessage()]
    assert said[0].startswith("health: the database failed its check: ") and len(said) == 2
    assert said[1] == "health: the database answers again"


@pytest.mark.postgres
def test_health_answers_in_time_while_the_database_hangs_and_never_piles_up_checks(tmp_path: Path) -> None:
    """A database server that lets clients in and never answers a query: each health request answers 503
    "timeout" while the one check it started is still stuck (shown by the order of events, not a clock)."""
    storage = LocalStorage(tmp_path / "storage")
    connections: list[asyncio.StreamWriter] = []
    queried = asyncio.Event()
    release = asyncio.Event()

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            await _welcome(reader, writer)
            await reader.read(1)  # the first query, never answered
            queried.set()
            await release.wait()
        finally:
            writer.close()

    async def scenario() -> None:
        hung = await asyncio.start_server(never_answers, "127.0.0.1", 0)
        port = hung.sockets[0].getsockname()[1]
        db = open_database(f"postgresql://postgres@127.0.0.1:{port}/hung", create=False)
        try:
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                for _ in range(3):
                    answer = asyncio.ensure_future(health(session, server))
                    done, _ = await asyncio.wait([answer], timeout=30)
                    assert done, "the health check waited for the hung database"
                    status, body = answer.result()
                    assert (status, body["database"]) == (503, "timeout")
                    assert queried.is_set() and len(connections) == 1  # one check, stuck in its query
                release.set()
        finally:
            hung.close()
            db.close()

    asyncio.run(scenario())


async def _welcome(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Let a PostgreSQL client in (no TLS, no password), as a server that is about to hang would."""
    length = int.from_bytes(await reader.readexactly(4), "big")
    body = await reader.readexactly(length - 4)
    if body[:4] == (80877103).to_bytes(4, "big"):  # SSLRequest: no TLS here, then the startup message
        writer.write(b"N")
        length = int.from_bytes(await reader.readexactly(4), "big")
        await reader.readexactly(length - 4)
    message = b"R" + (8).to_bytes(4, "big") + (0).to_bytes(4, "big")  # authentication ok
    for name, value in (("server_version", "16.0"), ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY")):
        payload = name.encode() + b"\0" + value.encode() + b"\0"
        message += b"S" + (len(payload) + 4).to_bytes(4, "big") + payload
    writer.write(message + b"Z" + (5).to_bytes(4, "big") + b"I")  # ready for a query
    await writer.drain()
