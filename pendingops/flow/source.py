"""The paced source: the plugin's units, read only while the window has room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from pendingops.flow.control import Flow
from pendingops.flow.scheduler import LoopObserver, LoopScheduler
from pendingops.pending import PendingContent

Units = Iterable[PendingContent] | AsyncIterable[PendingContent] | Observable[PendingContent]
#: the source hands the loop back to downloads and database results after this many units
_YIELD_EVERY = 32


def paced_source(flow: Flow, units: Units) -> Observable[PendingContent]:
    """An Observable of ``units`` that reads one unit per free window place.

    Iterables and async iterables are pulled one unit at a time. An Observable cannot be paced (Rx
    has no backpressure): its units are queued as they come, and handed on at the window's pace.
    """

    def subscribe(observer: abc.ObserverBase[PendingContent], scheduler: abc.SchedulerBase | None = None) -> Any:
        loop_scheduler = flow.scheduler
        assert loop_scheduler is not None, "the source is subscribed by SyncContext.run"
        if not loop_scheduler.on_loop():  # subscribed from another thread (subscribe_on)
            return loop_scheduler.schedule(lambda _, __: subscribe(observer, scheduler))
        stopped: list[bool] = []
        task = loop_scheduler.loop.create_task(_pump(flow, units, observer, stopped))

        def dispose() -> None:
            stopped.append(True)
            task.cancel()

        return Disposable(lambda: loop_scheduler.run_on_loop(dispose))

    return reactivex.create(subscribe)


async def _pump(flow: Flow, units: Units, observer: abc.ObserverBase[PendingContent], stopped: list[bool]) -> None:
    assert flow.scheduler is not None
    pull, close = _puller(units, flow.scheduler)
    window = flow.window
    pulled = 0
    try:
        while not stopped:  # a take(n) downstream may dispose of the source from inside on_next
            # Take a place before pulling, so the source is never read further ahead.
            if not window.try_take():
                await window.take()
            try:
                unit = await pull()
            except BaseException:
                flow.window.release()
                raise
            if not isinstance(unit, PendingContent):
                flow.window.release()
                raise TypeError(f"the source must yield PendingContent, got {type(unit).__name__}")
            flow.enter(unit)
            observer.on_next(unit)
            del unit  # a unit dropped downstream must not be kept alive by this frame
            pulled += 1
            if pulled % _YIELD_EVERY == 0:
                # A window with room does not suspend: let downloads and DB results run.
                await asyncio.sleep(0)
    except StopAsyncIteration:
        observer.on_completed()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the plugin's source failed: the whole sync fails
        observer.on_error(exc)
    finally:
        close()


def _puller(units: Units, scheduler: LoopScheduler) -> tuple[Callable[[], Awaitable[Any]], Callable[[], None]]:
    """``pull()`` returning the next unit (StopAsyncIteration at the end) and ``close()``."""
    if isinstance(units, Observable):
        return _observable_puller(units, scheduler)
    if isinstance(units, AsyncIterable):
        return aiter(units).__anext__, lambda: None
    iterator = iter(units)

    async def pull_next() -> Any:
        try:
            return next(iterator)
        except StopIteration:
            raise StopAsyncIteration from None

    return pull_next, lambda: None


def _observable_puller(
    observable: Observable[PendingContent], scheduler: LoopScheduler
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], None]]:
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    observer = LoopObserver(
        scheduler,
        lambda unit: queue.put_nowait(("next", unit)),
        lambda exc: queue.put_nowait(("error", exc)),
        lambda: queue.put_nowait(("done", None)),
    )
    subscription = observable.subscribe(observer.on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

    async def pull_next() -> Any:
        kind, value = await queue.get()
        if kind == "error":
            raise value
        if kind == "done":
            queue.put_nowait((kind, value))
            raise StopAsyncIteration
        return value

    return pull_next, subscription.dispose
