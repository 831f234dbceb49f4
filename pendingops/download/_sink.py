"""Hash and write a download's body: on the event loop while it is small, on a worker thread once it is large."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, BinaryIO

#: bytes collected before they are hashed and written on a worker thread, one batch at a time
BATCH_BYTES = 256 * 1024


class BodySink:
    """Takes a body's chunks in order and passes each to every hasher and then to ``out``.

    Chunks are collected into batches of ``BATCH_BYTES``. A body that never fills a batch (most
    files) is hashed and written on the loop by ``finish``: a thread hop would cost more than the
    work. Once a batch fills, it goes to a worker thread (hashlib releases the GIL for large
    buffers), and the loop goes on receiving the next batch meanwhile. At most one batch is in
    flight, so a download holds at most two batches in memory, whatever its size, and a big file
    never holds the loop for longer than it takes to receive one chunk.

    ``settle`` must run before ``out`` is closed, whatever happened: a thread may still write to it.
    """

    def __init__(self, out: BinaryIO, hashers: Iterable[Any]) -> None:
        self._out = out
        self._hashers = tuple(hashers)
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._in_flight: asyncio.Future[None] | None = None

    async def add(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes >= BATCH_BYTES:
            await self._hand_off()

    async def finish(self) -> None:
        """Return once every chunk added has been hashed and written."""
        if self._in_flight is None:
            self._consume(self._take_batch())
            return
        await self._hand_off()
        await self._in_flight
        self._in_flight = None

    async def settle(self) -> None:
        """Wait for the batch in flight, if any, without raising what it raised."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await asyncio.wait([in_flight])
            if not in_flight.cancelled():
                in_flight.exception()  # seen: the caller is already handling an error of its own

    async def _hand_off(self) -> None:
        batch = self._take_batch()
        if self._in_flight is not None:
            await self._in_flight  # one batch in flight: memory stays bounded, order stays right
        self._in_flight = asyncio.get_running_loop().run_in_executor(None, self._consume, batch)

    def _take_batch(self) -> list[bytes]:
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        return batch

    def _consume(self, batch: list[bytes]) -> None:
        for chunk in batch:
            for hasher in self._hashers:
                hasher.update(chunk)
            self._out.write(chunk)
