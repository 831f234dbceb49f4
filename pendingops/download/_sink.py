"""Hash and write a stream's chunks: on the event loop while it is small, on a worker thread once it is large.

One mechanism for every body read from a remote: a download into a temporary file, and an
on_demand transfer that clients follow as its file grows (``written`` tells them of each flush).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from typing import Any, Protocol

#: bytes collected before they are hashed and written on a worker thread, one batch at a time
BATCH_BYTES = 256 * 1024


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class BodySink:
    """Takes a body's chunks in order and passes each to every hasher and then to ``out``.

    Chunks are collected into batches of ``batch_bytes``. A body that never fills a batch (most
    files) is hashed and written on the loop: a thread hop would cost more than the work. Once a
    batch fills, it goes to a worker thread (hashlib releases the GIL for large buffers), and the
    loop goes on receiving the next batch meanwhile. At most one batch is in flight, so a body
    holds at most two batches in memory, whatever its size, and a big file never holds the loop
    for longer than it takes to receive one chunk.

    With ``written``, others follow the file as it grows: each chunk is flushed and
    ``written(n)`` is called on the loop once the first ``n`` bytes are in the file. A small body's
    chunks are then written as they come (on the loop), a large one's go to the thread as soon as
    none is in flight: a stalled stream's followers get every byte already received.

    ``settle`` must run before ``out`` is closed, whatever happened: a thread may still write to it.
    """

    def __init__(
        self,
        out: _Writable,
        hashers: Iterable[Any],
        *,
        written: Callable[[int], None] | None = None,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self._out = out
        self._hashers = tuple(hashers)
        self._written = written
        self._limit = batch_bytes
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._received = 0
        self._handed_off = False
        self._in_flight: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None

    async def add(self, chunk: bytes) -> None:
        """Take the next chunk; wait only while a full batch waits for the one in flight. Raises a write's error."""
        self._raise_failure()
        self._received += len(chunk)
        if self._written is not None and not self._handed_off and self._received <= self._limit:
            self._consume([chunk])  # small so far: on the loop, and its followers hear of it at once
            self._written(self._received)
            return
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes >= self._limit:
            await self._idle()  # one batch in flight: memory stays bounded, order stays right
            self._start()
        elif self._written is not None and self._in_flight is None:
            self._start()

    async def finish(self) -> None:
        """Return once every chunk added has been hashed and written. Raises a write's error."""
        if not self._handed_off:
            self._consume(self._take_batch())
            if self._written is not None:
                self._written(self._received)
            return
        await self._idle()
        self._start()
        await self._idle()

    async def settle(self) -> None:
        """Wait for the batch in flight, if any, without raising what it raised."""
        while self._in_flight is not None:
            await asyncio.wait([self._in_flight])

    async def _idle(self) -> None:
        while self._in_flight is not None:
            await asyncio.wait([self._in_flight])
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _start(self) -> None:
        if not self._batch or self._failure is not None:
            return
        self._handed_off = True
        batch, upto = self._take_batch(), self._received
        in_flight = asyncio.get_running_loop().run_in_executor(None, self._consume, batch)
        self._in_flight = in_flight
        in_flight.add_done_callback(functools.partial(self._done, upto=upto))

    def _done(self, in_flight: asyncio.Future[None], upto: int) -> None:
        if self._in_flight is in_flight:
            self._in_flight = None
        if in_flight.cancelled():
            self._failure = asyncio.CancelledError()
            return
        error = in_flight.exception()
        if error is not None:
            self._failure = error
            return
        if self._written is not None:
            self._written(upto)
            if self._in_flight is None:
                self._start()  # what came meanwhile, without waiting for the next chunk

    def _take_batch(self) -> list[bytes]:
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        return batch

    def _consume(self, batch: list[bytes]) -> None:
        for chunk in batch:
            for hasher in self._hashers:
                hasher.update(chunk)
            self._out.write(chunk)
        if self._written is not None:
            self._out.flush()  # followers read the file
