"""on_demand and streamed content: fetched from its remotes on first request, checked, stored or not."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from pendingops import PendingArtifact, PendingContent, RemoteConfig, declarative_version
from pendingops.db.schema import Artifact, ContentArtifact
from pendingops.plugins.file import FileContent
from pendingops.serve.on_demand import _plan
from tests.conftest import count_rows, file_units
from tests.loopback import LoopbackServer
from tests.serve.served import GatedOrigin, content_server, file_url

SMALL = b"small file\n"
NOT_FETCHED = b"the file could not be fetched from any of its remotes\n"
LARGE = hashlib.sha256(b"large").digest() * 65536  # 2 MiB: many chunks go out before the last
#: ``verify_before_send`` for tests of files that stream before they are checked (LARGE is larger)
STREAMED_PAST = 64 * 1024


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
            streaming = content_server(db, storage, verify_before_send=STREAMED_PAST)
            async with streaming as server, aiohttp.ClientSession() as session:
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
            streaming = content_server(db, storage, verify_before_send=STREAMED_PAST)
            async with streaming as server, aiohttp.ClientSession() as session:
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


def test_a_failing_remote_is_skipped_for_the_next_one_then_cools_down_for_that_file(db, storage) -> None:
    files = {"a.txt": b"aaa", "b.txt": b"bbb", "c.txt": b"ccc"}

    async def scenario() -> None:
        async with GatedOrigin(dict(files), corrupt=set(files)) as broken, GatedOrigin(dict(files)) as good:
            good.corrupt.add("c.txt")  # no remote gives c.txt back
            broken.gate.set()
            good.gate.set()
            await record(db, storage, broken, files, repository="r")
            await record(db, storage, good, files, repository="mirror-of-r")
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                assert (await fetch(session, file_url(server, "a.txt")))[::2] == (200, b"aaa")
                assert (broken.requests["a.txt"], good.requests["a.txt"]) == (1, 1)
                assert (await fetch(session, file_url(server, "c.txt")))[0] == 502
                assert (broken.requests["c.txt"], good.requests["c.txt"]) == (1, 1)
                status, _, body = await fetch(session, file_url(server, "c.txt"))
                assert (status, body) == (502, b"every remote holding this file failed recently; try again later\n")
                assert (broken.requests["c.txt"], good.requests["c.txt"]) == (1, 1)  # both cool down for c.txt
                assert (await fetch(session, file_url(server, "b.txt")))[::2] == (200, b"bbb")
                # the broken remote failed a.txt and c.txt, not b.txt: it is asked for b.txt first
                assert (broken.requests["b.txt"], good.requests["b.txt"]) == (1, 1)

    asyncio.run(scenario())


@pytest.mark.parametrize("stall_after", [0, 300_000])
def test_a_stalled_upstream_times_out_while_the_server_keeps_answering(db, storage, stall_after) -> None:
    def settings(source: Any) -> RemoteConfig:
        return RemoteConfig(url=source.remote_url, read_timeout=1.0, retries=0, policy="on_demand")

    async def scenario() -> None:
        async with GatedOrigin({"slow.bin": LARGE}, stall={"slow.bin"}, stall_after=stall_after) as origin:
            origin.gate.set()
            await record(db, storage, origin, {"slow.bin": LARGE})
            streaming = content_server(db, storage, remote_settings=settings, verify_before_send=STREAMED_PAST)
            async with streaming as server:
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
            # small.txt is checked before its first byte goes out; large.bin streams and is cut
            hold = len(LARGE) - 1
            served = content_server(db, storage, cooldown=0, verify_before_send=hold)
            async with served as server, aiohttp.ClientSession() as session:
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


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the servers of the test to bring ``condition`` about (a hang is the test's timeout)."""
    while not condition():
        await asyncio.sleep(0.005)


def unsized_unit(base_url: str, path: str, data: bytes, **digests: str) -> PendingContent:
    """A file unit whose remote declared its sha256 (and ``digests``) but not its size."""
    sha256 = hashlib.sha256(data).hexdigest()
    artifact = PendingArtifact(url=base_url + path, relative_path=path, sha256=sha256, digests=digests)
    return PendingContent(FileContent, {"relative_path": path, "sha256": sha256, "size": None}, [artifact])


@dataclass
class EndlessOrigin(LoopbackServer):
    """Serves a manifest-less endless body: ``first`` bytes, then nothing until ``resume`` is set, then
    zeros until the client hangs up; counts the bytes it wrote."""

    first: int
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(b"\0" * self.first)
            self.sent += self.first
            await self.resume.wait()
            while True:
                await response.write(b"\0" * 65536)
                self.sent += 65536
        except (ConnectionError, RuntimeError):  # the client hung up
            return response


