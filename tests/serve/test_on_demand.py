"""on_demand and streamed content: fetched from its remotes on first request, checked, stored or not."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import aiohttp
import pytest
from yarl import URL

from pendingops import RemoteConfig, declarative_version
from pendingops.db.schema import Artifact, ContentArtifact
from tests.conftest import count_rows, file_units
from tests.serve.served import GatedOrigin, content_server, file_url

SMALL = b"small file\n"
LARGE = hashlib.sha256(b"large").digest() * 65536  # 2 MiB: many chunks go out before the last


async def record(db, storage, origin: GatedOrigin, files: dict[str, bytes], *, repository="r", policy="on_demand"):
    """Sync ``files`` as listed by ``origin`` without fetching them (the policy records where they are)."""
    result = await declarative_version(
        file_units(origin.manifest_url, files),
        db=db,
        storage=storage,
        remote=RemoteConfig(url=origin.manifest_url, name=f"origin-{origin.base_url}", policy=policy),
        repository=repository,
        batch_wait=0.01,
    )
    assert result.version.number >= 1


def stored_artifacts(db) -> int:
    with db.engine.connect() as conn:
        linked = conn.execute(
            ContentArtifact.__table__.select().where(ContentArtifact.__table__.c.artifact_id.is_not(None))
        ).all()
    return len(linked)


async def fetch(session: aiohttp.ClientSession, url: str, method: str = "GET") -> tuple[int, Any, bytes]:
    async with session.request(method, URL(url, encoded=True)) as response:
        return response.status, response.headers, await response.read()


def test_first_request_fetches_streams_and_stores_then_storage_serves(db, any_storage) -> None:
    storage = any_storage
    files = {"small.txt": SMALL, "dir/large.bin": LARGE, "empty": b""}

    async def scenario() -> None:
        async with GatedOrigin(dict(files)) as origin:
            origin.gate.set()
            await record(db, storage, origin, files)
            assert count_rows(db, Artifact) == 0
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                status, headers, _ = await fetch(session, file_url(server, "dir/large.bin"), "HEAD")
                assert (status, headers["Content-Length"]) == (200, str(len(LARGE)))
                assert origin.requests["dir/large.bin"] == 0  # HEAD fetches nothing
                for path, data in files.items():
                    status, headers, body = await fetch(session, file_url(server, path))
                    assert (status, body) == (200, data), path
                    assert headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
                assert stored_artifacts(db) == 3
                for path, data in files.items():
                    assert (await fetch(session, file_url(server, path)))[::2] == (200, data)
                    assert origin.requests[path] == 1, path  # the second answer came from storage
                async with session.get(server.base_url + "r/latest/dir/large.bin", headers={"Range": "bytes=0-3"}) as r:
                    assert (r.status, await r.read()) == (206, LARGE[:4])

    asyncio.run(scenario())


def test_concurrent_requests_cause_one_upstream_fetch(db, storage) -> None:
    async def scenario() -> None:
        async with GatedOrigin({"large.bin": LARGE}) as origin:
            await record(db, storage, origin, {"large.bin": LARGE})
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                requests = [asyncio.create_task(fetch(session, file_url(server, "large.bin"))) for _ in range(5)]
                # until the upstream holds one request and four clients wait (or a second request arrived)
                while origin.requests["large.bin"] < 2 and not (
                    origin.requests["large.bin"] == 1 and sum(server.on_demand.waiting.values()) == 4
                ):
                    await asyncio.sleep(0.01)
                origin.gate.set()
                answers = await asyncio.gather(*requests)
                assert [(status, body == LARGE) for status, _, body in answers] == [(200, True)] * 5
                assert origin.requests["large.bin"] == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("corrupt", [False, True])
def test_requests_arriving_during_a_fetch_follow_it_as_it_grows(db, storage, corrupt) -> None:
    async def scenario() -> None:
        origin = GatedOrigin({"large.bin": LARGE}, stall={"large.bin"}, stall_after=300_000)
        if corrupt:
            origin.corrupt.add("large.bin")
        origin.gate.set()
        async with origin:
            await record(db, storage, origin, {"large.bin": LARGE})
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                url = URL(file_url(server, "large.bin"), encoded=True)
                # the second request is made once the first has its headers, while the upstream stalls
                async with session.get(url) as first, session.get(url) as second:
                    assert origin.requests["large.bin"] == 1
                    expected = LARGE if not corrupt else bytes((b + 1) % 256 for b in LARGE)
                    for response in (first, second):  # both have bytes before the transfer ends
                        assert response.status == 200
                        assert await response.content.readexactly(1000) == expected[:1000]
                    origin.release_stall.set()
                    for response in (first, second):
                        if corrupt:
                            with pytest.raises(aiohttp.ClientPayloadError):
                                await response.read()
                        else:
                            assert await response.read() == LARGE[1000:]
                assert origin.requests["large.bin"] == 1
        assert stored_artifacts(db) == (0 if corrupt else 1)

    asyncio.run(scenario())


@pytest.mark.parametrize(("data", "outcome"), [(SMALL, "502"), (LARGE, "cut")])
def test_corrupt_upstream_bytes_never_reach_a_client_whole(db, storage, caplog, data, outcome) -> None:
    caplog.set_level(logging.WARNING, logger="pendingops.serve")

    async def scenario() -> None:
        async with GatedOrigin({"f.bin": data}, corrupt={"f.bin"}) as origin:
            origin.gate.set()
            await record(db, storage, origin, {"f.bin": data})
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                if outcome == "502":
                    assert (await fetch(session, file_url(server, "f.bin")))[0] == 502
                else:
                    with pytest.raises(aiohttp.ClientPayloadError):
                        await fetch(session, file_url(server, "f.bin"))
                assert (await fetch(session, server.base_url))[0] == 200  # still serving
        assert count_rows(db, Artifact) == 0 and stored_artifacts(db) == 0
        assert list(storage.iter_locations()) == []
        assert any(origin.base_url + "f.bin" in line and "failed" in line for line in caplog.messages)

    asyncio.run(scenario())


def test_a_failing_remote_is_skipped_for_the_next_one_then_cools_down(db, storage) -> None:
    files = {"a.txt": b"aaa", "b.txt": b"bbb"}

    async def scenario() -> None:
        async with GatedOrigin(dict(files), corrupt=set(files)) as broken, GatedOrigin(dict(files)) as good:
            broken.gate.set()
            good.gate.set()
            await record(db, storage, broken, files, repository="r")
            await record(db, storage, good, files, repository="mirror-of-r")
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                assert (await fetch(session, file_url(server, "a.txt")))[::2] == (200, b"aaa")
                assert (broken.requests["a.txt"], good.requests["a.txt"]) == (1, 1)
                assert (await fetch(session, file_url(server, "b.txt")))[::2] == (200, b"bbb")
                assert (broken.requests["b.txt"], good.requests["b.txt"]) == (0, 1)  # cooling down

    asyncio.run(scenario())


@pytest.mark.parametrize("stall_after", [0, 300_000])
def test_a_stalled_upstream_times_out_while_the_server_keeps_answering(db, storage, stall_after) -> None:
    def settings(source: Any) -> RemoteConfig:
        return RemoteConfig(url=source.remote_url, read_timeout=1.0, retries=0, policy="on_demand")

    async def scenario() -> None:
        async with GatedOrigin({"slow.bin": LARGE}, stall={"slow.bin"}, stall_after=stall_after) as origin:
            origin.gate.set()
            await record(db, storage, origin, {"slow.bin": LARGE})
            async with content_server(db, storage, remote_settings=settings) as server:
                async with aiohttp.ClientSession() as session:
                    stalled = asyncio.create_task(fetch(session, file_url(server, "slow.bin")))
                    while origin.requests["slow.bin"] == 0:
                        await asyncio.sleep(0.01)
                    assert (await fetch(session, server.base_url))[0] == 200  # while the upstream stalls
                    if stall_after:
                        with pytest.raises(aiohttp.ClientPayloadError):
                            await stalled
                    else:
                        assert (await stalled)[0] == 502
                origin.release_stall.set()
        assert stored_artifacts(db) == 0

    asyncio.run(scenario())


def test_streamed_content_is_served_but_never_stored(db, storage) -> None:
    async def scenario() -> None:
        async with GatedOrigin({"s.bin": LARGE}) as origin:
            origin.gate.set()
            await record(db, storage, origin, {"s.bin": LARGE}, policy="streamed")
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                for _ in range(2):
                    assert (await fetch(session, file_url(server, "s.bin")))[::2] == (200, LARGE)
            assert origin.requests["s.bin"] == 2
        assert count_rows(db, Artifact) == 0 and list(storage.iter_locations()) == []

    asyncio.run(scenario())


@pytest.mark.parametrize("algorithm", ["sha512", "md5"])
def test_on_demand_checks_every_declared_digest_not_only_sha256(db, storage, algorithm) -> None:
    """The remote declared a second digest the bytes do not have (their sha256 and size are right):
    the file is neither stored nor delivered whole, as a sync's download would refuse it too."""
    files = {"good.txt": SMALL, "small.txt": SMALL + b"other", "large.bin": LARGE}

    async def scenario() -> None:
        async with GatedOrigin(dict(files)) as origin:
            origin.gate.set()
            units = file_units(origin.manifest_url, files)
            for unit in units:
                data = files[unit.fields["relative_path"]]
                right = hashlib.new(algorithm, data).hexdigest()
                unit.artifacts[0].digests[algorithm] = right if data == SMALL else right[::-1]
            await declarative_version(
                units,
                db=db,
                storage=storage,
                remote=RemoteConfig(url=origin.manifest_url, policy="on_demand"),
                repository="r",
                batch_wait=0.01,
            )
            async with content_server(db, storage, cooldown=0) as server, aiohttp.ClientSession() as session:
                assert (await fetch(session, file_url(server, "good.txt")))[::2] == (200, SMALL)
                assert stored_artifacts(db) == 1
                for _ in range(2):  # nothing was stored: asked again, it is fetched and refused again
                    assert (await fetch(session, file_url(server, "small.txt")))[0] == 502
                    with pytest.raises(aiohttp.ClientPayloadError):
                        await fetch(session, file_url(server, "large.bin"))
                assert (origin.requests["small.txt"], origin.requests["large.bin"]) == (2, 2)
        assert stored_artifacts(db) == 1
        assert list(storage.iter_locations()) == [storage.location_for(hashlib.sha256(SMALL).hexdigest())]

    asyncio.run(scenario())
