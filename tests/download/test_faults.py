"""Downloads under faults: a real server misbehaving, seen through whole syncs on both databases.

Each test injects one fault on one file (or on the manifest), syncs with ``on_error="skip"`` and
checks what the program did: which units failed and why, how many requests the server saw (so
retries are counted, not guessed), what was stored, and that no temporary file is left behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import re
import socket
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pendingops import Database, LocalStorage, PendingArtifact, RemoteConfig, SyncFailed, sync_remote
from pendingops.context import SyncResult
from pendingops.db.schema import Artifact
from pendingops.download.fetcher import DownloadError, Fetcher
from pendingops.plugins.file import FilePlugin, ManifestError
from tests.conftest import (
    assert_artifacts_intact,
    assert_no_duplicate_rows,
    failed_paths,
    file_set,
    version_content,
    version_numbers,
)
from tests.remote_server import HTML_PAGE, Fault, RemoteServer

#: larger than the HTML page a misconfigured server sends instead
BIG = "big.bin"
#: smaller than that page
SMALL = "small.bin"
FILES: dict[str, bytes] = {
    BIG: bytes(range(256)) * 4,
    SMALL: b"forty bytes of a small file, exactly.\n\n",
    **{f"ok/{i}.bin": f"healthy file {i}\n".encode() * 8 for i in range(3)},
}
assert len(FILES[SMALL]) < len(HTML_PAGE) < len(FILES[BIG])

#: small timeouts keep faulty transfers short; no backoff worth waiting for
#: far above what a healthy answer takes on a loaded machine; stalls and drips meant to trip it last
#: until the client hangs up, so only the timeout ends them
SETTINGS: dict[str, Any] = {"read_timeout": 1.0, "retries": 2, "retry_backoff": 0.01}
#: the read timeout is 0.2 s: these are well past it
STALL = math.inf
DRIP = math.inf


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remote(server: RemoteServer, **settings: Any) -> RemoteConfig:
    return RemoteConfig(url=server.manifest_url, **(SETTINGS | settings))


async def _sync(server: RemoteServer, db: Database, storage: LocalStorage, **settings: Any) -> SyncResult:
    return await sync_remote(
        FilePlugin(), _remote(server, **settings), db=db, storage=storage, repository="r", on_error="skip"
    )


def _run(
    db: Database, storage: LocalStorage, faults: dict[str, Fault], **settings: Any
) -> tuple[SyncResult, RemoteServer, float]:
    """Sync FILES with ``faults``; return the result, the server (for its counters) and the time taken."""
    server = RemoteServer(dict(FILES), faults=_fresh(faults))

    async def scenario() -> tuple[SyncResult, float]:
        async with server:
            started = time.monotonic()
            result = await _sync(server, db, storage, **settings)
            return result, time.monotonic() - started

    result, elapsed = asyncio.run(scenario())
    return result, server, elapsed


def _fresh(faults: dict[str, Fault]) -> dict[str, Fault]:
    """Copies: the server counts a fault's ``times`` down, and parameters are shared between databases."""
    return {path: dataclasses.replace(fault) for path, fault in faults.items()}


def _artifact_digests(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(select(Artifact.__table__.c.sha256)).scalars())


def _stored_digests(storage: LocalStorage) -> set[str]:
    return {p.parent.name + p.name for p in (storage.root / "artifacts").rglob("*") if p.is_file()}


def _temp_entries(storage: LocalStorage) -> list[Path]:
    return list((storage.root / "tmp").iterdir())


def _reason(result: SyncResult, path: str) -> str:
    [reason] = [f.reason for f in result.failures if failed_paths([f]) == [path]]
    return reason


def assert_outcome(db: Database, storage: LocalStorage, result: SyncResult, failed: set[str]) -> None:
    """Exactly ``failed`` failed; everything else is in the version, stored, intact; nothing else is."""
    succeeded = {path: data for path, data in FILES.items() if path not in failed}
    assert sorted(failed_paths(result.failures)) == sorted(failed)
    assert result.failed_count == len(failed)
    assert all(f.stage == "download" for f in result.failures)
    assert version_content(db, "r") == file_set(succeeded)
    # A failed transfer leaves no Artifact row and no file, not even a temporary one.
    assert _artifact_digests(db) == {_sha(data) for data in succeeded.values()}
    assert _stored_digests(storage) == {_sha(data) for data in succeeded.values()}
    assert _temp_entries(storage) == []
    assert_artifacts_intact(db, storage)
    assert_no_duplicate_rows(db)


