"""The event loop syncs run on: uvloop's when it is installed (``pip install pendingops[fast]``).

A sync's per-file work (request, hash, write, the per-unit steps between the operators) runs on
one event loop; uvloop's loop, written in C on libuv, does the loop's own part of that work at a
fraction of the cost. Nothing changes in what a sync does or checks: only the loop underneath.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
#: set to "asyncio" to use the standard loop even when uvloop is installed (to compare, or to rule it out)
LOOP_ENV = "PENDINGOPS_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when installed and not turned off by ``PENDINGOPS_LOOP=asyncio``; else None."""
    if os.environ.get(LOOP_ENV, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """ "uvloop" or "asyncio": the loop ``run`` uses."""
    return "uvloop" if loop_factory() is not None else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available (see ``loop_factory``)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
