"""Riding out a storage outage: retry a storage call with growing pauses, then fail the sync in one line.

A call that fails on a connection error, a timeout or a 5xx/SlowDown answer is tried again with a
growing pause until ``seconds`` have passed since the outage began. An outage begins at the first
failure after the storage last answered, and every call of the storage shares that clock: when the
storage stays down, all of them give up together, within ``seconds`` plus one timeout, and the
error they raise is ``StorageUnavailable`` (a sync-level failure, never a per-unit skip).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pendingops.storage.base import StorageUnavailable

T = TypeVar("T")

#: the first pause after a failed storage call, doubled after each further failure up to the longest
FIRST_PAUSE = 0.25
LONGEST_PAUSE = 5.0


class Transient(Exception):
    """A storage call failed in a way a later attempt may not (raised by a backend to ``ride_out``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutageClock:
    """When the storage's current outage began (None while it answers), and how long it is ridden out."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.began: float | None = None
        #: a call gave up on the current outage (its StorageUnavailable was raised)
        self.gave_up = False

    def answered(self) -> None:
        self.began = None
        self.gave_up = False

    def failed(self, now: float) -> float:
        """Note a failure at ``now``; return when the outage began."""
        if self.began is None:
            self.began = now
        return self.began


async def ride_out(attempt: Callable[[], Awaitable[T]], clock: OutageClock, where: str) -> T:
    """``attempt()``, tried again on ``Transient`` failures until the outage outlasts ``clock.seconds``."""
    first_failure: float | None = None
    pause = FIRST_PAUSE
    while True:
        try:
            result = await attempt()
        except Transient as exc:
            now = time.monotonic()
            began = clock.failed(now)
            first_failure = now if first_failure is None else first_failure
            start = min(began, first_failure)
            remaining = clock.seconds - (now - start)
            if remaining <= 0:
                clock.gave_up = True
                raise StorageUnavailable(
                    f"storage {where} unreachable for {now - start:.0f} s ({exc.reason})"
                ) from None
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, LONGEST_PAUSE)
            continue
        clock.answered()
        return result
