"""What a remote sends costs bounded disk and time (guarantee 4), on SQLite and PostgreSQL.

A download of undeclared size is cut off at ``max_file_size`` (the plugin's default unless the
remote sets one); a declared size above it is refused unread; a transfer still running after
``connect_timeout + read_timeout`` must average ``min_rate`` bytes/s; response headers must arrive
within that time too, however slowly they trickle.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from pendingops import Database, LocalStorage, RemoteConfig, SyncResult, sync_remote
from pendingops.download.fetcher import DownloadError, Fetcher
from pendingops.plugins.cookbook import CookbookPlugin
from pendingops.plugins.file import FilePlugin
from tests.plugins.cookbook_server import CookbookServer, cookbook
from tests.remote_server import Fault, RemoteServer

LIMIT = 64 * 1024


class SmallCookbooks(CookbookPlugin):
    """The cookbook plugin with a lower default cap, so a test need not send 256 MiB."""

    max_file_size = LIMIT


def _nothing_kept(storage: LocalStorage) -> None:
    assert [p for p in (storage.root / "artifacts").rglob("*") if p.is_file()] == []
    assert list((storage.root / "tmp").iterdir()) == []


@pytest.mark.parametrize("where", ["plugin default", "remote setting"])
def test_an_endless_body_of_undeclared_size_is_cut_off_at_max_file_size(
    db: Database, storage: LocalStorage, where: str
) -> None:
    offered = dict([cookbook("endless", "1.0.0")])
    plugin = SmallCookbooks() if where == "plugin default" else CookbookPlugin()
    settings = {} if where == "plugin default" else {"max_file_size": LIMIT}

    async def scenario() -> tuple[SyncResult, RemoteServer]:
        async with RemoteServer({"zeros.tar.gz": b""}, faults={"zeros.tar.gz": Fault(endless=True)}) as other:
            offered[("endless", "1.0.0")].download_url = other.base_url + "zeros.tar.gz"
            async with CookbookServer(offered) as server:
                # the tarball lies on a second loopback server
                remote = RemoteConfig(url=server.base_url, retries=0, allow_private_destinations=True, **settings)
                result = await sync_remote(plugin, remote, db=db, storage=storage, repository="r", on_error="skip")
                return result, other

    result, other = asyncio.run(scenario())
    [failure] = result.failures
    assert failure.reason == f"{other.base_url}zeros.tar.gz: body is larger than max_file_size={LIMIT} bytes"
    assert other.bytes_sent["zeros.tar.gz"] < 64 * 2**20  # the fetcher hung up; the disk did not fill
    _nothing_kept(storage)


def test_a_declared_size_over_max_file_size_is_refused_unread(db: Database, storage: LocalStorage) -> None:
    files = {"small.bin": b"s" * 100, "large.bin": b"L" * (LIMIT + 1)}

    async def scenario() -> tuple[SyncResult, RemoteServer]:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url, max_file_size=LIMIT)
            result = await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", on_error="skip")
            return result, server

    result, server = asyncio.run(scenario())
    [failure] = result.failures
    declared = f"declared size {LIMIT + 1} bytes is over max_file_size={LIMIT}"
    assert failure.reason == f"{server.base_url}large.bin: {declared}"
    assert server.requests["large.bin"] == 0 and server.requests["small.bin"] == 1


def test_a_body_dripping_within_the_read_timeout_is_cut_by_the_minimum_rate(db: Database, storage: LocalStorage):
    # 4 bytes every 0.05 s: never silent for read_timeout, but 1 KiB would take 13 s at 80 bytes/s; the
    # rate is judged after connect_timeout + read_timeout = 5 s. The timeouts are seconds, so a loaded
    # machine cannot make the healthy file (or a pause between drips) look stalled.
    files = {"drip.bin": bytes(range(256)) * 4, "ok.bin": b"fine\n"}
    settings = {"connect_timeout": 2.0, "read_timeout": 3.0, "min_rate": 1000, "retries": 0}

    async def scenario() -> tuple[SyncResult, RemoteServer]:
        async with RemoteServer(dict(files), faults={"drip.bin": Fault(drip=0.05, drip_size=4)}) as server:
            remote = RemoteConfig(url=server.manifest_url, **settings)
            result = await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", on_error="skip")
            return result, server

    result, server = asyncio.run(scenario())
    [failure] = result.failures
    assert failure.reason.startswith(f"{server.base_url}drip.bin: too slow: ")
    assert failure.reason.endswith("under min_rate=1000 bytes/s")
    assert result.added == 1
    stored = {p.parent.name + p.name for p in (storage.root / "artifacts").rglob("*") if p.is_file()}
    assert stored == {hashlib.sha256(files["ok.bin"]).hexdigest()}


async def _trickling_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP server whose response headers never end: one byte every 0.05 s."""
    await reader.readuntil(b"\r\n\r\n")
    try:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while True:
            await asyncio.sleep(0.05)
            writer.write(b"a")
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def test_response_headers_that_never_end_time_out(storage: LocalStorage, tmp_path: Path) -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(_trickling_headers, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/universe"
        # a byte every 0.05 s keeps every read short of read_timeout; only the deadline on the headers ends it
        remote = RemoteConfig(url=url, connect_timeout=1.0, read_timeout=1.5, retries=0)
        try:
            async with Fetcher(remote, storage) as fetcher:
                with pytest.raises(DownloadError, match=r"universe: timed out \(no response within .* = 2\.5 s\)"):
                    await fetcher.fetch_file(url, tmp_path / "universe")
        finally:
            server.close()

    asyncio.run(scenario())