def assert_others_fetched_once(server: RemoteServer, *faulty: str) -> None:
    assert all(server.requests[path] == 1 for path in FILES if path not in faulty)
    assert server.requests["PULP_MANIFEST"] == 1


# -- faults that retries get past ------------------------------------------------------------------

HEALING = {
    "HTTP 500": (BIG, Fault(status=500, times=2)),
    "HTTP 502": (BIG, Fault(status=502, times=2)),
    "HTTP 503": (BIG, Fault(status=503, times=2)),
    "HTTP 504": (BIG, Fault(status=504, times=2)),
    "HTTP 429": (BIG, Fault(status=429, times=2)),
    "HTTP 408": (BIG, Fault(status=408, times=2)),
    "connection reset mid-body": (BIG, Fault(reset=True, times=2)),
    "short body": (BIG, Fault(truncate=True, times=2)),
    "stalled before the body": (BIG, Fault(stall=STALL, times=2)),
    "dripping body": (BIG, Fault(drip=DRIP, times=2)),
    "wrong bytes": (BIG, Fault(wrong_bytes=True, times=2)),
    "HTML page shorter than the file": (BIG, Fault(html=True, times=2)),
}


@pytest.mark.parametrize(("path", "fault"), list(HEALING.values()), ids=list(HEALING))
def test_transient_faults_are_retried_until_the_file_arrives(
    db: Database, storage: LocalStorage, path: str, fault: Fault
) -> None:
    result, server, _ = _run(db, storage, {path: fault})
    assert server.requests[path] == 3  # two faults, then the file
    assert_others_fetched_once(server, path)
    assert result.created and result.added == len(FILES)
    assert_outcome(db, storage, result, failed=set())


# -- the same faults when they do not heal -----------------------------------------------------------

LASTING = {
    "HTTP 500": (Fault(status=500), r"HTTP 500 Internal Server Error"),
    "HTTP 503": (Fault(status=503), r"HTTP 503 Service Unavailable"),
    "HTTP 429": (Fault(status=429), r"HTTP 429 Too Many Requests"),
    "connection reset mid-body": (Fault(reset=True), r"(not completed|reset by peer|Disconnected)"),
    "short body": (Fault(truncate=True), r"ClientPayloadError: Response payload is not completed"),
    "stalled before the body": (Fault(stall=STALL), r"timed out \(no data for read_timeout=1 s\)"),
    "dripping body": (Fault(drip=DRIP), r"timed out \(no data for read_timeout=1 s\)"),
    "wrong bytes": (Fault(wrong_bytes=True), rf"sha256 mismatch \(expected {_sha(FILES[BIG])}, got [0-9a-f]{{64}}\)"),
    "HTML page shorter than the file": (Fault(html=True), rf"got {len(HTML_PAGE)} bytes, expected {len(FILES[BIG])}"),
}


@pytest.mark.parametrize(("fault", "reason"), list(LASTING.values()), ids=list(LASTING))
def test_lasting_transient_faults_fail_the_unit_after_the_retries(
    db: Database, storage: LocalStorage, fault: Fault, reason: str
) -> None:
    result, server, _ = _run(db, storage, {BIG: fault})
    assert server.requests[BIG] == 3  # the first try and two retries, no more
    assert_others_fetched_once(server, BIG)
    text = _reason(result, BIG)
    assert text.startswith(f"{server.base_url}{BIG}: ")
    assert re.search(reason, text), text
    assert text.endswith("(after 3 attempts)")
    assert_outcome(db, storage, result, failed={BIG})


# -- faults retrying cannot fix --------------------------------------------------------------------

HOPELESS = {
    "HTTP 404": (BIG, Fault(status=404), r"HTTP 404 Not Found"),
    "HTTP 403": (BIG, Fault(status=403), r"HTTP 403 Forbidden"),
    "HTTP 401": (BIG, Fault(status=401), r"HTTP 401 Unauthorized"),
    "HTTP 410": (BIG, Fault(status=410), r"HTTP 410 Gone"),
    "HTTP 404 with Retry-After": (BIG, Fault(status=404, retry_after=30), r"HTTP 404 Not Found"),
    "oversized body": (BIG, Fault(oversize=1_000_000), rf"body is larger than the expected {len(FILES[BIG])} bytes"),
    "HTML page longer than the file": (
        SMALL,
        Fault(html=True),
        rf"body is larger than the expected {len(FILES[SMALL])} bytes",
    ),
}


