"""The fetcher against a real HTTP server: verification, size limits, retries, file:// URLs."""

from __future__ import annotations

import array
import asyncio
import fcntl
import hashlib
import os
import random
import termios
import threading
from pathlib import Path

import pytest

from pendingops import LocalStorage, PendingArtifact, RemoteConfig
from pendingops.download._sink import BATCH_BYTES
from pendingops.download.fetcher import DownloadError, Fetcher
from tests.remote_server import Fault, RemoteServer

DATA = b"hello artifact\n" * 100
SHA256 = hashlib.sha256(DATA).hexdigest()


def _artifact(path: str = "f.bin", data: bytes = DATA, **overrides) -> PendingArtifact:
    """An artifact of the server's file ``path``; its URL is completed once the server runs."""
    fields = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **overrides}
    return PendingArtifact(url=path, relative_path=path, **fields)


def _remote(server: RemoteServer, **settings) -> RemoteConfig:
    return RemoteConfig(url=server.manifest_url, retry_backoff=0.0, **settings)


def _stored_files(storage) -> list[Path]:
    return sorted(p for p in (storage.root / "artifacts").rglob("*") if p.is_file())


def _temp_files(storage) -> list[Path]:
    return list((storage.root / "tmp").iterdir())


def _fetch(server: RemoteServer, storage, artifact: PendingArtifact, **settings) -> None:
    async def run() -> None:
        async with server, Fetcher(_remote(server, **settings), storage) as fetcher:
            artifact.url = server.base_url + artifact.url
            await fetcher.fetch(artifact)

    asyncio.run(run())


def test_fetch_streams_verifies_and_stores(storage):
    server = RemoteServer({"f.bin": DATA})
    artifact = _artifact(digests={"md5": hashlib.md5(DATA).hexdigest()})
    _fetch(server, storage, artifact)
    assert (artifact.stored_sha256, artifact.stored_size) == (SHA256, len(DATA))
    assert artifact.stored_digests["md5"] == hashlib.md5(DATA).hexdigest()
    assert storage.local_path(storage.location_for(SHA256)).read_bytes() == DATA
    assert _temp_files(storage) == []
    assert server.requests["f.bin"] == 1


def test_fetch_without_expected_digest_records_what_arrived(storage):
    server = RemoteServer({"f.bin": DATA})
    artifact = _artifact(size=None, sha256=None)
    _fetch(server, storage, artifact)
    assert (artifact.stored_sha256, artifact.stored_size) == (SHA256, len(DATA))
    assert _stored_files(storage) == [storage.local_path(storage.location_for(SHA256))]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(truncate=True), "ClientPayloadError|expected"),
        (Fault(wrong_bytes=True), "sha256 mismatch"),
        (Fault(oversize=10), "larger than the expected"),
    ],
)
def test_a_mismatching_body_never_produces_a_stored_file(storage, fault, expected):
    server = RemoteServer({"f.bin": DATA}, faults={"f.bin": fault})
    artifact = _artifact()
    with pytest.raises(DownloadError, match=expected):
        _fetch(server, storage, artifact, retries=1)
    assert _stored_files(storage) == []
    assert _temp_files(storage) == []
    assert artifact.stored_sha256 is None and not artifact.is_stored


def test_a_wrong_secondary_digest_is_rejected(storage):
    server = RemoteServer({"f.bin": DATA})
    artifact = _artifact(digests={"sha512": hashlib.sha512(b"other").hexdigest()})
    with pytest.raises(DownloadError, match="sha512 mismatch"):
        _fetch(server, storage, artifact, retries=0)
    assert _stored_files(storage) == [] and _temp_files(storage) == []


def test_a_wrong_size_with_right_digest_is_rejected(storage):
    server = RemoteServer({"f.bin": DATA})
    artifact = _artifact(size=len(DATA) + 1)
    with pytest.raises(DownloadError, match=f"got {len(DATA)} bytes, expected {len(DATA) + 1}"):
        _fetch(server, storage, artifact, retries=0)
    assert _stored_files(storage) == [] and _temp_files(storage) == []


