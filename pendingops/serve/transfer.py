"""One upstream transfer of an on_demand (or streamed) file, and the clients answered from it.

The transfer writes the remote's bytes to a temporary file as it hashes them, bounded by the size
recorded (or the remote's ``max_file_size``), and ends with a verdict: the size and every recorded
digest match, or not. Every client, the one whose request started it included, is answered from
that file as it grows, under one rule: a byte goes out only once it is checked, or once the file is
known to be larger than ``hold`` bytes and it is not the last one. A file of at most ``hold``
bytes (``serve --verify-before-send``) is therefore sent only whole and verified; a larger one
streams, and a client gets its last byte only once the whole file checked out (on a mismatch its
connection is closed before the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from aiohttp import hdrs, web

from pendingops.db.remote_sources import Source
from pendingops.download._sink import BodySink
from pendingops.download.fetcher import DownloadError, Fetcher
from pendingops.remote import RemoteConfig
from pendingops.serve.conditional import media_type
from pendingops.serve.resolve import ServedFile
from pendingops.storage.base import ArtifactStorage

log = logging.getLogger("pendingops.serve")
_FOLLOW_PIECE = 256 * 1024


@dataclass(slots=True)
class Transfer:
    """A transfer as its clients follow it: the temporary file, how many of its bytes are written, and
    the verdict once known. Its clients may send a byte before the verdict only past ``hold`` bytes."""

    path: Path
    source: Source
    hold: int
    written: int = 0
    #: None while running; True once checked (and stored, for a stored policy); False if it failed
    verdict: bool | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def advance(self, written: int) -> None:
        """The first ``written`` bytes are in the file (hashed and flushed)."""
        self.written = written
        self.notify()


class _Refused(Exception):
    """The remote's bytes did not match what was recorded."""


async def run_transfer(
    transfer: Transfer,
    out: BinaryIO,
    settings: RemoteConfig,
    storage: ArtifactStorage,
    cap: int,
    keep: Callable[[int, dict[str, str]], Awaitable[None]] | None,
    observe: Callable[[str], None] | None = None,
) -> None:
    """Fetch ``transfer.source`` into ``out`` (its open temporary file), check it, and set the verdict.

    A body over ``cap`` bytes is cut off as soon as it is. ``keep(size, digests)`` stores a checked
    file (None: the streamed policy, nothing kept); the temporary file is removed otherwise. The
    start and the outcome are logged with the URL; ``observe(outcome)`` hears the outcome: "stored",
    "streamed" (checked and sent, not stored) or "failed".
    """
    source = transfer.source
    log.info("on-demand fetch of %s started", source.url, extra={"url": source.url})
    outcome, detail = "failed", "ended before its bytes were checked"
    hashers = {"sha256": hashlib.sha256(), **{name: hashlib.new(name) for name in source.digests}}
    size = 0
    try:
        try:
            async with Fetcher(settings, storage) as fetcher:
                sink = BodySink(out, hashers.values(), written=transfer.advance)
                try:
                    async for chunk in fetcher.stream(source.url):
                        size += len(chunk)
                        if size > cap:
                            raise _Refused(f"more than {cap} bytes ({_cap_reason(source, cap)})")
                        await sink.add(chunk)
                    await sink.finish()
                finally:  # the file is closed only once no thread writes to it
                    await sink.settle()
        finally:
            out.close()
        computed = {name: hasher.hexdigest() for name, hasher in hashers.items()}
        problem = _mismatch(source, size, computed)
        if problem:
            raise _Refused(problem)
        outcome, detail = "streamed", f"{size} bytes checked"
        if keep is not None:  # before the last bytes go out: a client that has them all finds the file stored
            try:
                await keep(size, computed)
                outcome = "stored"
            except Exception as exc:  # the clients still get their checked bytes (those reading the file have it open)
                transfer.path.unlink(missing_ok=True)
                log.warning("on-demand fetch of %s: storing failed: %s", source.url, exc)
        transfer.verdict = True
    except (DownloadError, _Refused, OSError) as exc:
        transfer.verdict = False
        detail = str(exc)
    except asyncio.CancelledError:
        outcome, detail = "cancelled", "its clients left"
        raise
    finally:
        if transfer.verdict is None:
            transfer.verdict = False
        level = logging.INFO if transfer.verdict else logging.WARNING
        fields = {"url": source.url, "outcome": outcome}
        log.log(level, "on-demand fetch of %s %s: %s", source.url, outcome, detail, extra=fields)
        if observe is not None:
            observe(outcome)
        if not transfer.verdict or keep is None:
            transfer.path.unlink(missing_ok=True)  # clients that opened it still read it
        transfer.notify()


def _cap_reason(source: Source, cap: int) -> str:
    return "the size recorded" if source.size == cap else "max_file_size"


def _mismatch(source: Source, size: int, computed: dict[str, str]) -> str | None:
    if source.size is not None and size != source.size:
        return f"{size} bytes, {source.size} recorded"
    for name, value in source.digests.items():
        if computed.get(name, "").lower() != value.lower():
            return f"{name} {computed.get(name)} is not the {value} recorded"
    return None


async def follow(request: web.Request, found: ServedFile, transfer: Transfer) -> web.StreamResponse | None:
    """Answer ``request`` from ``transfer``'s file as it grows (see the module docstring).

    None when nothing was sent and the transfer failed (the caller may try another remote). A
    response whose client left is returned as it is: the transfer goes on without it.
    """
    try:
        handle = open(transfer.path, "rb")  # noqa: SIM115 - kept open across renames, closed below
    except OSError:
        return None
    response: web.StreamResponse | None = None
    sent = 0
    try:
        while True:
            changed = transfer.changed
            if transfer.verdict is False:
                if response is None:
                    return None
                _abort(request)
                return response
            if transfer.verdict:
                limit = transfer.written
            else:
                limit = transfer.written - 1 if transfer.written > transfer.hold else 0
            if limit > sent:
                response = response or await _start(request, found, transfer)
                while sent < limit:
                    piece = os.pread(handle.fileno(), min(limit - sent, _FOLLOW_PIECE), sent)
                    if not piece:
                        break
                    if not await _send(response, piece):
                        return response
                    sent += len(piece)
                continue
            if transfer.verdict:
                response = response or await _start(request, found, transfer)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await response.write_eof()
                return response
            await changed.wait()
    finally:
        handle.close()


def file_headers(found: ServedFile, source: Source, size: int | None = None) -> dict[str, str]:
    """The headers of an answer with ``found``'s bytes from ``source`` (``size``: known whole)."""
    headers = {hdrs.CONTENT_TYPE: media_type(found.relative_path.rpartition("/")[2])}
    size = source.size if size is None else size
    if size is not None:
        headers[hdrs.CONTENT_LENGTH] = str(size)
    if "sha256" in source.digests:
        headers[hdrs.ETAG] = f'"{source.digests["sha256"]}"'
    return headers


async def _start(request: web.Request, found: ServedFile, transfer: Transfer) -> web.StreamResponse:
    whole = transfer.written if transfer.verdict else None  # verified before the first byte: its size is known
    response = web.StreamResponse(headers=file_headers(found, transfer.source, whole))
    if hdrs.CONTENT_LENGTH not in response.headers:
        response.enable_chunked_encoding()
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, chunk: bytes) -> bool:
    """Write ``chunk`` to the client; False when the client has gone."""
    try:
        await response.write(chunk)
        return True
    except (ConnectionError, RuntimeError):
        return False


def _abort(request: web.Request) -> None:
    """Close the client's connection before its body ends: it must not take what it got as complete."""
    transport = request.transport
    if transport is not None:
        transport.abort()
