"""The window: how many units may be between the source and the end of the pipeline."""

from __future__ import annotations

import asyncio


class Window:
    """``size`` places; the source takes one before it reads a unit, the unit gives it back when it
    leaves the pipeline (at its end, dropped on the way, or given up at a stall)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the window must hold at least 1 unit")
        self.size = size
        self.held = 0
        self.max_held = 0
        self._waiter: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> bool:
        """True while the source waits for a place."""
        return self._waiter is not None

    def try_take(self) -> bool:
        """Take a place if one is free, without waiting; False when the window is full."""
        if self.held >= self.size:
            return False
        self.held += 1
        if self.held > self.max_held:
            self.max_held = self.held
        return True

    async def take(self) -> None:
        """Take a place, waiting until one is free (one taker at a time: the source)."""
        while self.held >= self.size:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.held += 1
        self.max_held = max(self.max_held, self.held)

    def release(self, count: int = 1) -> None:
        self.held -= count
        if self._waiter is not None and not self._waiter.done() and self.held < self.size:
            self._waiter.set_result(None)