@pytest.mark.parametrize(("path", "fault", "reason"), list(HOPELESS.values()), ids=list(HOPELESS))
def test_hopeless_faults_fail_the_unit_at_once(
    db: Database, storage: LocalStorage, path: str, fault: Fault, reason: str
) -> None:
    result, server, _ = _run(db, storage, {path: fault}, retries=3)
    assert server.requests[path] == 1  # not retried, even with retries to spare
    assert_others_fetched_once(server, path)
    assert re.fullmatch(rf"{re.escape(server.base_url + path)}: {reason}", _reason(result, path))
    assert_outcome(db, storage, result, failed={path})


def test_an_endless_oversized_body_is_cut_off_and_leaves_nothing(db: Database, storage: LocalStorage) -> None:
    result, server, _ = _run(db, storage, {BIG: Fault(endless=True)}, retries=3)
    assert server.requests[BIG] == 1
    assert server.bytes_sent[BIG] < 64 * 2**20  # the fetcher hung up; the disk did not fill
    assert "body is larger than the expected" in _reason(result, BIG)
    assert_outcome(db, storage, result, failed={BIG})


def test_a_redirect_loop_fails_the_unit_with_a_clear_reason(db: Database, storage: LocalStorage) -> None:
    result, server, _ = _run(db, storage, {BIG: Fault(redirect_loop=True)}, retries=3)
    assert _reason(result, BIG) == f"{server.base_url}{BIG}: too many redirects"
    # The client's redirect limit ends the loop, and the loop is not retried (that would be 4 times as many).
    assert 1 < server.requests[BIG] <= 11
    assert_others_fetched_once(server, BIG)
    assert_outcome(db, storage, result, failed={BIG})


def test_a_redirect_to_a_healed_url_is_followed(db: Database, storage: LocalStorage) -> None:
    result, server, _ = _run(db, storage, {BIG: Fault(redirect_loop=True, times=3)}, retries=0)
    assert server.requests[BIG] == 4  # three redirects, then the file, in one attempt
    assert_outcome(db, storage, result, failed=set())


# -- timeouts --------------------------------------------------------------------------------------


def test_a_body_dripping_within_the_read_timeout_is_not_cut(db: Database, storage: LocalStorage) -> None:
    # 16 writes 0.1 s apart: the whole body takes longer than the read timeout, each read does not.
    result, server, elapsed = _run(db, storage, {BIG: Fault(drip=0.1, drip_size=64)}, retries=0)
    assert server.requests[BIG] == 1
    assert elapsed >= 15 * 0.1 > SETTINGS["read_timeout"]  # lower bound: the body really was slow
    assert_outcome(db, storage, result, failed=set())


def test_the_total_timeout_cuts_a_body_that_keeps_dripping(db: Database, storage: LocalStorage) -> None:
    result, server, _ = _run(db, storage, {BIG: Fault(drip=0.05, drip_size=64)}, retries=1, total_timeout=0.3)
    assert server.requests[BIG] == 2
    assert _reason(result, BIG) == f"{server.base_url}{BIG}: timed out (total_timeout=0.3 s) (after 2 attempts)"
    assert_outcome(db, storage, result, failed={BIG})


def test_under_the_fail_policy_a_stalled_body_fails_the_sync(db: Database, storage: LocalStorage) -> None:
    async def scenario() -> RemoteServer:
        async with RemoteServer(dict(FILES), faults={BIG: Fault(stall=STALL)}) as server:
            remote = _remote(server, retries=1)
            timed_out = r"timed out \(no data for read_timeout=1 s\) \(after 2 attempts\)"
            reason = rf"file {BIG}, .*download failed: .*{timed_out}"
            with pytest.raises(SyncFailed, match=reason):
                await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")
            return server

    server = asyncio.run(scenario())
    assert server.requests[BIG] == 2
    assert version_numbers(db, "r") == [0]
    assert _sha(FILES[BIG]) not in _stored_digests(storage) | _artifact_digests(db)
    assert _temp_entries(storage) == []


# -- Retry-After -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(db: Database, storage: LocalStorage, status: int) -> None:
    fault = Fault(status=status, retry_after=1, times=1)
    result, server, elapsed = _run(db, storage, {BIG: fault}, retries=1)
    assert server.requests[BIG] == 2
    first, second = server.request_times[BIG]
    assert second - first >= 1.0  # the server asked for a second; the backoff alone is 0.01 s
    assert elapsed >= 1.0
    assert_outcome(db, storage, result, failed=set())


