"""The content server against a real client over 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event
from yarl import URL

from pendingops.db.versions import begin_version, find_repository
from pendingops.maintenance.lifecycle import delete_repository, delete_version, rollback
from tests.serve.served import content_server, file_url, raw_request, sync_files

HOSTILE_FILES = {
    "a b.txt": b"spaces",
    "100%.txt": b"percent",
    "hash#tag.txt": b"hash",
    "what?.txt": b"question",
    "plus+sign.txt": b"plus",
    "ünïcødé/文件.txt": "non-ASCII bytes ✓".encode(),
    "empty": b"",
    "/".join(f"d{i}" for i in range(30)) + "/deep.bin": bytes(range(256)) * 40,
    "comma, too.tar.gz": b"\x1f\x8b not really",
    "big.bin": hashlib.sha256(b"seed").digest() * 8192,
}


async def get(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, Any, bytes]:
    async with session.get(URL(url, encoded=True), headers=headers, allow_redirects=False) as response:
        return response.status, response.headers, await response.read()


def test_files_come_back_byte_identical_with_their_headers(db, any_storage) -> None:
    """From local storage (sendfile) and from S3 (streamed through the storage) alike."""
    storage = any_storage

    async def scenario() -> None:
        await sync_files(db, storage, HOSTILE_FILES)
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            for path, data in HOSTILE_FILES.items():
                for version in ("latest", "1"):
                    status, headers, body = await get(session, file_url(server, path, version=version))
                    assert (status, body) == (200, data), path
                    assert headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
                    assert headers["Content-Length"] == str(len(data))
                    assert headers["Accept-Ranges"] == "bytes"
                    assert "Last-Modified" in headers
            _, headers, _ = await get(session, file_url(server, "a b.txt"))
            assert headers["Content-Type"].startswith("text/plain")
            _, headers, _ = await get(session, file_url(server, "comma, too.tar.gz"))
            assert headers["Content-Type"] == "application/gzip" and "Content-Encoding" not in headers

    asyncio.run(scenario())


@pytest.mark.parametrize("repeat", [4, 1024], ids=["1 KiB, sent at once", "256 KiB, sendfile"])
def test_head_conditional_requests_and_ranges(db, any_storage, repeat) -> None:
    storage = any_storage
    data = bytes(range(256)) * repeat
    n = len(data)
    etag = f'"{hashlib.sha256(data).hexdigest()}"'

    async def scenario() -> None:
        await sync_files(db, storage, {"f.bin": data, "empty": b""})
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            url = URL(file_url(server, "f.bin"), encoded=True)
            async with session.head(url) as response:
                assert response.status == 200 and response.headers["Content-Length"] == str(n)
                assert response.headers["ETag"] == etag and await response.read() == b""
            assert (await get(session, str(url), **{"If-None-Match": etag}))[0] == 304
            assert (await get(session, str(url), **{"If-None-Match": f'"x", W/{etag}'}))[0] == 304
            assert (await get(session, str(url), **{"If-None-Match": "*"}))[0] == 304
            assert (await get(session, str(url), **{"If-None-Match": '"other"'}))[0] == 200
            _, headers, _ = await get(session, str(url))
            assert (await get(session, str(url), **{"If-Modified-Since": headers["Last-Modified"]}))[0] == 304

            async def ranged(value: str, **more: str) -> tuple[int, Any, bytes]:
                return await get(session, str(url), Range=value, **more)

            status, headers, body = await ranged("bytes=10-19")
            assert (status, body, headers["Content-Range"]) == (206, data[10:20], f"bytes 10-19/{n}")
            assert headers["Content-Length"] == "10" and headers["ETag"] == etag
            status, headers, body = await ranged(f"bytes={n - 24}-{n + 5000}")  # clamped to the end
            assert (status, body, headers["Content-Range"]) == (206, data[-24:], f"bytes {n - 24}-{n - 1}/{n}")
            assert headers["Content-Length"] == "24"
            status, headers, body = await ranged("bytes=-5")
            assert (status, body, headers["Content-Range"]) == (206, data[-5:], f"bytes {n - 5}-{n - 1}/{n}")
            status, headers, body = await ranged(f"bytes={n - 24}-")
            assert (status, body) == (206, data[-24:])
            status, headers, body = await ranged(f"bytes=-{n + 10}")  # a suffix longer than the file: all of it
            assert (status, body, headers["Content-Range"]) == (206, data, f"bytes 0-{n - 1}/{n}")
            for unsatisfiable in (f"bytes={n}-", f"bytes={n + 5}-{n + 6}", "bytes=-0"):
                status, headers, _ = await ranged(unsatisfiable)
                assert (status, headers["Content-Range"]) == (416, f"bytes */{n}"), unsatisfiable
            for ignored in ("bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=abc"):
                assert (await ranged(ignored))[:3:2] == (200, data), ignored
            assert (await ranged("bytes=0-1", **{"If-Range": etag}))[0] == 206
            assert (await ranged("bytes=0-1", **{"If-Range": '"old"'}))[:3:2] == (200, data)
            async with session.head(url, headers={"Range": "bytes=0-9"}) as response:
                assert (response.status, response.headers["Content-Length"]) == (206, "10")
            status, headers, _ = await get(session, file_url(server, "empty"), Range="bytes=0-0")
            assert (status, headers["Content-Range"]) == (416, "bytes */0")

    asyncio.run(scenario())


def test_other_methods_are_405(db, storage) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, {"f": b"x"})
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                async with session.request(method, file_url(server, "f")) as response:
                    assert response.status == 405 and response.headers["Allow"] == "GET, HEAD"
                    assert (await response.read()) != b"x"

    asyncio.run(scenario())


def test_listings_in_html_and_json(db, storage) -> None:
    files = {"top.txt": b"t", "sub/a.txt": b"a", "sub/deeper/b.txt": b"b", "odd <&\"'>.txt": b"o"}

    async def scenario() -> None:
        await sync_files(db, storage, files)
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            json_accept = {"Accept": "application/json"}
            status, _, body = await get(session, server.base_url, **json_accept)
            assert status == 200 and [e["name"] for e in __import__("json").loads(body)["entries"]] == ["r/"]
            status, _, body = await get(session, server.base_url + "r/", **json_accept)
            assert [e["name"] for e in __import__("json").loads(body)["entries"]] == ["latest/", "1/", "0/"]
            async with session.get(server.base_url + "r/latest/", headers=json_accept) as response:
                listing = await response.json()
            names = {e["name"]: e for e in listing["entries"]}
            assert set(names) == {"sub/", "top.txt", "odd <&\"'>.txt", "PULP_MANIFEST"}
            assert names["top.txt"]["sha256"] == hashlib.sha256(b"t").hexdigest() and names["top.txt"]["size"] == 1
            async with session.get(server.base_url + "r/1/sub/", headers=json_accept) as response:
                assert {e["name"] for e in (await response.json())["entries"]} == {"a.txt", "deeper/"}
            status, headers, page = await get(session, server.base_url + "r/latest/sub/")
            assert status == 200 and headers["Content-Type"].startswith("text/html")
            assert b'href="./deeper/"' in page and b'href="./a.txt"' in page and b'href="../"' in page
            status, _, page = await get(session, server.base_url + "r/latest/")
            assert b"odd &lt;&amp;&quot;&#x27;&gt;.txt" in page and b"<&" not in page
            # folders without their slash redirect; unknown folders and versions are 404
            status, headers, _ = await get(session, server.base_url + "r/latest/sub")
            assert (status, headers["Location"]) == (301, "/r/latest/sub/")
            assert (await get(session, server.base_url + "r/latest"))[1]["Location"] == "/r/latest/"
            for missing in ("r/latest/nope/", "r/7/", "nope/", "nope/latest/", "r/latest/nope.txt"):
                assert (await get(session, server.base_url + missing))[0] == 404, missing

    asyncio.run(scenario())


def test_a_version_being_built_is_invisible(db, storage) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, {"f": b"one"})
        with db.engine.begin() as conn:
            begin_version(conn, find_repository(conn, "r"))  # version 2, never finished
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            assert (await get(session, server.base_url + "r/2/"))[0] == 404
            assert (await get(session, file_url(server, "f", version=2)))[0] == 404
            assert (await get(session, file_url(server, "f")))[2] == b"one"
            _, _, body = await get(session, server.base_url + "r/", Accept="application/json")
            assert b'"2/"' not in body

    asyncio.run(scenario())


def test_pinned_versions_stay_reachable_after_a_mirror_resync(db, storage) -> None:
    async def scenario() -> None:
        first = {"keep.txt": b"keep", "gone.txt": b"gone", "changed.txt": b"old"}
        second = {"keep.txt": b"keep", "changed.txt": b"new", "added.txt": b"added"}
        assert await sync_files(db, storage, first) == 1
        assert await sync_files(db, storage, second, mirror=True) == 2
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            for version, files in ((1, first), (2, second), ("latest", second)):
                for path, data in files.items():
                    assert (await get(session, file_url(server, path, version=version)))[::2] == (200, data)
            assert (await get(session, file_url(server, "gone.txt")))[0] == 404
            assert (await get(session, file_url(server, "added.txt", version=1)))[0] == 404

    asyncio.run(scenario())


#: request targets sent byte for byte, and what the server must answer
HOSTILE_TARGETS = [
    b"/r/latest/../../../etc/passwd",
    b"/r/latest/%2e%2e/%2e%2e/etc/passwd",
    b"/r/latest/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    b"/r/latest/..%2f..%2fetc%2fpasswd",
    b"/r/latest/sub%2fa.txt",
    b"/r/latest//etc/passwd",
    b"//r/latest/top.txt",
    b"/r/latest/sub//a.txt",
    b"/r/latest/./top.txt",
    b"/r/latest/sub/../top.txt",
    b"/r/latest/..\\..\\etc\\passwd",
    b"/r/latest/%5c..%5cetc%5cpasswd",
    b"/r/latest/top.txt%00.jpg",
    b"/r/latest/top.txt%00",
    b"/r/1/%ff%fe",
    b"/r/-1/top.txt",
    b"/r/01x/top.txt",
    b"/r/99999999999999999999/top.txt",
    b"/../../etc/passwd",
    b"/r/latest/%252e%252e/top.txt",
    b"http://x/r/latest/../../etc/passwd",
    b"*",
]


def test_hostile_request_targets_never_reach_outside(db, storage, tmp_path) -> None:
    (tmp_path / "secret").write_bytes(b"SECRET")
    answers: dict[bytes, int] = {}

    async def scenario() -> None:
        await sync_files(db, storage, {"top.txt": b"top", "sub/a.txt": b"a"})
        async with content_server(db, storage) as server:
            assert await raw_request(server, b"/r/latest/top.txt") == (200, b"top")
            assert await raw_request(server, b"/r/latest/sub/a.txt") == (200, b"a")
            for target in HOSTILE_TARGETS:
                status, body = await raw_request(server, target)
                answers[target] = status
                assert status in (400, 404), (target, status)
                assert b"SECRET" not in body and b"root:" not in body
            # a null byte or a raw backslash in the request line itself
            for target in (b"/r/latest/top.txt\x00", b"/r/latest/sub\\a.txt"):
                status, _ = await raw_request(server, target)
                answers[target] = status
                assert status in (400, 404), (target, status)

    asyncio.run(scenario())
    print("\n".join(f"{target!r} -> {status}" for target, status in answers.items()))


@pytest.mark.parametrize("files", [{}, {"only.txt": b"1"}])
def test_an_empty_or_small_version_lists_and_serves(db, storage, files) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, files)
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            status, _, body = await get(session, server.base_url + "r/latest/PULP_MANIFEST")
            assert status == 200
            expected = "".join(f"{p},{hashlib.sha256(d).hexdigest()},{len(d)}\n" for p, d in files.items())
            assert body.decode() == expected

    asyncio.run(scenario())


def test_a_new_version_is_served_as_latest_while_the_server_runs(db, storage) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, {"f": b"one"})
        async with content_server(db, storage, latest_ttl=0) as server, aiohttp.ClientSession() as session:
            assert (await get(session, file_url(server, "f")))[2] == b"one"
            await sync_files(db, storage, {"f": b"two"}, mirror=True)
            assert (await get(session, file_url(server, "f")))[2] == b"two"
            assert (await get(session, file_url(server, "f", version=1)))[2] == b"one"

    asyncio.run(scenario())


def test_remembered_files_belong_to_the_version_asked_for(db, storage) -> None:
    """Files are remembered per version: the same path in another version, or in a repository deleted and
    made again under the same name (same version number), is never answered from another's bytes."""
    small, large = b"one", b"1" * (65 * 1024)  # sent from memory, and with sendfile

    async def scenario() -> None:
        await sync_files(db, storage, {"f": small, "g": large})
        await sync_files(db, storage, {"f": b"two", "g": b"2" * (65 * 1024)}, mirror=True)
        async with content_server(db, storage, latest_ttl=0) as server, aiohttp.ClientSession() as session:
            for _ in range(2):
                for version, f, g in (("1", small, large), ("2", b"two", b"2" * (65 * 1024))):
                    assert (await get(session, file_url(server, "f", version=version)))[2] == f
                    assert (await get(session, file_url(server, "g", version=version)))[2] == g
                assert (await get(session, file_url(server, "f")))[2] == b"two"
            rollback(db, "r", 1)
            assert (await get(session, file_url(server, "f")))[2] == small
            assert (await get(session, file_url(server, "f", version=2)))[2] == b"two"
            delete_repository(db, "r")
            assert (await get(session, file_url(server, "f", version=1)))[0] == 404
            await sync_files(db, storage, {"f": b"new"})
            assert (await get(session, file_url(server, "f", version=1)))[2] == b"new"

    asyncio.run(scenario())


