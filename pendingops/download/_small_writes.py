"""Small verified bodies written into storage in batches: one worker-thread call for all that queued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence

from pendingops.pending import PendingArtifact, PendingContent
from pendingops.storage.base import StorageFull, storage_full

#: a body up to this size is kept in memory, hashed on the loop and written with others in one thread call
SMALL_BODY = 64 * 1024

WriteMany = Callable[[Sequence[tuple[str, bytes]]], list[OSError | None]]


class SmallWrites:
    """Queues verified bodies and writes them with ``write_many`` (a storage's ``put_bytes_many``).

    Whatever queued during one loop iteration goes in the next thread call; while one call runs,
    the next batch collects (one call in flight). ``put`` returns a future that is done once the file
    is in place (or holds the error): a row pointing at the file is written only after it is awaited
    (``settle``). ``pending`` tells a later fetch of the same digest that its file is on its way.
    """

    def __init__(self, write_many: WriteMany, folder: object) -> None:
        self._write_many = write_many
        self._folder = folder
        self._queue: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._running: asyncio.Future[list[OSError | None]] | None = None
        self._scheduled = False

    def put(self, sha256: str, body: bytes) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        done = self._pending.get(sha256)
        if done is not None:  # the same bytes already queued: one write serves both
            return done
        done = loop.create_future()
        done.add_done_callback(_seen)
        self._queue.append((sha256, body, done))
        self._pending[sha256] = done
        if not self._scheduled and self._running is None:
            self._scheduled = True
            loop.call_soon(self._flush)
        return done

    def pending(self, sha256: str) -> asyncio.Future[None] | None:
        """The write of ``sha256`` still queued or running, if any."""
        return self._pending.get(sha256)

    async def drain(self) -> None:
        """Return once every queued write has finished (before storage is closed)."""
        while self._pending:
            await asyncio.wait(list(self._pending.values()))

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._queue = self._queue, []
        if not batch:
            return
        items = [(sha256, body) for sha256, body, _ in batch]
        running = asyncio.get_running_loop().run_in_executor(None, self._write_many, items)
        self._running = running
        running.add_done_callback(lambda finished: self._finished(batch, finished))

    def _finished(
        self, batch: list[tuple[str, bytes, asyncio.Future[None]]], finished: asyncio.Future[list[OSError | None]]
    ) -> None:
        self._running = None
        if finished.cancelled():
            outcomes: Iterable[BaseException | None] = [asyncio.CancelledError()] * len(batch)
        elif finished.exception() is not None:
            outcomes = [finished.exception()] * len(batch)
        else:
            outcomes = finished.result()
        for (sha256, _, done), error in zip(batch, outcomes, strict=True):
            self._pending.pop(sha256, None)
            if done.done():
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(storage_full(error, self._folder) or error)
        if self._queue:
            self._flush()


def _seen(done: asyncio.Future[None]) -> None:
    """Mark an error as retrieved: a unit dropped before ``save`` leaves only an unused file behind."""
    if not done.cancelled():
        done.exception()


async def settle(units: Sequence[PendingContent]) -> None:
    """Wait until every file these units downloaded is in storage; a unit whose file failed is failed.

    ``save`` calls this before writing rows: a row never points at a file still on its way. A full
    disk stops the sync (StorageFull), as it does for a file written while it downloads.
    """
    waiting = [(unit, a) for unit in units for a in unit.artifacts if a.stored_write is not None]
    if not waiting:
        return
    await asyncio.wait({a.stored_write for _, a in waiting if a.stored_write is not None})
    for unit, artifact in waiting:
        write, artifact.stored_write = artifact.stored_write, None
        assert write is not None
        error = asyncio.CancelledError() if write.cancelled() else write.exception()
        if error is None:
            continue
        _unstore(artifact)
        if isinstance(error, StorageFull) or not isinstance(error, OSError):
            raise error
        unit.fail("download", f"{artifact.relative_path}: cannot write to storage: {error}")


def _unstore(artifact: PendingArtifact) -> None:
    artifact.stored_sha256 = None
    artifact.stored_size = None
    artifact.stored_digests = {}
