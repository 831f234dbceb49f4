"""Which units are in the pipeline, and how each one gives back its window place and its bytes.

A unit enters when the source hands it on and finishes when it reaches the end of the pipeline.
Any operator may drop it on the way (``filter``, ``take``, ``distinct``...); then it is not
declared, and its place and bytes come back through one of three doors:

- it is garbage collected: a weak reference notices at once (most dropped units);
- the source has to wait: while it waits for a place (or a download for bytes), units that have
  sat outside every pendingops operator for at least ``STALL_AFTER`` seconds stop counting. They
  were dropped but are still referenced elsewhere (the plugin's list of units), or are parked in a
  stock operator (``delay``, ``buffer_with_count`` waiting for more input). In a pipeline of our
  operators a unit is outside them only while it passes from one to the next, so the bound holds
  for everything our operators can see;
- the stream ends: whatever entered and did not finish is counted as dropped, exactly; unless the
  stream was cut off (interrupted, failed), when what was still inside it is not counted at all.

Garbage collection and stalls only decide *when* a place comes back; the counts come from the
stream's end, never from their timing.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Callable

from pendingops.flow.budget import ByteBudget
from pendingops.flow.scheduler import LoopScheduler
from pendingops.flow.window import Window
from pendingops.pending import PendingContent
from pendingops.progress import Progress

#: seconds a unit may sit outside our operators, while the source waits, before its place is given back
STALL_AFTER = 0.05


class _Ticket(weakref.ref):  # type: ignore[type-arg]
    """A unit's account while it is in the pipeline: a weak reference, so a dropped unit is noticed."""

    __slots__ = ("bytes", "inside", "key", "out_since", "passes", "places")

    def __init__(self, unit: PendingContent, on_collected: Callable[[_Ticket], None]) -> None:
        super().__init__(unit, on_collected)
        self.key = id(unit)
        self.passes = 0  # times it entered and has not finished (a source may yield one object twice)
        self.places = 0  # window places it still holds
        self.bytes = 0  # downloaded bytes it still holds against the budget
        self.inside = 0  # pendingops operators holding it right now
        self.out_since = 0  # the stall check's tick when it last left our operators