def test_retry_after_does_not_add_retries(db: Database, storage: LocalStorage) -> None:
    result, server, _ = _run(db, storage, {BIG: Fault(status=429, retry_after=0.3)}, retries=1)
    assert server.requests[BIG] == 2
    first, second = server.request_times[BIG]
    assert second - first >= 0.3
    assert _reason(result, BIG) == f"{server.base_url}{BIG}: HTTP 429 Too Many Requests (after 2 attempts)"
    assert_outcome(db, storage, result, failed={BIG})


def test_retry_after_as_an_http_date(storage: LocalStorage) -> None:
    data = FILES[BIG]
    # Whole seconds only: three seconds from now is at least two from when the server answers.
    fault = Fault(status=503, retry_after=formatdate(time.time() + 3, usegmt=True), times=1)

    async def scenario() -> RemoteServer:
        async with RemoteServer({BIG: data}, faults={BIG: fault}) as server:
            artifact = PendingArtifact(server.base_url + BIG, BIG, size=len(data), sha256=_sha(data))
            async with Fetcher(_remote(server, retries=1), storage) as fetcher:
                await fetcher.fetch(artifact)
            assert artifact.stored_sha256 == _sha(data)
            return server

    server = asyncio.run(scenario())
    first, second = server.request_times[BIG]
    assert server.requests[BIG] == 2 and second - first >= 1.0


# -- connection errors -----------------------------------------------------------------------------


def test_connections_closed_before_an_answer_are_retried(storage: LocalStorage) -> None:
    accepted = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.readline()  # the request line arrived; close without answering
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/f.bin"
        try:
            async with Fetcher(RemoteConfig(url=url, retries=2, retry_backoff=0.01), storage) as fetcher:
                with pytest.raises(DownloadError, match=r"ServerDisconnectedError.*\(after 3 attempts\)$"):
                    await fetcher.fetch(PendingArtifact(url, "f.bin", size=3, sha256=_sha(b"abc")))
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
    # Three attempts; the HTTP client itself may resend an idempotent request once when the
    # connection closes before any answer, so each attempt is one or two connections.
    assert accepted in (3, 6)
    assert _temp_entries(storage) == []


def test_a_refused_connection_is_retried(storage: LocalStorage) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f.bin"

    async def scenario() -> None:
        async with Fetcher(RemoteConfig(url=url, retries=1, retry_backoff=0.01), storage) as fetcher:
            await fetcher.fetch(PendingArtifact(url, "f.bin", size=3, sha256=_sha(b"abc")))

    with pytest.raises(DownloadError, match=r"ClientConnectorError: .*\(after 2 attempts\)$"):
        asyncio.run(scenario())
    assert _temp_entries(storage) == []


# -- every fault in one sync, then a rerun once the remote is healed --------------------------------


def test_every_fault_at_once_then_a_rerun_against_the_healed_remote(db: Database, storage: LocalStorage) -> None:
    files = {f"f{i:02d}.bin": f"file {i:02d}\n".encode() * 120 for i in range(14)}
    size = len(files["f00.bin"])
    faults = {
        "f00.bin": Fault(status=404),
        "f01.bin": Fault(status=403),
        "f02.bin": Fault(status=503),
        "f03.bin": Fault(status=429, retry_after=0),
        "f04.bin": Fault(reset=True),
        "f05.bin": Fault(truncate=True),
        "f06.bin": Fault(stall=STALL),
        "f07.bin": Fault(drip=DRIP),
        "f08.bin": Fault(wrong_bytes=True),
        "f09.bin": Fault(oversize=100),
        "f10.bin": Fault(redirect_loop=True),
        "f11.bin": Fault(html=True),
        "f12.bin": Fault(status=500, times=1),  # heals on the retry
    }
    reasons = {
        "f00.bin": r"HTTP 404 Not Found",
        "f01.bin": r"HTTP 403 Forbidden",
        "f02.bin": r"HTTP 503 Service Unavailable \(after 2 attempts\)",
        "f03.bin": r"HTTP 429 Too Many Requests \(after 2 attempts\)",
        "f04.bin": r".*\(after 2 attempts\)",
        "f05.bin": r"ClientPayloadError: .*\(after 2 attempts\)",
        "f06.bin": r"timed out \(.+\) \(after 2 attempts\)",
        "f07.bin": r"timed out \(.+\) \(after 2 attempts\)",
        "f08.bin": r"sha256 mismatch .*\(after 2 attempts\)",
        "f09.bin": rf"body is larger than the expected {size} bytes",
        "f10.bin": r"too many redirects",
        "f11.bin": rf"got {len(HTML_PAGE)} bytes, expected {size} \(after 2 attempts\)",
    }

    async def scenario() -> tuple[SyncResult, SyncResult, RemoteServer, dict[str, int]]:
        async with RemoteServer(dict(files), faults=faults) as server:
            first = await _sync(server, db, storage, retries=1)
            after_first = dict(server.requests)
            server.faults = {}
            second = await _sync(server, db, storage, retries=1)
            return first, second, server, after_first

    first, second, server, after_first = asyncio.run(scenario())
    reported = {path: _reason(first, path) for path in failed_paths(first.failures)}
    assert set(reported) == set(reasons)
    for path, reason in reasons.items():
        assert re.fullmatch(rf"{re.escape(server.base_url + path)}: {reason}", reported[path]), reported[path]
    assert version_content(db, "r", first.version.number) == file_set({p: files[p] for p in ("f12.bin", "f13.bin")})
    # No retry storm: one request per attempt (a redirect loop is one attempt of many requests).
    expected_requests = {"f00.bin": 1, "f01.bin": 1, "f09.bin": 1, "f13.bin": 1}
    for path in files:
        if path != "f10.bin":
            assert after_first[path] == expected_requests.get(path, 2), path
    assert_artifacts_intact(db, storage)

    # The rerun fetches the failed files only, once each, and the version is complete.
    assert second.failed_count == 0 and second.added == len(reasons)
    assert version_content(db, "r") == file_set(files)
    assert all(server.requests[path] - after_first[path] == (path in reasons) for path in files)
    assert_artifacts_intact(db, storage)
    assert_no_duplicate_rows(db)


