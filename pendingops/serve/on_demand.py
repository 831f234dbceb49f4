"""Content whose artifact is not stored yet: fetched from its remotes on first request.

The bytes are passed to the client as they arrive while they are hashed and written to a
temporary file; the last chunk is held back until size and digests are checked, so a client
never receives a complete body that does not match: a mismatch found before anything was sent is
a 502, after that the connection is closed before the body ends. A file that matches is stored
(renamed into storage, then its Artifact row linked to the content) unless the remote's policy is
``streamed``. Requests for an artifact already being fetched follow that fetch: they read its
temporary file as it grows, under the same rule for the last byte (and wait for it to end if it
fails before they got anything, as the next remote may then be tried): one upstream transfer per
artifact. A remote that just failed is skipped for
``cooldown`` seconds, and the next remote holding the same content is tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from sqlalchemy import Connection

from pendingops.db.database import Database
from pendingops.db.locks import StoreLock
from pendingops.db.remote_sources import Source, sources
from pendingops.db.writes import link_fetched_artifact
from pendingops.download.fetcher import DownloadError, Fetcher
from pendingops.remote import RemoteConfig
from pendingops.serve.conditional import media_type
from pendingops.serve.digest_queue import DigestQueue
from pendingops.serve.resolve import ServedFile
from pendingops.storage.base import ArtifactStorage

log = logging.getLogger("pendingops.serve")
#: seconds a remote that just failed is skipped when another one holds the same content
DEFAULT_COOLDOWN = 300.0
_FOLLOW_PIECE = 256 * 1024


@dataclass(slots=True)
class _Transfer:
    """A leader's fetch from one source, as requests that arrive meanwhile follow it: how many bytes of
    the temporary file are written, and the verdict once known."""

    path: Path
    source: Source
    written: int = 0
    #: None while running; True once checked and stored; False if it failed
    verdict: bool | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class FetchFailed(Exception):
    """Every remote failed (or is cooling down); nothing was sent to the client."""


class OnDemand:
    """Fetches missing artifacts for the content server (see the module docstring).

    ``settings(source)`` gives the RemoteConfig a source is fetched with (timeouts, retries...);
    credentials are never stored, so by default only the remote's url, name and policy are known.
    ``observe(outcome)`` hears how each fetch from a remote ended: "stored", "streamed" (checked and
    sent, not stored) or "failed".
    """

    def __init__(
        self,
        db: Database,
        storage: ArtifactStorage,
        run: Callable[..., Awaitable[Any]],
        *,
        settings: Callable[[Source], RemoteConfig] | None = None,
        cooldown: float = DEFAULT_COOLDOWN,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self._run = run
        self._observe = observe or _ignore
        self._settings = settings or Source.settings
        self.cooldown = cooldown
        self._failed_at: dict[int, float] = {}
        self._in_flight: dict[int, asyncio.Future[None]] = {}
        self._transfers: dict[int, _Transfer] = {}
        #: requests waiting for another request's fetch, per content artifact
        self.waiting: Counter[int] = Counter()

    async def respond(
        self, request: web.Request, found: ServedFile, from_storage: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Answer ``request`` for ``found`` (not stored); ``from_storage`` answers once it is stored."""
        candidates = await self._run(sources, found.content_artifact_id)
        if not candidates:
            return web.Response(status=404, text=f"{found.relative_path!r} is not stored and has no remote\n")
        streamed_only = all(c.policy == "streamed" for c in candidates)
        if request.method == hdrs.METH_HEAD:
            return _head(found, candidates[0])
        waiting = self._in_flight.get(found.content_artifact_id)
        if waiting is not None and not streamed_only:
            self.waiting[found.content_artifact_id] += 1
            try:
                transfer = self._transfers.get(found.content_artifact_id)
                if transfer is not None:
                    answer = await _follow(request, found, transfer)
                    if answer is not None:
                        return answer
                await asyncio.shield(waiting)
            finally:
                self.waiting[found.content_artifact_id] -= 1
            return await from_storage()
        leader: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not streamed_only:
            self._in_flight[found.content_artifact_id] = leader
        try:
            return await self._fetch(request, found, candidates)
        finally:
            if self._in_flight.get(found.content_artifact_id) is leader:
                del self._in_flight[found.content_artifact_id]
            leader.set_result(None)

    async def _fetch(self, request: web.Request, found: ServedFile, candidates: list[Source]) -> web.StreamResponse:
        now = time.monotonic()
        ready = [c for c in candidates if now - self._failed_at.get(c.remote_id, -self.cooldown) >= self.cooldown]
        if not ready:
            return web.Response(status=502, text="every remote holding this file failed recently; try again later\n")
        for source in ready:
            try:
                return await self._from(request, found, source)
            except FetchFailed:
                continue
        return web.Response(status=502, text="the file could not be fetched from any of its remotes\n")

    async def _from(self, request: web.Request, found: ServedFile, source: Source) -> web.StreamResponse:
        """Stream ``source`` to the client; raise FetchFailed if it failed before anything was sent."""
        temp = self.storage.new_temp_path()
        store = source.policy != "streamed" and "sha256" in source.digests
        transfer = _Transfer(temp, source)
        if store:
            self._transfers[found.content_artifact_id] = transfer
        log.info("on-demand fetch of %s started", source.url, extra={"url": source.url})
        try:
            return await self._transfer(request, found, source, transfer, store)
        finally:
            if self._transfers.get(found.content_artifact_id) is transfer:
                del self._transfers[found.content_artifact_id]
            if transfer.verdict is None:
                transfer.verdict = False
            transfer.notify()

    async def _transfer(
        self, request: web.Request, found: ServedFile, source: Source, transfer: _Transfer, store: bool
    ) -> web.StreamResponse:
        expected = source.digests
        hashers = {"sha256": hashlib.sha256(), **{name: hashlib.new(name) for name in expected if name != "sha256"}}
        cap = source.size
        response: web.StreamResponse | None = None
        client_gone = False
        held: bytes | None = None
        size = 0
        temp = transfer.path
        try:
            async with Fetcher(self._settings(source), self.storage) as fetcher:
                with open(temp, "wb") if store else _Discard() as out:
                    digests = DigestQueue(hashers, out, functools.partial(_written, transfer))
                    try:
                        async for chunk in fetcher.stream(source.url):
                            size += len(chunk)
                            if cap is not None and size > cap:
                                raise _Mismatch(f"more than the {cap} bytes recorded")
                            await digests.put(chunk)
                            if held is not None and not client_gone:
                                response = response or await _start(request, found, source)
                                client_gone = not await _send(response, held)
                            held = chunk
                        await digests.finish()
                    finally:  # the file is closed only once no thread writes to it
                        await digests.close()
            computed = {name: hasher.hexdigest() for name, hasher in hashers.items()}
            problem = _mismatch(source, size, computed)
            if problem:
                raise _Mismatch(problem)
        except (DownloadError, _Mismatch, OSError) as exc:
            temp.unlink(missing_ok=True)
            self._failed_at[source.remote_id] = time.monotonic()
            self._ended(source, "failed", str(exc))
            if response is None:
                raise FetchFailed from None
            _abort(request)
            return response
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        outcome = "streamed"
        if store:  # before the last bytes go out: a client that has them all finds the file stored
            try:
                await self._store(found, temp, size, computed)
                outcome = "stored"
            except Exception as exc:  # the client still gets its checked bytes
                temp.unlink(missing_ok=True)
                log.warning("on-demand fetch of %s: storing failed: %s", source.url, exc)
        self._ended(source, outcome, f"{size} bytes checked")
        transfer.verdict = True
        transfer.notify()
        response = response or await _start(request, found, source)
        if not client_gone and held is not None:
            client_gone = not await _send(response, held)
        if not client_gone:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write_eof()
        return response

    def _ended(self, source: Source, outcome: str, detail: str) -> None:
        level = logging.WARNING if outcome == "failed" else logging.INFO
        fields = {"url": source.url, "outcome": outcome}
        log.log(level, "on-demand fetch of %s %s: %s", source.url, outcome, detail, extra=fields)
        self._observe(outcome)

    async def _store(self, found: ServedFile, temp: Any, size: int, digests: dict[str, str]) -> None:
        """Rename the checked file into storage and link it, holding the store lock shared as a sync
        does, so an orphan cleanup never removes the file between the two steps."""

        def write(conn: Connection) -> None:
            link_fetched_artifact(conn, self.db, found.content_artifact_id, location, size, digests)

        async with _shared_store_lock(self.db):
            location = self.storage.put(temp, digests["sha256"])
            await asyncio.get_running_loop().run_in_executor(None, self.db.transact, write)