class Flow:
    """Flow control of one sync: the loop scheduler, the window, the byte budget and the unit accounts."""

    def __init__(self, window: int, max_pending_bytes: int, progress: Progress) -> None:
        self.window = Window(window)
        self.byte_budget = ByteBudget(max_pending_bytes)
        self.progress = progress
        self._seen = progress.stages["seen"]  # counted per unit: one attribute, not a dict lookup
        self.scheduler: LoopScheduler | None = None
        self.entered = 0
        self.finished = 0
        #: units noticed dropped while the stream ran (garbage collected before reaching the end)
        self.collected = 0
        #: units that entered and did not finish, counted when the stream ended
        self.dropped = 0
        self.max_in_flight = 0
        #: units whose place (or bytes) came back at a stall: none in a pipeline of our operators only
        self.given_back_at_stall = 0
        self._tickets: dict[int, _Ticket] = {}
        #: accounts of units outside our operators that still hold a place or bytes
        self._outside: dict[int, _Ticket] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._tick = 0

    @property
    def in_flight(self) -> int:
        """Units the source handed on that have neither finished nor been noticed dropped."""
        return self.entered - self.finished - max(self.collected, self.dropped)

    def bind(self, loop: asyncio.AbstractEventLoop, context: contextvars.Context) -> None:
        """Bridge to the sync's loop: call on it, with the sync's context current."""
        self.scheduler = LoopScheduler(loop, context)

    # -- units entering, moving, finishing -------------------------------------------------------

    def enter(self, unit: PendingContent) -> None:
        """The source hands ``unit`` on, with the window place it took for it."""
        key = id(unit)
        ticket = self._tickets.get(key)
        if ticket is not None and ticket() is not unit:
            self._collected(ticket)  # a dead unit's account, not yet closed, under a reused id
            ticket = None
        if ticket is None:
            ticket = self._tickets[key] = _Ticket(unit, self._on_collected)
        ticket.passes += 1
        ticket.places += 1
        if not ticket.inside:
            self._went_outside(ticket)
        self.entered += 1
        self._seen.done += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def accepted(self, unit: PendingContent) -> None:
        """A pendingops operator took ``unit`` in (its place stays taken however long it works)."""
        ticket = self._tickets.get(id(unit))
        if ticket is not None:
            if not ticket.inside:
                self._outside.pop(ticket.key, None)
            ticket.inside += 1

    def left(self, unit: PendingContent) -> None:
        """A pendingops operator passed ``unit`` on."""
        ticket = self._tickets.get(id(unit))
        if ticket is not None:
            ticket.inside -= 1
            if not ticket.inside:
                self._went_outside(ticket)

    def _went_outside(self, ticket: _Ticket) -> None:
        if ticket.places or ticket.bytes:
            ticket.out_since = self._tick
            self._outside[ticket.key] = ticket

    def hold(self, unit: PendingContent, nbytes: int) -> None:
        """``unit`` holds ``nbytes`` more of the byte budget (already reserved or added)."""
        unit.held_bytes += nbytes
        ticket = self._tickets.get(id(unit))
        if ticket is not None and ticket() is unit:
            ticket.bytes += nbytes

    def finish(self, unit: PendingContent) -> None:
        """``unit`` reached the end of the pipeline: its place and bytes come back."""
        ticket = self._tickets.get(id(unit))
        if ticket is None or ticket() is not unit:  # not from this sync's source: it holds no place
            if unit.held_bytes:
                self.byte_budget.release(unit.held_bytes)
                unit.held_bytes = 0
            return
        self.finished += 1
        ticket.passes -= 1
        if ticket.places:
            ticket.places -= 1
            self.window.release()
        if ticket.passes <= 0:
            del self._tickets[ticket.key]
            self._outside.pop(ticket.key, None)
            self._give_back(ticket, unit)

    # -- giving places back ------------------------------------------------------------------------

    def _on_collected(self, ticket: _Ticket) -> None:
        # Called by the garbage collector, on whatever thread let go of the unit last, possibly in
        # the middle of other work: only hand the account over to the loop.
        if self.scheduler is not None:
            self.scheduler.call_soon(self._collected, ticket)

    def _collected(self, ticket: _Ticket) -> None:
        if self._tickets.get(ticket.key) is not ticket:
            return  # finished, or settled when the stream ended
        del self._tickets[ticket.key]
        self._outside.pop(ticket.key, None)
        self._give_back(ticket, None)
        self.collected += ticket.passes
        self.progress.add("filtered", ticket.passes)

    def _give_back(self, ticket: _Ticket, unit: PendingContent | None) -> None:
        if ticket.places:
            self.window.release(ticket.places)
            ticket.places = 0
        if ticket.bytes:
            self.byte_budget.release(ticket.bytes)
            ticket.bytes = 0
        if unit is not None:
            unit.held_bytes = 0

    def start(self) -> None:
        """Watch for stalls while the stream runs."""
        assert self.scheduler is not None
        self._watchdog = self.scheduler.loop.call_later(STALL_AFTER, self._check_stall)

    def _check_stall(self) -> None:
        assert self.scheduler is not None
        self._tick += 1
        if self._outside and (self.window.waiting or self.byte_budget.waiting):
            # Outside since two ticks ago at least: for a whole STALL_AFTER, not passing between operators.
            parked = [t for t in self._outside.values() if self._tick - t.out_since >= 2]
            for ticket in parked:
                del self._outside[ticket.key]
                self._give_back(ticket, ticket())
            self.given_back_at_stall += len(parked)
        self._watchdog = self.scheduler.loop.call_later(STALL_AFTER, self._check_stall)

    def settle(self, *, cut_off: bool = False) -> int:
        """The stream ended: close every account and return how many units were dropped, exactly.

        ``cut_off``: the stream did not run to its end (an interruption, a failure). The units still
        in it were cut off, not dropped: only those noticed dropped while it ran count.
        """
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        dropped = self.entered - self.finished
        counted = self.collected if cut_off else dropped
        for ticket in self._tickets.values():
            self._give_back(ticket, ticket())
        self._tickets.clear()
        self._outside.clear()
        self.progress.add("filtered", counted - self.collected)
        self.dropped = dropped
        return counted
