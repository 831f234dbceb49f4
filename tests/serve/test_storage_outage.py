"""serve with its S3 storage stalled: database-only answers go on, a file gets 503 before any byte.

The storage sits behind a FaultProxy in front of moto (cued by the test, healed on its events).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from pendingops import Database
from pendingops.storage.s3 import S3Storage
from tests.cutting_proxy import FaultProxy
from tests.serve.served import content_server, file_url, sync_files

pytestmark = pytest.mark.s3
FILES = {"a.txt": b"alpha\n" * 1000, "b.txt": b"beta\n" * 1000, "c.txt": b"gamma\n" * 1000}


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], bytes]:
    async with session.get(URL(url, encoded=True), allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.read()


def test_listings_index_files_and_health_answer_while_storage_reads_are_held(
    db: Database, faulty_s3: FaultProxy, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 6: storage reads have threads of their own; with every one held by a stall, a listing, the
    published PULP_MANIFEST and /-/health answer (one database thread only), a further file gets 503 at
    once, and the held reads complete whole once the storage answers again."""
    monkeypatch.setenv("PENDINGOPS_S3_READ_TIMEOUT", "600")  # held reads end when healed, not by a timeout
    storage = S3Storage(s3_url, tmp_path / "staging", retry_seconds=0)

    async def scenario() -> None:
        await sync_files(db, storage, FILES)
        storage.retry_seconds = 0  # as `pendingops serve` has it
        async with (
            content_server(db, storage, db_threads=1, storage_threads=2) as server,
            aiohttp.ClientSession() as session,
        ):
            faulty_s3.stall()
            try:
                held = [asyncio.create_task(_get(session, file_url(server, name))) for name in ("a.txt", "b.txt")]
                await asyncio.to_thread(faulty_s3.wait_for, "held", 2)

                # (the wait_for only keeps a request queued behind the stall from hanging the test)
                status, found, body = await asyncio.wait_for(_get(session, file_url(server, "c.txt")), 60)
                assert (status, found.get("Retry-After")) == (503, "5"), body
                listing = await _get(session, server.base_url + "r/latest/")
                manifest = await _get(session, file_url(server, "PULP_MANIFEST"))
                health = await _get(session, server.base_url + "-/health")
                assert not any(task.done() for task in held)  # all of it answered while the reads were held
                assert listing[0] == 200 and b"a.txt" in listing[2]
                assert manifest[0] == 200 and b"a.txt" in manifest[2]
                assert health[0] == 503 and json.loads(health[2])["database"] == "ok"
                assert json.loads(health[2])["storage"] != "ok"

                faulty_s3.heal()
                for task, name in zip(held, ("a.txt", "b.txt"), strict=True):
                    status, _, body = await task
                    assert (status, body) == (200, FILES[name])
            finally:
                faulty_s3.heal()  # a failed check must not leave held reads for the close to wait out

    try:
        asyncio.run(scenario())
    finally:
        storage.close()


def test_a_file_whose_storage_read_fails_gets_503_not_a_cut_200(
    db: Database, faulty_s3: FaultProxy, s3_url: str, tmp_path: Path
) -> None:
    """Finding 6: S3 stalled (1 s read timeout) or refused: the file request is a 503 with Retry-After."""
    storage = S3Storage(s3_url, tmp_path / "staging", retry_seconds=0)

    async def scenario() -> None:
        await sync_files(db, storage, FILES)
        storage.retry_seconds = 0  # as `pendingops serve` has it (the sync rode outages out for 30 s)
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            assert (await _get(session, file_url(server, "a.txt")))[::2] == (200, FILES["a.txt"])
            for fault in (faulty_s3.stall, faulty_s3.refuse):
                fault()
                status, found, body = await _get(session, file_url(server, "b.txt"))
                assert (status, found.get("Retry-After")) == (503, "5"), (fault, body)
                assert body.startswith(b"storage unavailable: ") and b"Traceback" not in body
                faulty_s3.heal()
            assert (await _get(session, file_url(server, "c.txt")))[::2] == (200, FILES["c.txt"])

    try:
        asyncio.run(scenario())
    finally:
        storage.close()
