"""The locks a sync keeps and the database steps it retries, through a database outage.

A sync holds the store lock shared (no orphan cleanup meanwhile) and its repository's lock. Both
live on a database session: an outage can take them along. A step that lost its connection is tried
again on a fresh one, after the locks are taken again (what they guard is fenced by the version's
own row); a cleanup that ran while the store lock was gone ends the sync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pendingops.db.cleanups import latest_cleanup
from pendingops.db.database import Database
from pendingops.db.locks import LockBusy, RepositoryLock, StoreLock
from pendingops.db.retry import OutageTooLong, retry_on_lost_connection
from pendingops.pending import PendingContent, describe_error, restore_units_db_state, units_db_state
from pendingops.run.outcome import SyncFailed

T = TypeVar("T")
logger = logging.getLogger("pendingops")


class SyncLocks:
    """The store lock (shared) and the repository lock of one sync."""

    def __init__(self, db: Database, repository_id: int) -> None:
        self.db = db
        self.store = StoreLock(db, shared=True)
        self.repository = RepositoryLock(db, repository_id)
        #: the latest orphan cleanup when the store lock was taken (see ``ensure_held``)
        self.cleanups_seen = 0

    async def acquire(self, *, wait: bool) -> None:
        """Take the store lock, note the latest cleanup, then take the repository lock."""
        await self.store.acquire(wait=wait)
        self.cleanups_seen = await self.db.run(latest_cleanup)
        await self.repository.acquire(wait=wait)

    def ensure_held(self) -> None:
        """Notice a lock lost with its database session, and take it again.

        Writing and finishing are fenced by the version's own row (another sync that took the lock
        would have discarded it), so a lock taken again after nobody else used it is safe to go on
        under. A database still out of reach raises its connection error (the caller retries).
        """
        for lock in (self.store, self.repository):
            try:
                retaken = lock.ensure_held()
            except LockBusy as exc:
                raise SyncFailed(f"lost the {lock.name} and could not take it again ({describe_error(exc)}); "
                                 "no new version; rerun") from None
            if not retaken:
                continue
            logger.warning("the database session holding the %s was lost; it was taken again", lock.name)
            if lock is self.store and self.db.transact(latest_cleanup) != self.cleanups_seen:
                raise SyncFailed(
                    "an orphan cleanup ran while this sync had lost its store lock (a database outage); files it "
                    "downloaded may be gone; no new version; rerun"
                )

    def release(self) -> None:
        """Let go of both locks; one whose connection is gone went with it."""
        for lock in (self.repository, self.store):
            if lock.held:
                try:
                    lock.release()
                except Exception:  # the lock's connection is gone, and with it the lock
                    logger.warning("could not release %s cleanly", type(lock).__name__, exc_info=True)


async def transact_retried(
    db: Database,
    locks: SyncLocks | None,
    fn: Callable[..., T],
    *args: Any,
    units: Sequence[PendingContent],
    what: str,
    seconds: float,
) -> T:
    """Run ``fn(connection, *args)`` in a transaction, retried on a fresh connection after an outage.

    Before a retry the ``units`` ``fn`` may change are put back as they were (the failed transaction
    was rolled back) and the locks are taken again. An outage longer than ``seconds`` fails the sync.
    """
    state = units_db_state(units)

    async def before_retry() -> None:
        restore_units_db_state(units, state)
        if locks is not None:
            await asyncio.to_thread(locks.ensure_held)

    try:
        return await retry_on_lost_connection(
            lambda: db.run(fn, *args), seconds=seconds, what=what, before_retry=before_retry
        )
    except OutageTooLong as exc:
        raise SyncFailed(f"{exc}; no new version; rerun to continue") from None
