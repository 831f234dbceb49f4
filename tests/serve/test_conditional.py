"""Conditional GETs of stored files (RFC 9110 13.1.1-13.1.4, 13.2.2), over HTTP and as a property of the rule."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from pendingops.serve.conditional import Unsatisfiable, byte_range, condition_status, not_modified
from tests.serve.served import content_server, file_url, sync_files

DATA = b"a file whose copy a client may hold\n"
ETAG = f'"{hashlib.sha256(DATA).hexdigest()}"'


async def _status(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, Any, bytes]:
    async with session.get(URL(url, encoded=True), headers=headers) as response:
        return response.status, response.headers, await response.read()


def _conditions(db, storage, check) -> None:
    """Sync DATA as ``f.txt``, then run ``check(get, last_modified)`` against the server."""

    async def scenario() -> None:
        await sync_files(db, storage, {"f.txt": DATA})
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
            url = file_url(server, "f.txt")
            status, headers, _ = await _status(session, url)
            assert status == 200

            async def get(**conditions: str) -> tuple[int, bytes]:
                status, _, body = await _status(session, url, **conditions)
                return status, body

            await check(get, parsedate_to_datetime(headers["Last-Modified"]))

    asyncio.run(scenario())


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def test_if_none_match_wins_over_if_modified_since(db, any_storage) -> None:
    """A client holding another file (its tag does not match) gets the file, even with a date that
    would make it a 304 alone; a client holding this one gets a 304, whatever its date says."""

    async def check(get, last_modified: datetime) -> None:
        since = _http_date(last_modified)
        assert await get(**{"If-Modified-Since": since}) == (304, b"")  # the date alone: not modified
        assert await get(**{"If-None-Match": '"another-file"', "If-Modified-Since": since}) == (200, DATA)
        long_ago = _http_date(last_modified - timedelta(days=3650))
        assert (await get(**{"If-None-Match": ETAG, "If-Modified-Since": long_ago}))[0] == 304

    _conditions(db, any_storage, check)


def test_if_modified_since_compares_as_not_modified_since(db, any_storage) -> None:
    """A date after Last-Modified means the client's copy is current (304); a date before, that it is not."""

    async def check(get, last_modified: datetime) -> None:
        assert await get(**{"If-Modified-Since": _http_date(last_modified + timedelta(hours=1))}) == (304, b"")
        assert await get(**{"If-Modified-Since": _http_date(last_modified)}) == (304, b"")
        assert await get(**{"If-Modified-Since": _http_date(last_modified - timedelta(hours=1))}) == (200, DATA)

    _conditions(db, any_storage, check)


LAST_MODIFIED = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@given(offset=st.integers(min_value=-10**8, max_value=10**8), tag=st.sampled_from([None, ETAG, '"other"', "*"]))
def test_a_condition_is_a_304_exactly_as_rfc_9110_orders_it(offset: int, tag: str | None) -> None:
    """If-None-Match, when sent, alone decides; else the file is not modified since any date at or
    after its Last-Modified."""
    headers = {"If-Modified-Since": _http_date(LAST_MODIFIED + timedelta(seconds=offset))}
    if tag is not None:
        headers["If-None-Match"] = tag
    expected = tag in (ETAG, "*") if tag is not None else offset >= 0
    request = make_mocked_request("GET", "/r/latest/f.txt", headers=headers)  # only its headers are read
    assert not_modified(request, ETAG, LAST_MODIFIED) is expected


#: a file sent at once from memory, and one large enough for sendfile (or several storage reads)
SIZES = pytest.mark.parametrize("repeat", [4, 1024], ids=["1 KiB, sent at once", "256 KiB, sendfile"])


@SIZES
def test_if_range_honours_the_range_only_for_this_very_file(db, any_storage, repeat) -> None:
    """If-Range names the client's copy: its strong tag, or exactly its Last-Modified (RFC 9110 13.1.5).
    Anything else (a later date, a weak tag, another tag, no date at all) sends the whole file."""
    data = bytes(range(256)) * repeat
    etag = f'"{hashlib.sha256(data).hexdigest()}"'

    async def scenario() -> None:
        await sync_files(db, any_storage, {"f.bin": data})
        async with content_server(db, any_storage) as server, aiohttp.ClientSession() as session:
            url = file_url(server, "f.bin")
            _, headers, _ = await _status(session, url)
            last_modified = parsedate_to_datetime(headers["Last-Modified"])

            async def ranged(condition: str) -> tuple[int, bytes]:
                status, _, body = await _status(session, url, Range="bytes=3-6", **{"If-Range": condition})
                return status, body

            assert await ranged(etag) == (206, data[3:7])
            assert await ranged(_http_date(last_modified)) == (206, data[3:7])
            for other in (
                _http_date(last_modified + timedelta(hours=1)),  # a later date is not this file's
                _http_date(last_modified - timedelta(hours=1)),
                f"W/{etag}",  # If-Range compares strongly
                '"another-file"',
                "not a date",
            ):
                assert await ranged(other) == (200, data), other

    asyncio.run(scenario())


