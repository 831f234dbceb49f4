"""Hashing and writing a stream's chunks on a thread of their own, a bounded number behind its reader.

An on-demand fetch reads from the remote, hashes and writes to a temporary file, and sends to the
client at once: none of the three waits for another chunk by chunk, only when the hashing falls
more than ``ahead`` chunks behind (memory stays bounded). One thread per stream keeps the chunks in
order; hashlib and file writes release the GIL, so it runs beside the event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class DigestQueue:
    """Feeds each chunk to every hasher of ``hashers`` and to ``out``, in order, off the event loop.

    ``written(n)`` is called on the loop once the first ``n`` bytes are hashed and flushed to ``out``.
    """

    def __init__(
        self,
        hashers: Mapping[str, Any],
        out: _Writable,
        written: Callable[[int], None],
        *,
        ahead: int = 8,
    ) -> None:
        self._hashers = hashers
        self._out = out
        self._written = written
        self._ahead = ahead
        self._queued = 0
        self._pending: deque[tuple[asyncio.Future[None], int]] = deque()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pendingops-digest")

    async def put(self, chunk: bytes) -> None:
        """Queue ``chunk``; wait only while more than ``ahead`` chunks are queued. Raises what a write raised."""
        self._queued += len(chunk)
        work = asyncio.get_running_loop().run_in_executor(self._thread, self._digest, chunk)
        work.add_done_callback(self._collect)
        self._pending.append((work, self._queued))
        while len(self._pending) > self._ahead:
            await self._next()

    async def finish(self) -> None:
        """Wait until every queued chunk is hashed and written. Raises what a write raised."""
        while self._pending:
            await self._next()

    async def close(self) -> None:
        """Wait for the thread to finish what it started (the file may be closed after), errors dropped."""
        if self._pending:
            await asyncio.wait([work for work, _ in self._pending])
            for work, _ in self._pending:
                if not work.cancelled():
                    work.exception()
            self._pending.clear()
        self._thread.shutdown(wait=False)

    async def _next(self) -> None:
        work = self._pending[0][0]
        await asyncio.wait([work])
        work.result()  # a failed write stops the stream here
        self._collect()

    def _collect(self, _: object = None) -> None:
        """Report what is written, as each chunk is done (not only when the next one arrives: followers
        of a stalled transfer get every byte already in the file)."""
        while self._pending and self._pending[0][0].done():
            work, upto = self._pending[0]
            if work.cancelled() or work.exception() is not None:
                return  # raised by the next put or finish
            self._pending.popleft()
            self._written(upto)

    def _digest(self, chunk: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(chunk)
        self._out.write(chunk)
        self._out.flush()  # requests following this transfer read the file
