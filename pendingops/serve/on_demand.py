"""Content whose artifact is not stored yet: fetched from its remotes on first request.

One upstream transfer per artifact: the first request for it leads (it fetches), and requests that
arrive meanwhile follow the same transfer (see ``transfer``: no byte goes out unchecked where that
can be avoided); a request that arrives once the file is stored is answered from storage. A file
that matches is stored unless the remote's policy is ``streamed`` (then every request is a transfer
of its own). A transfer is bounded as a sync's download is: at most the size recorded, or the
remote's ``max_file_size``; at most ``concurrency`` transfers run at once in the process (a leader
waits for a slot, and past ``wait_limit`` seconds the request is answered 503 with Retry-After); a
transfer whose clients all left goes on within those bounds and fills the cache. A request with a
``Range`` waits for the file to be stored and gets its range from storage.

A remote that failed for an artifact is skipped for ``cooldown`` seconds for that artifact only
(the next remote holding it is tried); the remote's other files are unaffected. Fetches reach
private addresses only if the repository allows it (``sync --allow-private-destinations``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from sqlalchemy import Connection, select

from pendingops.db import private_destinations
from pendingops.db.database import Database
from pendingops.db.locks import StoreLock
from pendingops.db.remote_sources import Source, sources
from pendingops.db.schema import ContentArtifact
from pendingops.db.writes import link_fetched_artifact
from pendingops.remote import DEFAULT_MAX_FILE_SIZE, RemoteConfig
from pendingops.serve.resolve import ServedFile
from pendingops.serve.transfer import Transfer, file_headers, follow, run_transfer
from pendingops.storage.base import ArtifactStorage

log = logging.getLogger("pendingops.serve")
#: seconds a remote that failed for an artifact is skipped for it when another remote holds it
DEFAULT_COOLDOWN = 300.0
#: upstream transfers at once in one server process (``serve --on-demand-concurrency``)
DEFAULT_CONCURRENCY = 16
#: seconds a request waits for a free transfer before it is answered 503
DEFAULT_WAIT_LIMIT = 30.0
#: files up to this size are verified before their first byte goes out (``serve --verify-before-send``)
DEFAULT_VERIFY_BEFORE_SEND = 8 * 1024**2
_ca = ContentArtifact.__table__


class _Outcome(enum.Enum):
    """How a leader's request ended, as the requests that waited for it need to know."""

    DONE = "done"
    BUSY = "busy"