def test_a_deleted_version_is_not_served_from_memory(db, storage) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, {"f": b"one", "big": b"b" * (65 * 1024)})
        await sync_files(db, storage, {"f": b"two"}, mirror=True)
        async with content_server(db, storage, latest_ttl=0) as server, aiohttp.ClientSession() as session:
            for _ in range(2):
                assert (await get(session, file_url(server, "f", version=1)))[2] == b"one"
                assert (await get(session, file_url(server, "big", version=1)))[0] == 200
            delete_version(db, "r", 1)
            assert (await get(session, file_url(server, "f", version=1)))[0] == 404
            assert (await get(session, file_url(server, "big", version=1)))[0] == 404
            assert (await get(session, file_url(server, "f", version=2)))[2] == b"two"

    asyncio.run(scenario())


def test_a_version_read_is_shared_by_the_requests_arriving_during_it(db, storage) -> None:
    """Many requests at once for a version not yet read cost one database read, not one each."""

    async def scenario() -> None:
        await sync_files(db, storage, {"f": b"one"})
        reads: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "repository_version.created_at" in statement:  # find_version
                reads.append(statement)

        async with content_server(db, storage, latest_ttl=3600) as server, aiohttp.ClientSession() as session:
            event.listen(db.engine, "before_cursor_execute", count)
            try:
                answers = await asyncio.gather(*(get(session, file_url(server, "f")) for _ in range(20)))
            finally:
                event.remove(db.engine, "before_cursor_execute", count)
        assert [body for _, _, body in answers] == [b"one"] * 20
        assert len(reads) == 1

    asyncio.run(scenario())


def test_accel_redirect_leaves_stored_files_to_the_front_server(db, storage) -> None:
    files = {"a b.txt": b"spaces", "big.bin": b"x" * (65 * 1024)}

    async def scenario() -> None:
        await sync_files(db, storage, files)
        async with (
            content_server(db, storage, accel_redirect="/stored/") as server,
            aiohttp.ClientSession() as session,
        ):
            for path, data in files.items():
                sha256 = hashlib.sha256(data).hexdigest()
                status, headers, body = await get(session, file_url(server, path))
                assert (status, body) == (200, b"")
                assert headers["X-Accel-Redirect"] == "/stored/" + storage.location_for(sha256)
                assert headers["ETag"] == f'"{sha256}"'
            assert (await get(session, file_url(server, "missing")))[0] == 404
            _, headers, body = await get(session, server.base_url + "r/latest/PULP_MANIFEST")
            assert "X-Accel-Redirect" not in headers and b"big.bin" in body

    asyncio.run(scenario())