def test_an_endless_body_is_cut_off_at_the_expected_size(storage):
    server = RemoteServer({"f.bin": DATA}, faults={"f.bin": Fault(endless=True)})
    artifact = _artifact()
    with pytest.raises(DownloadError, match="larger than the expected"):
        _fetch(server, storage, artifact, retries=3)
    # The fetcher hung up (the server stopped writing) and did not retry what cannot get better.
    assert server.requests["f.bin"] == 1
    assert server.bytes_sent["f.bin"] < 64 * 2**20
    assert _stored_files(storage) == [] and _temp_files(storage) == []


def test_retries_on_5xx_then_succeeds(storage):
    server = RemoteServer({"f.bin": DATA}, faults={"f.bin": Fault(status=503, times=2)})
    artifact = _artifact()
    _fetch(server, storage, artifact, retries=3)
    assert server.requests["f.bin"] == 3
    assert artifact.stored_sha256 == SHA256
    assert _stored_files(storage) == [storage.local_path(storage.location_for(SHA256))]


def test_retries_are_bounded(storage):
    server = RemoteServer({"f.bin": DATA}, faults={"f.bin": Fault(status=500)})
    with pytest.raises(DownloadError, match=r"HTTP 500.*after 3 attempts"):
        _fetch(server, storage, _artifact(), retries=2)
    assert server.requests["f.bin"] == 3


def test_a_retried_truncation_starts_a_fresh_file(storage):
    server = RemoteServer({"f.bin": DATA}, faults={"f.bin": Fault(truncate=True, times=1)})
    artifact = _artifact()
    _fetch(server, storage, artifact, retries=1)
    assert server.requests["f.bin"] == 2
    assert storage.local_path(storage.location_for(SHA256)).read_bytes() == DATA
    assert _temp_files(storage) == []


@pytest.mark.parametrize("status", [404, 403, 401])
def test_no_retry_on_client_errors(storage, status):
    server = RemoteServer({"f.bin": DATA}, faults={"f.bin": Fault(status=status)})
    with pytest.raises(DownloadError, match=f"HTTP {status}"):
        _fetch(server, storage, _artifact(), retries=5)
    assert server.requests["f.bin"] == 1


def test_missing_file_is_404_without_retry(storage):
    server = RemoteServer({})
    with pytest.raises(DownloadError, match="HTTP 404"):
        _fetch(server, storage, _artifact("missing.bin"), retries=5)
    assert server.requests["missing.bin"] == 1


def test_an_already_stored_file_is_adopted_without_a_request(storage):
    temp = storage.new_temp_path()
    temp.write_bytes(DATA)
    storage.put(temp, SHA256)
    server = RemoteServer({"f.bin": DATA})
    artifact = _artifact()
    _fetch(server, storage, artifact)
    assert server.requests["f.bin"] == 0
    assert (artifact.stored_sha256, artifact.stored_size) == (SHA256, len(DATA))


def test_a_corrupt_stored_file_is_not_adopted(storage):
    location = storage.location_for(SHA256)
    path = storage.local_path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"corrupted")
    server = RemoteServer({"f.bin": DATA})
    _fetch(server, storage, _artifact())
    assert server.requests["f.bin"] == 1
    assert path.read_bytes() == DATA


def test_concurrent_fetches_of_one_digest_download_it_once(storage):
    server = RemoteServer({"a.bin": DATA, "b.bin": DATA, "c.bin": DATA}, delay=0.05)
    artifacts = [_artifact(name) for name in ("a.bin", "b.bin", "c.bin")]

    async def run() -> None:
        async with server, Fetcher(_remote(server), storage) as fetcher:
            for artifact in artifacts:
                artifact.url = server.base_url + artifact.url
            await asyncio.gather(*(fetcher.fetch(a) for a in artifacts))

    asyncio.run(run())
    assert server.file_requests() == 1
    assert all(a.stored_sha256 == SHA256 for a in artifacts)


def test_file_urls(storage, tmp_path):
    source = tmp_path / "remote dir" / "f.bin"
    source.parent.mkdir()
    source.write_bytes(DATA)
    artifact = PendingArtifact(url=source.as_uri(), relative_path="f.bin", size=len(DATA), sha256=SHA256)

    async def run(artifact: PendingArtifact) -> None:
        async with Fetcher(RemoteConfig(url=source.parent.as_uri() + "/", retries=0), storage) as fetcher:
            await fetcher.fetch(artifact)

    asyncio.run(run(artifact))
    assert storage.local_path(storage.location_for(SHA256)).read_bytes() == DATA
    assert source.read_bytes() == DATA  # the remote's own file is only read

    missing = PendingArtifact(url=(source.parent / "nope.bin").as_uri(), relative_path="nope.bin")
    with pytest.raises(DownloadError, match="No such file"):
        asyncio.run(run(missing))
    wrong = PendingArtifact(url=source.as_uri(), relative_path="f.bin", sha256=hashlib.sha256(b"x").hexdigest())
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        asyncio.run(run(wrong))
    assert _temp_files(storage) == []


