"""The event loop syncs run on: the standard asyncio loop, or uvloop's when asked for.

``PENDINGOPS_LOOP=uvloop`` (with ``pip install 'pendingops[fast]'``) runs syncs on uvloop's loop,
written in C on libuv. It is not the default: measured on the benchmark's 10,000 files of 1 KiB it
did not lower the CPU time of the raw download, of the initial sync or of the no-op resync
(benchmarks/README.md), so nothing here picks it silently. Nothing a sync does or checks depends
on the loop underneath.

While ``run`` runs, the cyclic garbage collector looks at young objects every 10,000 new container
objects instead of Python's 700 (its thresholds are put back after). A sync makes a few per unit
(the unit, its fields, its artifacts), nearly all freed by reference counting, so the default
collected over and over for nothing: a 10,000-unit no-op resync spent about a third of its loop
thread's CPU there (benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
#: "uvloop" runs syncs on uvloop (it must be installed); anything else, or unset, is the standard loop
LOOP_ENV = "PENDINGOPS_LOOP"
#: the collector's (young, middle, old) thresholds while ``run`` runs, where the process's are lower
SYNC_GC_THRESHOLDS = (10_000, 10, 10)


class LoopUnavailable(RuntimeError):
    """uvloop was asked for but is not installed."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when ``PENDINGOPS_LOOP=uvloop``; None (the standard loop) otherwise."""
    if os.environ.get(LOOP_ENV, "").strip().lower() != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        raise LoopUnavailable(
            f"{LOOP_ENV}=uvloop, but uvloop is not installed: pip install 'pendingops[fast]'"
        ) from None
    return uvloop.new_event_loop


def loop_name() -> str:
    """ "uvloop" or "asyncio": the loop ``run`` uses."""
    return "uvloop" if loop_factory() is not None else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``PENDINGOPS_LOOP`` names (see ``loop_factory``)."""
    try:
        factory = loop_factory()
    except LoopUnavailable:
        main.close()  # never run: closed, so it is not reported as never awaited
        raise
    with _fewer_collections(), asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the collector's thresholds to ``SYNC_GC_THRESHOLDS`` (never lower them) until the block ends."""
    before = gc.get_threshold()
    if before[0] > 0:  # 0: the process turned automatic collection off; leave it so
        gc.set_threshold(*(max(mine, theirs) for mine, theirs in zip(SYNC_GC_THRESHOLDS, before, strict=False)))
    try:
        yield
    finally:
        gc.set_threshold(*before)


async def uninterruptible(work: Awaitable[None]) -> None:
    """Run ``work`` to its end even if the caller is cancelled meanwhile; then pass the cancellation on."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