@SIZES
def test_a_304_carries_the_tag_and_no_body_for_get_and_head(db, any_storage, repeat) -> None:
    """A condition met answers 304 with the ETag and Last-Modified, before any range is looked at."""
    data = bytes(range(256)) * repeat
    etag = f'"{hashlib.sha256(data).hexdigest()}"'

    async def scenario() -> None:
        await sync_files(db, any_storage, {"f.bin": data})
        async with content_server(db, any_storage) as server, aiohttp.ClientSession() as session:
            url = URL(file_url(server, "f.bin"), encoded=True)
            _, first, _ = await _status(session, str(url))
            for method in ("GET", "HEAD"):
                conditions = {"If-None-Match": etag, "Range": f"bytes={len(data) + 10}-"}
                async with session.request(method, url, headers=conditions) as response:
                    assert response.status == 304, method
                    assert response.headers["ETag"] == etag
                    assert response.headers["Last-Modified"] == first["Last-Modified"]
                    assert "Content-Range" not in response.headers and await response.read() == b""

    asyncio.run(scenario())


@SIZES
def test_if_match_and_if_unmodified_since_answer_412_in_rfc_9110_order(db, any_storage, repeat) -> None:
    """If-Match holds for ``*`` or this file's tag compared strongly, and alone decides when sent;
    without it, a date before Last-Modified in If-Unmodified-Since fails. A failed precondition is a
    412 before If-None-Match is looked at; one that holds leaves If-None-Match and If-Range their say."""
    data = bytes(range(256)) * repeat
    etag = f'"{hashlib.sha256(data).hexdigest()}"'

    async def scenario() -> None:
        await sync_files(db, any_storage, {"f.bin": data})
        async with content_server(db, any_storage) as server, aiohttp.ClientSession() as session:
            url = file_url(server, "f.bin")
            _, first, _ = await _status(session, url)
            last_modified = parsedate_to_datetime(first["Last-Modified"])
            before = _http_date(last_modified - timedelta(hours=1))
            after = _http_date(last_modified + timedelta(hours=1))

            async def get(**conditions: str) -> tuple[int, bytes]:
                status, _, body = await _status(session, url, **conditions)
                return status, body

            for holds in (etag, "*", f'"other", {etag}'):
                assert await get(**{"If-Match": holds}) == (200, data), holds
            for fails in ('"other"', f"W/{etag}", "not a tag"):
                assert await get(**{"If-Match": fails}) == (412, b""), fails
            assert await get(**{"If-Unmodified-Since": before}) == (412, b"")
            assert await get(**{"If-Unmodified-Since": _http_date(last_modified)}) == (200, data)
            assert await get(**{"If-Unmodified-Since": after}) == (200, data)
            assert await get(**{"If-Unmodified-Since": "not a date"}) == (200, data)  # ignored (13.1.4)
            # If-Match, when sent, decides alone: a matching tag overrides an earlier date
            assert await get(**{"If-Match": etag, "If-Unmodified-Since": before}) == (200, data)
            # a failed precondition wins over a 304; one that holds lets If-None-Match answer
            assert await get(**{"If-Match": '"other"', "If-None-Match": etag}) == (412, b"")
            assert await get(**{"If-Unmodified-Since": before, "If-None-Match": etag}) == (412, b"")
            assert await get(**{"If-Match": etag, "If-None-Match": etag}) == (304, b"")
            assert await get(**{"If-Unmodified-Since": after, "If-Modified-Since": after}) == (304, b"")
            ranged = {"Range": "bytes=3-6", "If-Range": etag}
            assert await get(**{"If-Match": etag, **ranged}) == (206, data[3:7])
            assert await get(**{"If-Match": '"other"', **ranged}) == (412, b"")
            async with session.head(URL(url, encoded=True), headers={"If-Match": '"other"'}) as response:
                assert response.status == 412 and response.headers["ETag"] == etag

    asyncio.run(scenario())


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_gets_412_for_a_failed_if_match_or_if_unmodified_since(db, any_storage) -> None:
    """What curl sends: ``-H "If-Match: ..."``, and ``-z -DATE`` (If-Unmodified-Since)."""

    async def curl(url: str, *options: str) -> str:
        command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *options, url]
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        return out.decode()

    async def scenario() -> None:
        await sync_files(db, any_storage, {"f.txt": DATA})
        async with content_server(db, any_storage) as server:
            url = file_url(server, "f.txt")
            assert await curl(url, "-H", f"If-Match: {ETAG}") == "200"
            assert await curl(url, "-H", 'If-Match: "other"') == "412"
            assert await curl(url, "-I", "-H", 'If-Match: "other"') == "412"
            assert await curl(url, "-z", "-Sat, 01 Jan 2000 00:00:00 GMT") == "412"
            assert await curl(url, "-z", "-Fri, 01 Jan 2100 00:00:00 GMT") == "200"

    asyncio.run(scenario())