@pytest.mark.parametrize("client", ["waits for the check", "takes bytes and hangs up"])
def test_an_endless_body_of_undeclared_size_stops_at_max_file_size_and_nothing_is_kept(db, storage, client) -> None:
    limit = 256 * 1024

    def temp_sizes() -> list[int]:
        return [path.stat().st_size for path in (storage.root / "tmp").glob("*.part")]

    async def ask(server: Any) -> None:
        async with aiohttp.ClientSession() as session, session.get(file_url(server, "endless.bin")) as response:
            if client == "waits for the check":
                assert (response.status, await response.read()) == (502, NOT_FETCHED)
            else:
                assert response.status == 200
                await response.content.readexactly(1000)
                response.close()  # the client hangs up: the transfer goes on, to its bound

    async def scenario() -> EndlessOrigin:
        async with EndlessOrigin(first=limit) as origin:
            remote = RemoteConfig(url=origin.base_url, policy="on_demand", max_file_size=limit)
            units = [unsized_unit(origin.base_url, "endless.bin", b"")]
            await declarative_version(units, db=db, storage=storage, remote=remote, repository="r")
            hold = 0 if client == "takes bytes and hangs up" else limit
            async with content_server(db, storage, verify_before_send=hold) as server:
                asked = asyncio.create_task(ask(server))
                await until(lambda: temp_sizes() == [limit])  # the whole allowance is in the temporary file
                origin.resume.set()
                await until(lambda: server.on_demand.running == 0 or any(size > limit for size in temp_sizes()))
                assert all(size <= limit for size in temp_sizes())
                await asked
        return origin

    origin = asyncio.run(scenario())
    assert origin.sent < 64 * 2**20  # the server hung up on the endless body
    assert count_rows(db, Artifact) == 0 and list(storage.iter_locations()) == []
    assert list((storage.root / "tmp").iterdir()) == []


def test_a_fetch_whose_client_left_still_fills_the_cache(db, storage) -> None:
    async def scenario() -> None:
        async with GatedOrigin({"f.bin": LARGE}) as origin:
            await record(db, storage, origin, {"f.bin": LARGE})
            async with content_server(db, storage) as server:
                async with aiohttp.ClientSession() as session:
                    leaving = asyncio.create_task(fetch(session, file_url(server, "f.bin")))
                    await until(lambda: origin.requests["f.bin"] == 1)
                    leaving.cancel()  # the client hangs up before a byte was sent
                    with contextlib.suppress(asyncio.CancelledError):
                        await leaving
                origin.gate.set()
                await until(lambda: server.on_demand.running == 0)
                assert stored_artifacts(db) == 1
                async with aiohttp.ClientSession() as session:
                    assert (await fetch(session, file_url(server, "f.bin")))[::2] == (200, LARGE)
            assert origin.requests["f.bin"] == 1

    asyncio.run(scenario())


def test_upstream_fetches_are_bounded_the_rest_wait_then_get_503_with_retry_after(db, storage) -> None:
    files = {f"f{i}.bin": f"file {i}\n".encode() * 1000 for i in range(5)}

    async def scenario() -> None:
        async with GatedOrigin(dict(files)) as origin:
            await record(db, storage, origin, files)
            bounded = content_server(db, storage, on_demand_concurrency=2)
            async with bounded as server, aiohttp.ClientSession() as session:
                asked = [asyncio.create_task(fetch(session, file_url(server, path))) for path in files]
                try:  # two transfers hold the upstream; three requests wait their turn (or a third transfer began)
                    await until(
                        lambda: (
                            (server.on_demand.queued, sum(origin.requests.values())) == (3, 2)
                            or sum(origin.requests.values()) > 2
                        )
                    )
                    assert (server.on_demand.running, sum(origin.requests.values())) == (2, 2)
                finally:
                    origin.gate.set()
                answers = await asyncio.gather(*asked)
                assert [(status, body) for status, _, body in answers] == [(200, data) for data in files.values()]
            assert all(origin.requests[path] == 1 for path in files)

        files.update((path, data + b"stored nowhere yet\n") for path, data in files.items())
        async with GatedOrigin(dict(files)) as origin:
            await record(db, storage, origin, files, repository="s")
            one_at_a_time = content_server(db, storage, on_demand_concurrency=1, on_demand_wait=0.2)
            async with one_at_a_time as server, aiohttp.ClientSession() as session:
                first = asyncio.create_task(fetch(session, file_url(server, "f0.bin", repository="s")))
                try:
                    await until(lambda: origin.requests["f0.bin"] == 1)
                    # the one transfer is held until this request has had its answer: it cannot get a turn
                    status, headers, _ = await fetch(session, file_url(server, "f1.bin", repository="s"))
                    assert (status, headers["Retry-After"]) == (503, "1")
                    assert origin.requests["f1.bin"] == 0
                finally:
                    origin.gate.set()
                assert (await first)[::2] == (200, files["f0.bin"])
                second = await fetch(session, file_url(server, "f1.bin", repository="s"))
                assert second[::2] == (200, files["f1.bin"])

    asyncio.run(scenario())


