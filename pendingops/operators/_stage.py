"""The two shapes every operator takes: a per-unit async step and a batched async step.

Both pass failed units (and units the step does not want) straight through, run their work as
asyncio tasks on the sync's event loop, emit each unit exactly once, and complete only when
upstream has completed and all their work is done. A unit's own failure is recorded on the unit;
an exception from batch work (a database error) fails the whole stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from pendingops.context import SyncContext, current_context
from pendingops.pending import PendingContent, describe_error
from pendingops.storage.base import StorageFull

Operator = Callable[[Observable[PendingContent]], Observable[PendingContent]]
Wants = Callable[[SyncContext, PendingContent], bool]


class _Emitter:
    """Tracks a stage's tasks and forwards units, errors and completion downstream."""

    def __init__(self, observer: abc.ObserverBase[PendingContent]) -> None:
        self.observer = observer
        self.tasks: set[asyncio.Task[None]] = set()
        self.upstream_done = False
        self.stopped = False

    def emit(self, unit: PendingContent) -> None:
        if not self.stopped:
            self.observer.on_next(unit)

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.error(exc)
        else:
            self.maybe_complete()

    def error(self, exc: BaseException) -> None:
        if not self.stopped:
            self.stopped = True
            self.cancel()
            self.observer.on_error(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))

    def upstream_completed(self) -> None:
        self.upstream_done = True
        self.maybe_complete()

    def maybe_complete(self) -> None:
        if self.upstream_done and not self.tasks and not self.stopped:
            self.stopped = True
            self.observer.on_completed()

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()


def per_unit_stage(
    stage: str,
    wants: Wants,
    work: Callable[[SyncContext, PendingContent], Awaitable[None]],
    concurrency: Callable[[SyncContext], int],
) -> Operator:
    """An operator running ``work(ctx, unit)`` with at most ``concurrency(ctx)`` units at once.

    An exception from ``work`` fails that unit only; a full storage fails the stream.
    """

    def operator(source: Observable[PendingContent]) -> Observable[PendingContent]:
        def subscribe(observer: abc.ObserverBase[PendingContent], scheduler: abc.SchedulerBase | None = None) -> Any:
            ctx = current_context()
            emitter = _Emitter(observer)
            limit = asyncio.Semaphore(concurrency(ctx))

            async def handle(unit: PendingContent) -> None:
                async with limit:
                    try:
                        await work(ctx, unit)
                    except StorageFull:
                        raise  # every unit after it would fail too: the sync stops, whatever the policy
                    except Exception as exc:
                        unit.fail(stage, describe_error(exc))
                emitter.emit(unit)

            def on_next(unit: PendingContent) -> None:
                if unit.failed or not wants(ctx, unit):
                    emitter.emit(unit)
                else:
                    emitter.spawn(handle(unit))

            subscription = source.subscribe(on_next, emitter.error, emitter.upstream_completed, scheduler=scheduler)
            return CompositeDisposable(subscription, Disposable(emitter.cancel))

        return reactivex.create(subscribe)

    return operator


def batch_stage(
    wants: Wants,
    work: Callable[[SyncContext, list[PendingContent]], Awaitable[None]],
    *,
    size: Callable[[SyncContext], int] | None = None,
    concurrency: int = 1,
    include_failed: bool = False,
) -> Operator:
    """An operator running ``work(ctx, batch)`` on batches of the units it wants.

    A batch is flushed when it reaches ``size(ctx)`` (the sync's ``batch_size`` by default), when
    no unit has arrived for ``ctx.batch_wait`` seconds, when its first unit has waited
    ``ctx.batch_max_wait`` seconds, or when upstream completes. Flushing on idleness rather than
    age keeps batches full while units flow, and cannot stall a pipeline whose window is full. At most
    ``concurrency`` batches are worked on at once; the others wait their turn, in order.
    """

    def operator(source: Observable[PendingContent]) -> Observable[PendingContent]:
        def subscribe(observer: abc.ObserverBase[PendingContent], scheduler: abc.SchedulerBase | None = None) -> Any:
            ctx = current_context()
            loop = asyncio.get_running_loop()
            emitter = _Emitter(observer)
            limit = asyncio.Semaphore(concurrency)
            batch_size = size(ctx) if size else ctx.batch_size
            buffer: list[PendingContent] = []
            timer: list[asyncio.TimerHandle] = []
            last_arrival = [0.0]

            async def process(batch: list[PendingContent]) -> None:
                async with limit:
                    await work(ctx, batch)
                for unit in batch:
                    emitter.emit(unit)

            def flush() -> None:
                while timer:
                    timer.pop().cancel()
                if buffer:
                    batch = buffer[:]
                    buffer.clear()
                    emitter.spawn(process(batch))

            def on_timer(first_arrival: float) -> None:
                timer.clear()
                now = loop.time()
                idle_until = last_arrival[0] + ctx.batch_wait
                if now >= idle_until or now - first_arrival >= ctx.batch_max_wait:
                    flush()
                else:
                    timer.append(loop.call_at(idle_until, on_timer, first_arrival))

            def on_next(unit: PendingContent) -> None:
                if (unit.failed and not include_failed) or not wants(ctx, unit):
                    emitter.emit(unit)
                    return
                buffer.append(unit)
                last_arrival[0] = loop.time()
                if len(buffer) >= batch_size:
                    flush()
                elif not timer:
                    timer.append(loop.call_later(ctx.batch_wait, on_timer, last_arrival[0]))

            def on_completed() -> None:
                flush()
                emitter.upstream_completed()

            def dispose() -> None:
                while timer:
                    timer.pop().cancel()
                emitter.cancel()

            subscription = source.subscribe(on_next, emitter.error, on_completed, scheduler=scheduler)
            return CompositeDisposable(subscription, Disposable(dispose))

        return reactivex.create(subscribe)

    return operator