MATCH_TAGS = st.sampled_from([None, ETAG, f"W/{ETAG}", '"other"', "*", f'"other", {ETAG}', "junk"])
OFFSETS = st.one_of(st.none(), st.integers(min_value=-(10**8), max_value=10**8))


def _strong_match(tag: str) -> bool:
    return tag in ("*", ETAG, f'"other", {ETAG}')


def _weak_match(tag: str) -> bool:
    return _strong_match(tag) or tag == f"W/{ETAG}"


@given(match=MATCH_TAGS, unmodified=OFFSETS, none_match=MATCH_TAGS, modified=OFFSETS)
def test_the_conditions_decide_as_rfc_9110_s_table(match, unmodified, none_match, modified) -> None:
    """RFC 9110 13.2.2 for a GET of an existing file: If-Match (strong), else If-Unmodified-Since, for
    a 412; then If-None-Match (weak), else If-Modified-Since, for a 304; else the file."""
    headers = {}
    for name, value in (("If-Match", match), ("If-None-Match", none_match)):
        if value is not None:
            headers[name] = value
    for name, offset in (("If-Unmodified-Since", unmodified), ("If-Modified-Since", modified)):
        if offset is not None:
            headers[name] = _http_date(LAST_MODIFIED + timedelta(seconds=offset))
    if match is not None:
        expected = None if _strong_match(match) else 412
    else:
        expected = 412 if unmodified is not None and unmodified < 0 else None
    if expected is None and none_match is not None:
        expected = 304 if _weak_match(none_match) else None
    elif expected is None and modified is not None:
        expected = 304 if modified >= 0 else None
    request = make_mocked_request("GET", "/r/latest/f.txt", headers=headers)  # only its headers are read
    assert condition_status(request, ETAG, LAST_MODIFIED) == expected


def _expected_range(spec: tuple[int | None, int | None] | None, several: bool, size: int) -> object:
    """RFC 9110 14.1.2 for one range of a ``size``-byte file: (first, last), None (ignored) or "416"."""
    if spec is None or several:
        return None
    first, last = spec
    if first is None:
        assert last is not None
        return "416" if last == 0 or size == 0 else (max(0, size - last), size - 1)
    if last is not None and last < first:
        return None
    if first >= size:
        return "416"
    return first, size - 1 if last is None else min(last, size - 1)


bounds = st.one_of(st.none(), st.integers(min_value=0, max_value=400))


@given(
    size=st.integers(min_value=0, max_value=300),
    spec=st.one_of(st.none(), st.tuples(bounds, bounds).filter(lambda s: s != (None, None))),
    several=st.booleans(),
)
def test_a_range_is_resolved_against_the_file_as_rfc_9110_says(size: int, spec, several: bool) -> None:
    """One range: clamped to the file, a 416 when it starts past it or is an empty suffix; several
    ranges, or last before first, are ignored (the whole file)."""
    headers = {}
    if spec is not None:
        one = f"{'' if spec[0] is None else spec[0]}-{'' if spec[1] is None else spec[1]}"
        headers["Range"] = f"bytes={one},0-0" if several else f"bytes={one}"
    request = make_mocked_request("GET", "/r/latest/f.bin", headers=headers)
    try:
        answer: object = byte_range(request, size)
    except Unsatisfiable:
        answer = "416"
    assert answer == _expected_range(spec, several, size)
