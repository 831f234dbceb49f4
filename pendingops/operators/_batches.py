"""The batch flush rules, on a reactivex scheduler's clock (the sync's loop, or a virtual one in tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

_T = TypeVar("_T")


class Batcher(Generic[_T]):
    """Collects items and hands each batch to ``flush`` (never an empty one).

    A batch goes when it holds ``size`` items, when no item arrived for ``idle`` seconds, when its
    first item has waited ``max_wait`` seconds, or when ``flush_now`` is called (the source ended).
    Flushing on idleness rather than on age keeps batches full while items flow, and a pipeline
    whose window holds fewer units than a batch is not held up for more than ``idle``.
    """

    def __init__(
        self, size: int, idle: float, max_wait: float, scheduler: abc.SchedulerBase, flush: Callable[[list[_T]], None]
    ) -> None:
        self._size = size
        self._idle = timedelta(seconds=idle)
        self._max_wait = timedelta(seconds=max_wait)
        self._scheduler = scheduler
        self._flush = flush
        self._items: list[_T] = []
        self._first = self._last = datetime.min
        self._timer = SerialDisposable()
        self._timing = False

    def add(self, item: _T) -> None:
        now = self._scheduler.now
        if not self._items:
            self._first = now
        self._last = now
        self._items.append(item)
        if len(self._items) >= self._size:
            self.flush_now()
        elif not self._timing:
            self._timing = True
            self._timer.disposable = self._scheduler.schedule_relative(self._idle, self._check)

    def _check(self, scheduler: abc.SchedulerBase, _: Any = None) -> None:
        due = min(self._last + self._idle, self._first + self._max_wait)
        if scheduler.now >= due:
            self.flush_now()
        else:
            self._timer.disposable = scheduler.schedule_absolute(due, self._check)

    def flush_now(self) -> None:
        self.cancel()
        if self._items:
            batch, self._items = self._items, []
            self._flush(batch)

    def cancel(self) -> None:
        """Stop the pending timer (the items stay, for ``flush_now`` or to be dropped)."""
        if self._timing:
            self._timing = False
            self._timer.disposable = Disposable()

    def take_all(self) -> list[_T]:
        """The items not flushed yet, taken out (when the stream is disposed of)."""
        self.cancel()
        items, self._items = self._items, []
        return items


def batches(size: int, idle: float, max_wait: float) -> Callable[[Observable[_T]], Observable[list[_T]]]:
    """Group items into lists by the ``Batcher`` rules, on the subscribing scheduler's clock.

    The flush rules of every pendingops batch stage, as a reactivex operator (``buffer_with_time_or_count``
    flushes on age and emits empty lists; this flushes on idleness and never emits an empty one).
    """

    def operator(source: Observable[_T]) -> Observable[list[_T]]:
        def subscribe(observer: abc.ObserverBase[list[_T]], scheduler: abc.SchedulerBase | None = None) -> Any:
            clock = scheduler or TimeoutScheduler.singleton()
            batcher: Batcher[_T] = Batcher(size, idle, max_wait, clock, observer.on_next)

            def on_error(exc: Exception) -> None:
                batcher.take_all()
                observer.on_error(exc)

            def on_completed() -> None:
                batcher.flush_now()
                observer.on_completed()

            subscription = source.subscribe(batcher.add, on_error, on_completed, scheduler=scheduler)
            return CompositeDisposable(subscription, Disposable(batcher.cancel))

        return reactivex.create(subscribe)

    return operator