class LateArrivals:
    """Wraps the on_demand database reads: the requests past the first ``early`` ones of a try are held
    after reading where the file comes from, until ``late`` is set. They read the file as not stored
    before its transfer ended, and look for a running fetch only after it ended and stored the file."""

    def __init__(self, run: Callable[..., Any]) -> None:
        self._run = run
        self.early = 0
        self.arrived = 0
        self.late = asyncio.Event()

    def next_try(self, early: int) -> None:
        self.early, self.arrived, self.late = early, 0, asyncio.Event()

    async def __call__(self, fn: Any, *args: Any) -> Any:
        answer = await self._run(fn, *args)
        if fn is _plan:
            self.arrived += 1
            if self.arrived > self.early:
                await self.late.wait()
        return answer


def test_twenty_concurrent_first_requests_make_one_upstream_get_fifty_times_out_of_fifty(db, storage) -> None:
    """In each try the first ``early`` requests arrive while the upstream transfer is held, and follow
    it; the others arrive once it has stored the file (see LateArrivals)."""
    files = {f"f{i:02d}.bin": hashlib.sha256(b"%d" % i).digest() * 4096 for i in range(50)}

    async def one_try(server: Any, session: aiohttp.ClientSession, origin: GatedOrigin, path: str, early: int) -> None:
        on_demand, arrivals = server.on_demand, server.on_demand._run
        arrivals.next_try(early)
        origin.gate = asyncio.Event()
        asked = [asyncio.create_task(fetch(session, file_url(server, path))) for _ in range(20)]
        await until(
            lambda: (
                origin.requests[path] > 1
                or (origin.requests[path] == 1 and sum(on_demand.waiting.values()) == early - 1)
            )
        )
        origin.gate.set()
        await until(lambda: arrivals.arrived >= early and not on_demand._in_flight)
        arrivals.late.set()
        answers = await asyncio.gather(*asked)
        assert [(status, body == files[path]) for status, _, body in answers] == [(200, True)] * 20
        assert origin.requests[path] == 1, f"{path}: {origin.requests[path]} upstream GETs"

    async def scenario() -> None:
        async with GatedOrigin(dict(files)) as origin:
            origin.gate.set()
            await record(db, storage, origin, files)
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                server.on_demand._run = LateArrivals(server.on_demand._run)
                for attempt, path in enumerate(files):
                    await one_try(server, session, origin, path, early=1 + attempt % 20)
        assert stored_artifacts(db) == 50

    asyncio.run(scenario())


def test_a_range_on_a_file_not_stored_yet_waits_for_the_checked_file(db, storage) -> None:
    async def scenario() -> None:
        async with GatedOrigin({"f.bin": LARGE}) as origin:
            origin.gate.set()
            await record(db, storage, origin, {"f.bin": LARGE})
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                for _ in range(2):
                    async with session.get(file_url(server, "f.bin"), headers={"Range": "bytes=0-0"}) as response:
                        assert (response.status, await response.read()) == (206, LARGE[:1])
                        assert response.headers["Content-Range"] == f"bytes 0-0/{len(LARGE)}"
            assert origin.requests["f.bin"] == 1  # one whole transfer, then storage
        assert stored_artifacts(db) == 1

    asyncio.run(scenario())


def test_a_file_up_to_verify_before_send_is_checked_against_every_digest_before_its_first_byte(db, storage) -> None:
    data = b"sha256 right, sha512 wrong\n" * 1000

    async def scenario() -> None:
        async with GatedOrigin({"f.bin": data, "g.bin": data + b"."}) as origin:
            origin.gate.set()
            remote = RemoteConfig(url=origin.manifest_url, policy="on_demand")
            units = [
                unsized_unit(origin.base_url, "f.bin", data, sha512="0" * 128),
                unsized_unit(origin.base_url, "g.bin", data + b".", sha512=hashlib.sha512(data + b".").hexdigest()),
            ]
            await declarative_version(units, db=db, storage=storage, remote=remote, repository="r")
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                status, _, body = await fetch(session, file_url(server, "f.bin"))
                assert (status, body) == (502, NOT_FETCHED)
                status, headers, body = await fetch(session, file_url(server, "g.bin"))
                assert (status, body, headers["Content-Length"]) == (200, data + b".", str(len(data) + 1))
        assert stored_artifacts(db) == 1

    asyncio.run(scenario())


def test_after_one_file_failed_a_healthy_file_of_the_same_remote_is_served_at_once(db, storage) -> None:
    files = {"bad.txt": b"will not match", "good.txt": b"fine"}

    async def scenario() -> None:
        async with GatedOrigin(dict(files), corrupt={"bad.txt"}) as origin:
            origin.gate.set()
            await record(db, storage, origin, files)
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                assert (await fetch(session, file_url(server, "bad.txt")))[0] == 502
                assert (await fetch(session, file_url(server, "good.txt")))[::2] == (200, b"fine")
                status, _, body = await fetch(session, file_url(server, "bad.txt"))
                assert (status, body) == (502, b"every remote holding this file failed recently; try again later\n")
            assert (origin.requests["bad.txt"], origin.requests["good.txt"]) == (1, 1)

    asyncio.run(scenario())
