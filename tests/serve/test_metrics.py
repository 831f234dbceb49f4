"""``GET /-/metrics``: Prometheus text counting the real requests the server answered, read back with
prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from tests.serve.served import GatedOrigin, content_server, file_url, sync_files
from tests.serve.test_on_demand import record

FILES = {"a.txt": b"alpha\n" * 10, "dir/b.bin": bytes(range(256))}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def get(session: aiohttp.ClientSession, url: str, method: str = "GET") -> tuple[int, bytes]:
    async with session.request(method, URL(url, encoded=True)) as response:
        return response.status, await response.read()


def test_the_request_counters_grow_with_the_real_requests(db, storage) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, FILES)
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            metrics_url = server.base_url + "-/metrics"
            status, first_body = await get(session, metrics_url)
            assert status == 200
            before = samples(first_body.decode())
            sent = len(first_body)
            for _ in range(3):
                status, body = await get(session, file_url(server, "a.txt"))
                assert (status, body) == (200, FILES["a.txt"])
                sent += len(body)
            for path in ("missing.txt", "no/such/thing"):
                status, body = await get(session, file_url(server, path))
                assert status == 404
                sent += len(body)
            assert await get(session, file_url(server, "dir/b.bin"), "HEAD") == (200, b"")
            status, body = await get(session, server.base_url)
            assert status == 200
            sent += len(body)
            status, body = await get(session, metrics_url)
            after = samples(body.decode())

        grown = {key: after[key] - before.get(key, 0.0) for key in after}
        assert value(grown, "pendingops_http_requests_total", status="200") == 6  # 3 files, HEAD, listing, scrape
        assert value(grown, "pendingops_http_requests_total", status="404") == 2
        assert value(grown, "pendingops_http_response_bytes_total") == sent
        assert value(grown, "pendingops_http_request_duration_seconds_count") == 8
        assert value(grown, "pendingops_http_request_duration_seconds_bucket", le="+Inf") == 8
        assert value(after, "pendingops_http_request_duration_seconds_sum") > 0

    asyncio.run(scenario())


def test_on_demand_fetches_are_counted_by_outcome(db, storage) -> None:
    good, bad, passing = b"good bytes\n" * 100, b"will be corrupted\n" * 100, b"streamed\n" * 100

    async def scenario() -> Any:
        async with GatedOrigin({"good": good, "bad": bad}) as origin, GatedOrigin({"passing": passing}) as streaming:
            origin.gate.set()
            streaming.gate.set()
            origin.corrupt.add("bad")
            await record(db, storage, origin, {"good": good, "bad": bad})
            await record(db, storage, streaming, {"passing": passing}, repository="s", policy="streamed")
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                assert await get(session, file_url(server, "good")) == (200, good)
                assert (await get(session, file_url(server, "bad")))[0] == 502
                assert await get(session, file_url(server, "passing", repository="s")) == (200, passing)
                assert await get(session, file_url(server, "good")) == (200, good)  # from storage now
                return samples((await get(session, server.base_url + "-/metrics"))[1].decode())

    found = asyncio.run(scenario())
    assert value(found, "pendingops_on_demand_fetches_total", outcome="stored") == 1
    assert value(found, "pendingops_on_demand_fetches_total", outcome="failed") == 1
    assert value(found, "pendingops_on_demand_fetches_total", outcome="streamed") == 1