def test_unsupported_scheme(storage):
    artifact = PendingArtifact(url="ftp://example.invalid/f.bin", relative_path="f.bin")

    async def run() -> None:
        async with Fetcher(RemoteConfig(url="ftp://example.invalid/"), storage) as fetcher:
            await fetcher.fetch(artifact)

    with pytest.raises(DownloadError, match="unsupported URL scheme 'ftp'"):
        asyncio.run(run())


def test_fetch_file_refuses_more_than_max_size(tmp_path, storage):
    server = RemoteServer({"big": b"x" * 1000})
    dest = tmp_path / "out"

    async def run(limit: int) -> int:
        async with server, Fetcher(_remote(server), storage) as fetcher:
            return await fetcher.fetch_file(server.base_url + "big", dest, max_size=limit)

    assert asyncio.run(run(1000)) == 1000 and dest.read_bytes() == b"x" * 1000
    with pytest.raises(DownloadError, match="larger than 999 bytes"):
        asyncio.run(run(999))


def _leave_in_storage(storage, data: bytes) -> Path:
    """Put ``data`` where an interrupted run would have left it: in storage under its sha256."""
    temp = storage.new_temp_path()
    temp.write_bytes(data)
    storage.put(temp, hashlib.sha256(data).hexdigest())
    return storage.local_path(storage.location_for(hashlib.sha256(data).hexdigest()))


def test_a_leftover_file_is_checked_against_every_declared_digest(storage):
    """A leftover file with the right sha256 but a wrong declared md5 is not adopted: the download that
    follows fails with "md5 mismatch", as a fresh download of the same bytes does."""
    _leave_in_storage(storage, DATA)
    server = RemoteServer({"f.bin": DATA})
    artifact = _artifact(digests={"md5": hashlib.md5(b"other bytes").hexdigest()})
    with pytest.raises(DownloadError, match="md5 mismatch"):
        _fetch(server, storage, artifact, retries=0)
    assert server.requests["f.bin"] == 1  # not adopted: fetched, and refused for the same reason
    assert not artifact.is_stored and artifact.stored_digests == {}
    assert _temp_files(storage) == []

    right = _artifact(digests={"md5": hashlib.md5(DATA).hexdigest()})
    again = RemoteServer({"f.bin": DATA})
    _fetch(again, storage, right, retries=0)
    assert again.requests["f.bin"] == 0  # with the right md5 the same leftover file is adopted
    assert right.stored_digests == {"md5": hashlib.md5(DATA).hexdigest()}


def test_a_leftover_file_of_the_right_size_with_other_bytes_is_replaced(storage):
    """A leftover file at the artifact's location, as long as the artifact but with other bytes (a bit
    flipped on disk), is not adopted: the file is downloaded again and replaces it."""
    path = _leave_in_storage(storage, DATA)
    path.write_bytes(bytes([DATA[0] ^ 1]) + DATA[1:])
    server = RemoteServer({"f.bin": DATA})
    artifact = _artifact()
    _fetch(server, storage, artifact, retries=0)
    assert server.requests["f.bin"] == 1
    assert path.read_bytes() == DATA
    assert (artifact.stored_sha256, artifact.stored_size) == (SHA256, len(DATA))


def test_an_oversized_manifest_is_requested_once(tmp_path, storage):
    """A manifest or index larger than its limit cannot get smaller by asking again: one request,
    with retries to spare."""
    server = RemoteServer({"index": b"x" * 5000})
    dest = tmp_path / "index"

    async def run() -> int:
        async with server, Fetcher(_remote(server, retries=3), storage) as fetcher:
            return await fetcher.fetch_file(server.base_url + "index", dest, max_size=4096)

    with pytest.raises(DownloadError, match="larger than 4096 bytes") as caught:
        asyncio.run(run())
    assert "attempts" not in str(caught.value)
    assert server.requests["index"] == 1


#: a body of many chunks and batches, not a whole number of either
LARGE = random.Random(7).randbytes(5 * BATCH_BYTES + 12345)


