"""The scheduler bridged to the sync's event loop, and the hop that brings emissions back onto it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import abc, typing
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable
from reactivex.scheduler.periodicscheduler import PeriodicScheduler

_TState = TypeVar("_TState")


class LoopScheduler(PeriodicScheduler):
    """A reactivex scheduler running every action on one asyncio event loop, callable from any thread.

    On the loop's thread it is reactivex's ``AsyncIOScheduler`` (``call_soon``, ``call_later``). It
    differs because stock operators may call it from another thread (after an ``observe_on``): then
    the action is handed over with ``call_soon_threadsafe`` and a dispose never blocks that thread.
    reactivex's ``AsyncIOThreadSafeScheduler`` pays a self-pipe write for every action even on the
    loop's own thread, and its dispose from another thread cancels the loop's handle from that thread.
    Work handed over from another thread runs in the sync's ``contextvars`` context.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, context: contextvars.Context | None = None) -> None:
        super().__init__()
        self.loop = loop
        self.thread = threading.get_ident()
        self._context = context or contextvars.copy_context()

    @property
    def context(self) -> contextvars.Context:
        """The ``contextvars`` context work handed over from other threads runs in."""
        return self._context

    def on_loop(self) -> bool:
        """True when called on the loop's thread."""
        return threading.get_ident() == self.thread

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop soon, from any thread; dropped once the loop is closed."""
        if threading.get_ident() == self.thread:
            self.loop.call_soon(callback, *args)
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the sync is over, nothing waits for this
            self.loop.call_soon_threadsafe(callback, *args, context=self._context)

    def run_on_loop(self, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` now if on the loop's thread, else hand it over to the loop."""
        if threading.get_ident() == self.thread:
            callback()
        else:
            self.call_soon(callback)

    def schedule(self, action: typing.ScheduledAction[_TState], state: _TState | None = None) -> abc.DisposableBase:
        return self._schedule(0.0, action, state)

    def schedule_relative(
        self, duetime: typing.RelativeTime, action: typing.ScheduledAction[_TState], state: _TState | None = None
    ) -> abc.DisposableBase:
        return self._schedule(max(0.0, self.to_seconds(duetime)), action, state)

    def schedule_absolute(
        self, duetime: typing.AbsoluteTime, action: typing.ScheduledAction[_TState], state: _TState | None = None
    ) -> abc.DisposableBase:
        return self.schedule_relative(self.to_datetime(duetime) - self.now, action, state)

    def _schedule(
        self, seconds: float, action: typing.ScheduledAction[_TState], state: _TState | None
    ) -> abc.DisposableBase:
        sad = SingleAssignmentDisposable()
        handles: list[asyncio.Handle] = []
        disposed = False

        def run() -> None:
            if not disposed:
                sad.disposable = self.invoke_action(action, state=state)

        def start() -> None:
            if not disposed:
                handles.append(self.loop.call_later(seconds, run) if seconds else self.loop.call_soon(run))

        def cancel() -> None:
            for handle in handles:
                handle.cancel()

        def dispose() -> None:
            nonlocal disposed
            disposed = True
            self.run_on_loop(cancel)

        if threading.get_ident() == self.thread:
            start()
        else:
            self.call_soon(start)
        return CompositeDisposable(sad, Disposable(dispose))


class LoopObserver:
    """Delivers notifications to ``on_next``/``on_error``/``on_completed`` on the loop's thread, in order.

    Notifications arriving on the loop's thread go straight through; those from another thread are
    handed over with ``call_soon_threadsafe``, and so is anything arriving while earlier ones wait in
    the loop's queue, so the order is kept.
    """

    def __init__(
        self,
        scheduler: LoopScheduler,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self._scheduler = scheduler
        self._thread = scheduler.thread
        self._on_next = on_next
        self._on_error = on_error
        self._on_completed = on_completed
        self._queued = 0
        self._lock = threading.Lock()

    def on_next(self, value: Any) -> None:
        if self._queued == 0 and threading.get_ident() == self._thread:
            self._on_next(value)
        else:
            self._hand_over(self._on_next, value)

    def on_error(self, error: Exception) -> None:
        if self._queued == 0 and threading.get_ident() == self._thread:
            self._on_error(error)
        else:
            self._hand_over(self._on_error, error)

    def on_completed(self) -> None:
        if self._queued == 0 and threading.get_ident() == self._thread:
            self._on_completed()
        else:
            self._hand_over(lambda _: self._on_completed(), None)

    def _hand_over(self, callback: Callable[[Any], None], value: Any) -> None:
        with self._lock:
            self._queued += 1
        self._scheduler.call_soon(self._deliver, callback, value)

    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        with self._lock:
            self._queued -= 1
        callback(value)