class OnDemand:
    """Fetches missing artifacts for the content server (see the module docstring).

    ``settings(source)`` gives the RemoteConfig a source is fetched with (timeouts, retries...);
    credentials are never stored, so by default only the remote's url, name, policy and size cap
    are known. ``observe(outcome)`` hears how each fetch from a remote ended: "stored", "streamed"
    (checked and sent, not stored), "cancelled" (a streamed fetch whose clients left) or "failed".
    """

    def __init__(
        self,
        db: Database,
        storage: ArtifactStorage,
        run: Callable[..., Awaitable[Any]],
        *,
        settings: Callable[[Source], RemoteConfig] | None = None,
        cooldown: float = DEFAULT_COOLDOWN,
        concurrency: int = DEFAULT_CONCURRENCY,
        wait_limit: float = DEFAULT_WAIT_LIMIT,
        verify_before_send: int = DEFAULT_VERIFY_BEFORE_SEND,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db = db
        self.storage = storage
        self._run = run
        self._observe = observe or _ignore
        self._settings = settings or Source.settings
        self.cooldown = cooldown
        self.wait_limit = wait_limit
        self.verify_before_send = verify_before_send
        self._slots = asyncio.Semaphore(concurrency)
        #: (content artifact, remote) -> when fetching it from there last failed, oldest first
        self._failed_at: dict[tuple[int, int], float] = {}
        self._in_flight: dict[int, asyncio.Future[_Outcome]] = {}
        self._transfers: dict[int, Transfer] = {}
        #: requests waiting for another request's fetch, per content artifact
        self.waiting: Counter[int] = Counter()
        #: requests waiting for a free transfer, and transfers running (each until its file is checked)
        self.queued = 0
        self.running = 0

    async def respond(
        self,
        request: web.Request,
        found: ServedFile,
        from_storage: Callable[[], Awaitable[web.StreamResponse]],
        repository_id: int,
    ) -> web.StreamResponse:
        """Answer ``request`` for ``found`` (not stored) of the repository ``repository_id``;
        ``from_storage`` answers once it is stored."""
        ca_id = found.content_artifact_id
        candidates, allow_private = await self._run(_plan, ca_id, repository_id)
        if not candidates:
            return web.Response(status=404, text=f"{found.relative_path!r} is not stored and has no remote\n")
        if request.method == hdrs.METH_HEAD:
            return web.StreamResponse(headers=file_headers(found, candidates[0]))
        streamed_only = all(c.policy == "streamed" for c in candidates)
        ranged = hdrs.RANGE in request.headers and not streamed_only
        leading = self._in_flight.get(ca_id)
        if leading is not None and not streamed_only:
            return await self._join(request, found, leading, ranged, from_storage)
        leader: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        if not streamed_only:
            self._in_flight[ca_id] = leader
        outcome = _Outcome.DONE
        try:
            # A request that read the file as not stored before another one stored it, and looked for
            # that one's fetch after it ended: the file is stored now, and is served from there.
            if not streamed_only and await self._run(_is_stored, ca_id):
                return await from_storage()
            answer = await self._lead(request, found, candidates, allow_private, ranged, from_storage)
            if answer.status == 503:
                outcome = _Outcome.BUSY
            return answer
        finally:
            if self._in_flight.get(ca_id) is leader:
                del self._in_flight[ca_id]
            leader.set_result(outcome)

    async def _join(
        self,
        request: web.Request,
        found: ServedFile,
        leading: asyncio.Future[_Outcome],
        ranged: bool,
        from_storage: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Follow the transfer another request leads, or wait for its end and answer from storage."""
        ca_id = found.content_artifact_id
        self.waiting[ca_id] += 1
        try:
            transfer = self._transfers.get(ca_id)
            if transfer is not None and not ranged:
                answer = await follow(request, found, transfer)
                if answer is not None:
                    return answer
            outcome = await asyncio.shield(leading)
        finally:
            self.waiting[ca_id] -= 1
            if not self.waiting[ca_id]:
                del self.waiting[ca_id]
        if outcome is _Outcome.BUSY:
            return self._busy()
        return await from_storage()

    async def _lead(
        self,
        request: web.Request,
        found: ServedFile,
        candidates: list[Source],
        allow_private: bool,
        ranged: bool,
        from_storage: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        ca_id = found.content_artifact_id
        now = time.monotonic()
        ready = [c for c in candidates if not self._cooling(ca_id, c.remote_id, now)]
        if not ready:
            return web.Response(status=502, text="every remote holding this file failed recently; try again later\n")
        self.queued += 1
        try:
            async with asyncio.timeout(self.wait_limit):
                await self._slots.acquire()
        except TimeoutError:
            return self._busy()
        finally:
            self.queued -= 1
        self.running += 1
        try:
            for source in ready:
                answer = await self._from(request, found, source, allow_private, ranged, from_storage)
                if answer is not None:
                    return answer
        finally:
            self.running -= 1
            self._slots.release()
        return web.Response(status=502, text="the file could not be fetched from any of its remotes\n")

    async def _from(
        self,
        request: web.Request,
        found: ServedFile,
        source: Source,
        allow_private: bool,
        ranged: bool,
        from_storage: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse | None:
        """Fetch ``found`` from ``source`` and answer from the transfer; None if it failed before
        anything was sent (the next remote may be tried). A failure cools the source down for this file."""
        ca_id = found.content_artifact_id
        settings = self._settings(source)
        if allow_private:
            settings = dataclasses.replace(settings, allow_private_destinations=True)
        limit = settings.max_file_size or DEFAULT_MAX_FILE_SIZE
        if source.size is not None and source.size > limit:
            refused = "on-demand fetch of %s refused: %d bytes recorded, over max_file_size=%d"
            log.warning(refused, source.url, source.size, limit, extra={"url": source.url, "outcome": "failed"})
            self._observe("failed")
            self._failed(ca_id, source.remote_id)
            return None
        store = source.policy != "streamed" and "sha256" in source.digests
        large = source.size is not None and source.size > self.verify_before_send  # it streams from the start
        hold = 0 if large else self.verify_before_send
        path = self.storage.new_temp_path()
        try:
            out = open(path, "wb")  # noqa: SIM115 - closed by the transfer
        except OSError as exc:
            fields = {"url": source.url, "outcome": "failed"}
            log.warning("on-demand fetch of %s failed: %s", source.url, exc, extra=fields)
            self._observe("failed")
            return None
        transfer = Transfer(path, source, hold)
        keep = (lambda size, digests: self._store(found, path, size, digests)) if store else None
        cap = source.size or limit
        task = asyncio.create_task(run_transfer(transfer, out, settings, self.storage, cap, keep, self._observe))
        if store:
            self._transfers[ca_id] = transfer
        left = False
        try:
            if ranged:
                await asyncio.wait([task])
                answer = await from_storage() if transfer.verdict else None
            else:
                answer = await follow(request, found, transfer)
                left = answer is not None and transfer.verdict is None  # it returns early only when its client left
                if left and not store:
                    task.cancel()  # streamed: nothing is kept, so the rest of the transfer is waste
                await asyncio.wait([task])  # a stored file's transfer ends even when its clients left
        finally:
            if self._transfers.get(ca_id) is transfer:
                del self._transfers[ca_id]
            if not task.done():
                task.cancel()
                await asyncio.wait([task])
            if not out.closed:  # cancelled before it began: it cleaned nothing up
                out.close()
                path.unlink(missing_ok=True)
        if transfer.verdict is False and not (left and not store):
            self._failed(ca_id, source.remote_id)
        return answer

    def _cooling(self, ca_id: int, remote_id: int, now: float) -> bool:
        failed = self._failed_at.get((ca_id, remote_id))
        return failed is not None and now - failed < self.cooldown

    def _failed(self, ca_id: int, remote_id: int) -> None:
        """Skip this remote for this artifact for a while; forget failures older than that."""
        now = time.monotonic()
        self._failed_at.pop((ca_id, remote_id), None)
        self._failed_at[(ca_id, remote_id)] = now
        while self._failed_at:
            oldest = next(iter(self._failed_at))
            if now - self._failed_at[oldest] < self.cooldown:
                break
            del self._failed_at[oldest]

    def _busy(self) -> web.Response:
        retry = str(max(1, round(self.wait_limit)))
        text = "too many files are being fetched from their remotes; try again later\n"
        return web.Response(status=503, text=text, headers={hdrs.RETRY_AFTER: retry})

    async def _store(self, found: ServedFile, temp: Any, size: int, digests: dict[str, str]) -> None:
        """Rename the checked file into storage and link it, holding the store lock shared as a sync
        does, so an orphan cleanup never removes the file between the two steps."""

        def write(conn: Connection) -> None:
            link_fetched_artifact(conn, self.db, found.content_artifact_id, location, size, digests)

        async with _shared_store_lock(self.db):
            location = await self.storage.put_async(temp, digests["sha256"])
            await asyncio.get_running_loop().run_in_executor(None, self.db.transact, write)


def _ignore(outcome: str) -> None:
    return None


def _plan(conn: Connection, content_artifact_id: int, repository_id: int) -> tuple[list[Source], bool]:
    """Where the artifact can be fetched from, and whether the repository allows private addresses."""
    return sources(conn, content_artifact_id), private_destinations.for_repository(conn, repository_id)


def _is_stored(conn: Connection, content_artifact_id: int) -> bool:
    query = select(_ca.c.artifact_id).where(_ca.c.id == content_artifact_id)
    return conn.execute(query).scalar() is not None


@contextlib.asynccontextmanager
async def _shared_store_lock(db: Database) -> AsyncIterator[None]:
    lock = StoreLock(db, shared=True)
    await lock.acquire()
    try:
        yield
    finally:
        lock.release()