def test_a_large_file_in_many_chunks_is_stored_byte_identically(storage):
    server = RemoteServer({"big.bin": LARGE})
    expected = {"md5": hashlib.md5(LARGE).hexdigest(), "sha512": hashlib.sha512(LARGE).hexdigest()}
    artifact = _artifact("big.bin", LARGE, digests=expected)
    _fetch(server, storage, artifact)
    sha256 = hashlib.sha256(LARGE).hexdigest()
    assert (artifact.stored_sha256, artifact.stored_size) == (sha256, len(LARGE))
    assert {name: artifact.stored_digests[name] for name in expected} == expected
    assert storage.local_path(storage.location_for(sha256)).read_bytes() == LARGE
    assert _temp_files(storage) == []


def test_a_large_file_differing_in_its_last_byte_stores_nothing(storage):
    server = RemoteServer({"big.bin": LARGE})
    declared = LARGE[:-1] + bytes([(LARGE[-1] + 1) % 256])
    artifact = _artifact("big.bin", declared)
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        _fetch(server, storage, artifact, retries=1)
    assert server.requests["big.bin"] == 2
    assert _stored_files(storage) == [] and _temp_files(storage) == []
    assert not artifact.is_stored


@pytest.mark.parametrize("fault", [Fault(oversize=3 * BATCH_BYTES), Fault(endless=True)])
def test_a_large_body_longer_than_declared_is_cut_off(storage, fault):
    server = RemoteServer({"big.bin": LARGE}, faults={"big.bin": fault})
    artifact = _artifact("big.bin", LARGE)
    with pytest.raises(DownloadError, match="larger than the expected"):
        _fetch(server, storage, artifact, retries=3)
    assert server.requests["big.bin"] == 1
    assert server.bytes_sent["big.bin"] < 64 * 2**20  # the endless body: the fetcher hung up
    assert _stored_files(storage) == [] and _temp_files(storage) == []


class _PipeStorage(LocalStorage):
    """Local storage whose temporary file is a pipe nobody reads until ``release`` is set.

    A write to it blocks once the pipe is full, as a write to a saturated disk does. A thread
    collects what went through once released, or after a minute if nothing released it.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()
        self.released_by_test = False
        self.received = bytearray()
        self._reader_fd: int | None = None  # while the reader has the pipe open
        self._reader_lock = threading.Lock()

    def new_temp_path(self) -> Path:
        path = super().new_temp_path()
        os.mkfifo(path)
        threading.Thread(target=self._read, args=(path,), daemon=True).start()
        return path

    def pipe_is_full(self) -> bool:
        with self._reader_lock:
            if self._reader_fd is None:
                return False
            queued = array.array("i", [0])
            fcntl.ioctl(self._reader_fd, termios.FIONREAD, queued)
            return queued[0] >= fcntl.fcntl(self._reader_fd, fcntl.F_GETPIPE_SZ)

    def _read(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)  # waits for the fetcher to open it for writing
        with self._reader_lock:
            self._reader_fd = fd
        self.released_by_test = self.release.wait(timeout=60)
        while chunk := os.read(fd, 1 << 16):
            self.received += chunk
        with self._reader_lock:
            os.close(fd)
            self._reader_fd = None


def test_the_loop_runs_while_a_large_file_write_is_blocked(tmp_path):
    """Chunks of a large body are written off the event loop: a full pipe blocks the write, not the loop.

    The test's own coroutine, on the fetcher's loop, sees the pipe fill up and only then lets the
    reader drain it. Were the bytes written on the loop, that coroutine could not run until the
    reader gave up waiting for it.
    """
    storage = _PipeStorage(tmp_path / "storage")
    server = RemoteServer({"big.bin": LARGE})
    artifact = _artifact("big.bin", LARGE)

    async def run() -> None:
        async with server, Fetcher(_remote(server), storage) as fetcher:
            artifact.url = server.base_url + artifact.url
            fetching = asyncio.create_task(fetcher.fetch(artifact))
            while not storage.pipe_is_full():
                assert not fetching.done(), fetching
                await asyncio.sleep(0.001)
            storage.release.set()
            await fetching

    asyncio.run(run())
    assert storage.released_by_test
    assert bytes(storage.received) == LARGE
    assert artifact.stored_sha256 == hashlib.sha256(LARGE).hexdigest()
