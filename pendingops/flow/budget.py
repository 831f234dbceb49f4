"""A bound on bytes downloaded but not yet through the pipeline, so a slow database cannot let
downloads fill the disk."""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    """Bytes held by units between their download and the end of the pipeline.

    ``reserve`` waits until the bytes fit under ``limit``; one reservation larger than the whole
    limit is let through when nothing else is held, so a big file cannot deadlock a sync.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the byte budget must be at least 1 byte")
        self.limit = limit
        self.held = 0
        self.max_held = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> bool:
        """True while a reservation waits for bytes to be released."""
        return bool(self._waiting)

    def _fits(self, count: int) -> bool:
        return self.held == 0 or self.held + count <= self.limit

    async def reserve(self, count: int) -> None:
        if not self._waiting and self._fits(count):
            self._take(count)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append((count, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(count)  # granted just as we were cancelled: hand it back
            else:
                self._waiting.remove((count, waiter))
            raise

    def add(self, count: int) -> None:
        """Account for bytes already on disk (a download whose size was not known in advance)."""
        self._take(count)

    def _take(self, count: int) -> None:
        self.held += count
        self.max_held = max(self.max_held, self.held)

    def release(self, count: int) -> None:
        self.held -= count
        while self._waiting and self._fits(self._waiting[0][0]):
            count_next, waiter = self._waiting.popleft()
            if not waiter.done():
                self._take(count_next)
                waiter.set_result(None)