# -- the manifest itself under faults --------------------------------------------------------------


def _sync_with_manifest_fault(db: Database, storage: LocalStorage, fault: Fault) -> tuple[Any, RemoteServer]:
    """Sync FILES with ``fault`` on the manifest; return the result or the exception raised."""
    server = RemoteServer(dict(FILES), faults=_fresh({"PULP_MANIFEST": fault}))

    async def scenario() -> Any:
        async with server:
            try:
                return await _sync(server, db, storage)
            except (DownloadError, ManifestError, SyncFailed) as exc:
                return exc

    return asyncio.run(scenario()), server


@pytest.mark.parametrize(
    ("fault", "requests", "error", "message"),
    [
        (Fault(stall=STALL), 3, DownloadError, r"PULP_MANIFEST: timed out \(.+\) \(after 3 attempts\)"),
        (Fault(drip=DRIP), 3, DownloadError, r"PULP_MANIFEST: timed out \(.+\) \(after 3 attempts\)"),
        (Fault(status=404), 1, DownloadError, r"PULP_MANIFEST: HTTP 404 Not Found"),
        (Fault(redirect_loop=True), None, DownloadError, r"PULP_MANIFEST: too many redirects"),
        (Fault(html=True), 1, ManifestError, r"line 1: this is an HTML page, not a PULP_MANIFEST"),
    ],
    ids=["stall", "drip", "404", "redirect loop", "html"],
)
def test_a_faulty_manifest_fails_the_sync_before_anything_is_written(
    db: Database, storage: LocalStorage, fault: Fault, requests: int | None, error: type, message: str
) -> None:
    outcome, server = _sync_with_manifest_fault(db, storage, fault)
    assert isinstance(outcome, error), outcome
    assert re.search(message, str(outcome)), str(outcome)
    if requests is not None:
        assert server.requests["PULP_MANIFEST"] == requests
    assert server.file_requests() == 0
    assert version_numbers(db, "r") == [0]
    assert _artifact_digests(db) == set() and _stored_digests(storage) == set()
    assert _temp_entries(storage) == []  # the work folder with the partial manifest is gone


@pytest.mark.parametrize(
    "fault",
    [Fault(reset=True, times=2), Fault(status=503, retry_after=0.2, times=1), Fault(truncate=True, times=1)],
    ids=["reset", "503 with Retry-After", "short body"],
)
def test_a_manifest_fault_that_heals_is_retried(db: Database, storage: LocalStorage, fault: Fault) -> None:
    assert fault.times is not None
    attempts = fault.times + 1
    outcome, server = _sync_with_manifest_fault(db, storage, fault)
    assert isinstance(outcome, SyncResult), outcome
    assert server.requests["PULP_MANIFEST"] == attempts
    assert_outcome(db, storage, outcome, failed=set())