@contextlib.asynccontextmanager
async def _shared_store_lock(db: Database) -> AsyncIterator[None]:
    lock = StoreLock(db, shared=True)
    await lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _ignore(outcome: str) -> None:
    return None


def _written(transfer: _Transfer, size: int) -> None:
    transfer.written = size
    transfer.notify()


class _Mismatch(Exception):
    pass


class _Discard:
    """A file that keeps nothing (the streamed policy)."""

    def __enter__(self) -> _Discard:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        return None


async def _follow(request: web.Request, found: ServedFile, transfer: _Transfer) -> web.StreamResponse | None:
    """Answer from the temporary file of another request's transfer as it grows, the last byte only
    once that transfer is checked. None when nothing was sent and the transfer failed (the caller
    then waits for the leader, which may try another remote)."""
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
            limit = transfer.written if transfer.verdict else transfer.written - 1
            if limit > sent:
                response = response or await _start(request, found, transfer.source)
                while sent < limit:
                    piece = os.pread(handle.fileno(), min(limit - sent, _FOLLOW_PIECE), sent)
                    if not piece:
                        break
                    if not await _send(response, piece):
                        return response
                    sent += len(piece)
                continue
            if transfer.verdict:
                response = response or await _start(request, found, transfer.source)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await response.write_eof()
                return response
            await changed.wait()
    finally:
        handle.close()


def _mismatch(source: Source, size: int, computed: dict[str, str]) -> str | None:
    if source.size is not None and size != source.size:
        return f"{size} bytes, {source.size} recorded"
    for name, value in source.digests.items():
        if computed.get(name, "").lower() != value.lower():
            return f"{name} {computed.get(name)} is not the {value} recorded"
    return None


def _headers(found: ServedFile, source: Source) -> dict[str, str]:
    headers = {hdrs.CONTENT_TYPE: media_type(found.relative_path.rpartition("/")[2])}
    if source.size is not None:
        headers[hdrs.CONTENT_LENGTH] = str(source.size)
    if "sha256" in source.digests:
        headers[hdrs.ETAG] = f'"{source.digests["sha256"]}"'
    return headers


def _head(found: ServedFile, source: Source) -> web.StreamResponse:
    response = web.StreamResponse(headers=_headers(found, source))
    return response


async def _start(request: web.Request, found: ServedFile, source: Source) -> web.StreamResponse:
    response = web.StreamResponse(headers=_headers(found, source))
    if source.size is None:
        response.enable_chunked_encoding()
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, chunk: bytes) -> bool:
    """Write ``chunk`` to the client; False when the client has gone (the fetch goes on, to store it)."""
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
