"""The access log: one line per answered request, each a JSON object under the json format, with the
client, method, target, status, body bytes and duration; none with the log turned off."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterator

import aiohttp
import pytest
from yarl import URL

from pendingops.logs import configure
from pendingops.serve.operating import Operating
from tests.serve.served import content_server, file_url, sync_files

SMALL = b"small\n"
LARGE = bytes(range(256)) * 1024  # 256 KiB: sent with sendfile


@pytest.fixture(autouse=True)
def _json_logs() -> Iterator[None]:
    handlers, level = list(logging.getLogger().handlers), logging.getLogger().level
    configure("info", "json")
    yield
    logging.getLogger().handlers[:] = handlers
    logging.getLogger().setLevel(level)


def access_lines(err: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    return [line for line in lines if line["logger"] == "pendingops.access"]


def test_each_request_is_one_json_line_with_what_was_sent(db, storage, capsys) -> None:
    async def scenario() -> list[tuple[str, str, int, bytes]]:
        await sync_files(db, storage, {"small.txt": SMALL, "large.bin": LARGE})
        seen = []
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            asked = [
                ("GET", file_url(server, "small.txt"), {}),
                ("GET", file_url(server, "large.bin"), {}),
                ("HEAD", file_url(server, "large.bin"), {}),
                ("GET", file_url(server, "small.txt"), {"If-None-Match": f'"{hashlib.sha256(SMALL).hexdigest()}"'}),
                ("GET", file_url(server, "nothing%20here"), {}),
                ("GET", file_url(server, "PULP_MANIFEST"), {}),
            ]
            for method, url, headers in asked:
                async with session.request(method, URL(url, encoded=True), headers=headers) as response:
                    seen.append((method, URL(url, encoded=True).raw_path, response.status, await response.read()))
        return seen

    seen = asyncio.run(scenario())
    lines = access_lines(capsys.readouterr().err)
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [s[:3] for s in seen]
    assert [s[2] for s in seen] == [200, 200, 200, 304, 404, 200]
    assert [line["bytes"] for line in lines[:5]] == [len(SMALL), len(LARGE), 0, 0, len(seen[4][3])]
    manifest = seen[5][3]
    assert lines[5]["bytes"] >= len(manifest) and b"small.txt" in manifest  # chunked: with its framing
    for line in lines:
        assert line["client"] == "127.0.0.1" and line["level"] == "info"
        assert isinstance(line["duration_s"], float) and line["duration_s"] >= 0
        assert line["msg"].startswith('127.0.0.1 - "' + line["method"] + " " + line["path"] + '" ')


def test_without_the_access_log_requests_are_still_counted(db, storage, capsys) -> None:
    async def scenario() -> bytes:
        await sync_files(db, storage, {"small.txt": SMALL})
        quiet = Operating(db, storage, access_log=False)
        async with content_server(db, storage, operating=quiet) as server, aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.get(file_url(server, "small.txt")) as response:
                    assert await response.read() == SMALL
            async with session.get(server.base_url + "-/metrics") as response:
                return await response.read()

    metrics = asyncio.run(scenario())
    assert access_lines(capsys.readouterr().err) == []
    assert b'pendingops_http_requests_total{status="200"} 2.0' in metrics
