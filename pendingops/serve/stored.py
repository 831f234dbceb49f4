"""Stored files of a storage with no local path (S3), read on a bounded pool of threads of their own.

Storage reads never share threads with database reads, so a stalled storage cannot hold up listings,
published index files or ``/-/health``. The object is opened and its first bytes read before the
answer starts: a storage failing then gets ``503`` with ``Retry-After``, never a ``200`` cut after
its headers. When every storage thread is busy (a stall holds them), a request gets that ``503`` at
once instead of queueing behind the stall.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, TypeVar

from aiohttp import hdrs, web

from pendingops.serve.conditional import (
    Unsatisfiable,
    byte_range,
    condition_status,
    media_type,
    range_applies,
)
from pendingops.serve.resolve import ServedFile, ServedVersion
from pendingops.storage.base import ArtifactStorage

T = TypeVar("T")
log = logging.getLogger("pendingops.serve")
#: threads reading the storage at once; seconds a client is told to wait when the storage fails
DEFAULT_STORAGE_THREADS = 8
RETRY_AFTER = 5
_CHUNK = 1024 * 1024


class StorageReads:
    """The storage and the threads reading it; ``busy`` tells when none is free."""

    def __init__(self, storage: ArtifactStorage, threads: int = DEFAULT_STORAGE_THREADS) -> None:
        self.storage = storage
        self._threads = threads
        self._running = 0
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pendingops-storage")

    @property
    def busy(self) -> bool:
        return self._running >= self._threads

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        self._running += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))
        finally:
            self._running -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def storage_unavailable(reason: str) -> web.Response:
    """The answer when the storage cannot be read now: try again later."""
    return web.Response(
        status=503, text=f"storage unavailable: {reason}\n", headers={hdrs.RETRY_AFTER: str(RETRY_AFTER)}
    )


async def send_through_storage(
    request: web.Request, reads: StorageReads, version: ServedVersion, found: ServedFile
) -> web.StreamResponse:
    """A stored file streamed from ``storage.open``: the same headers, conditions and ranges as a local
    file (Last-Modified is the version's time); 503 when the storage fails before the first byte."""
    assert found.location is not None and found.sha256 is not None and found.size is not None
    etag, size = f'"{found.sha256}"', found.size
    last_modified = version.created_at.replace(microsecond=0)
    common = {hdrs.ETAG: etag, hdrs.ACCEPT_RANGES: "bytes"}
    status = condition_status(request, etag, last_modified)
    if status is not None:  # 412 or 304: the headers only
        response = web.Response(status=status, headers=common)
        response.last_modified = last_modified
        return response
    start, end, status = 0, size - 1, 200
    headers = {**common, hdrs.CONTENT_TYPE: media_type(found.relative_path.rpartition("/")[2])}
    if range_applies(request, etag, last_modified):
        try:
            wanted = byte_range(request, size)
        except Unsatisfiable:
            return web.Response(status=416, headers={**common, hdrs.CONTENT_RANGE: f"bytes */{size}"})
        if wanted is not None:
            (start, end), status = wanted, 206
            headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end}/{size}"
    reader, first = None, b""
    if request.method != hdrs.METH_HEAD and end >= start:
        if reads.busy:
            return storage_unavailable("every storage reader is busy")
        try:
            reader, first = await reads.run(_open_at, reads.storage, found.location, start, end - start + 1)
        except FileNotFoundError:
            return web.Response(status=404, text=f"not found: {found.relative_path!r} is missing from storage\n")
        except OSError as exc:  # StorageError, StorageUnavailable, a cut connection
            log.warning("storage read of %r failed: %s", found.relative_path, exc)
            return storage_unavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start + 1
    response.last_modified = last_modified
    await response.prepare(request)
    if reader is not None:
        try:
            await response.write(first)
            await _copy(reads, reader, response, end - start + 1 - len(first))
        finally:
            await reads.run(reader.close)
    await response.write_eof()
    return response


def _open_at(storage: ArtifactStorage, location: str, skip: int, length: int) -> tuple[BinaryIO, bytes]:
    """The object opened, ``skip`` bytes read and dropped (the interface reads from the start), and its
    first chunk of at most ``length`` bytes; closed again if any of it fails."""
    reader = storage.open(location)
    try:
        while skip:
            chunk = reader.read(min(_CHUNK, skip))
            if not chunk:
                raise ConnectionError("the stored object is shorter than its recorded size")
            skip -= len(chunk)
        first = reader.read(min(_CHUNK, length))
        if not first:
            raise ConnectionError("the stored object is shorter than its recorded size")
    except BaseException:
        reader.close()
        raise
    return reader, first


async def _copy(reads: StorageReads, reader: BinaryIO, response: web.StreamResponse, length: int) -> None:
    while length:
        chunk = await reads.run(reader.read, min(_CHUNK, length))
        if not chunk:  # the response cannot be completed: the client sees a cut connection
            raise ConnectionError("the stored object is shorter than its recorded size")
        await response.write(chunk)
        length -= len(chunk)
