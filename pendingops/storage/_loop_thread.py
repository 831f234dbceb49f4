"""An event loop of its own in a daemon thread, for a backend whose client is async.

Blocking callers (commands, threads) wait for a coroutine with ``call``; callers on another event
loop await it with ``call_async`` without blocking their loop. The client lives on this one loop
whoever calls, so its connection pool is shared by both kinds of caller.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the thread's loop and wait for its result (never from that loop itself)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def call_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the thread's loop; the caller's loop goes on meanwhile."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def call_detached(self, coro: Coroutine[Any, Any, T]) -> T:
        """``call_async``, but cancelling the caller leaves ``coro`` running to its end (never cut half-way).

        Its outcome is retrieved even when no caller is left to await it, so a failure after the
        caller went away is not reported as a "Future exception was never retrieved".
        """
        future = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))
        future.add_done_callback(_retrieve)
        return await asyncio.shield(future)

    def call_soon(self, function: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(function, *args)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
