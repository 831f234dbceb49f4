"""Riding out a database outage: a transaction that lost its connection is retried on a fresh one.

A restart or a failover of the database server breaks every open connection. The transaction
that was running is rolled back by the server, so running it again from the start is safe, as
long as whatever the caller changed in memory during the failed attempt is put back first
(``before_retry``). Retries go on with a growing pause until ``seconds`` have passed since the
first failure; then the last connection error is raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pendingops.db.database import connection_lost

T = TypeVar("T")
logger = logging.getLogger("pendingops")

#: the first pause after a lost connection, and the longest
FIRST_PAUSE, LONGEST_PAUSE = 0.2, 5.0


class OutageTooLong(Exception):
    """The database stayed out of reach for the whole retry time (one line, for reports)."""

    def __init__(self, reason: str, what: str, waited: float) -> None:
        retried = f"; retried for {waited:.0f} s" if waited else ""
        super().__init__(f"{reason} during {what}{retried}")


async def retry_on_lost_connection(
    attempt: Callable[[], Awaitable[T]],
    *,
    seconds: float,
    what: str,
    before_retry: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Await ``attempt()``; while it fails on a lost database connection, pause and call it again.

    ``before_retry`` runs before each new attempt (restore state, take lost locks again); a lost
    connection there counts as one more failed attempt. Other errors pass through at once. With
    ``seconds`` 0 the first lost connection raises ``OutageTooLong``.
    """
    loop = asyncio.get_running_loop()
    started: float | None = None
    pause = FIRST_PAUSE
    while True:
        try:
            if started is not None and before_retry is not None:
                await before_retry()
            return await attempt()
        except Exception as exc:
            reason = connection_lost(exc)
            if reason is None:
                raise
            now = loop.time()
            if started is None:
                started = now
            waited = now - started
            if waited >= seconds:
                raise OutageTooLong(reason, what, waited) from exc
            wait = min(pause, seconds - waited)
            # Debug only: an outage the retry rides out costs a pause, and one it does not is
            # reported once, by whoever gives up (one line, not one per attempt).
            logger.debug("%s during %s; trying again in %.1f s", reason, what, wait)
            await asyncio.sleep(wait)
            pause = min(pause * 2, LONGEST_PAUSE)
