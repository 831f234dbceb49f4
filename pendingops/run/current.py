"""The sync the calling code runs in: what an operator or a plugin may use of it, and how it is found.

Operators find their sync when they are subscribed (``context_for``) or composed
(``composing_context``). They see it through ``Sync``, so they need not import the sync context,
which itself appends the association operator to every pipeline.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from reactivex import abc

from pendingops.db.database import Database
from pendingops.db.versions import NewVersion
from pendingops.download.fetcher import Fetcher
from pendingops.flow import ByteBudget, Flow, LoopScheduler
from pendingops.pending import PendingContent
from pendingops.progress import Progress
from pendingops.remote import RemoteConfig
from pendingops.storage.base import ArtifactStorage

T = TypeVar("T")


class Sync(Protocol):
    """What the operators and plugins of a sync use of it (``pendingops.context.SyncContext`` is one)."""

    db: Database
    storage: ArtifactStorage
    remote: RemoteConfig
    repository: str
    repository_id: int
    remote_id: int
    mirror: bool
    batch_size: int
    batch_wait: float
    batch_max_wait: float
    progress: Progress
    version: NewVersion | None
    fetcher: Fetcher
    flow: Flow
    missing_files: int
    failed_count: int

    @property
    def byte_budget(self) -> ByteBudget: ...

    async def transact(
        self, fn: Callable[..., T], *args: Any, units: Sequence[PendingContent] = (), what: str | None = None
    ) -> T: ...

    async def index_unchanged(self, index_digest: str) -> bool: ...


_current: contextvars.ContextVar[Sync] = contextvars.ContextVar("pendingops_sync_context")


def current_context() -> Sync:
    """The sync the calling code runs in; operators use it at subscribe time."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "pendingops operators must run inside a sync: use 'async with SyncContext(...) as sync' "
            "and 'await sync.run(...)'"
        ) from None


def context_for(scheduler: abc.SchedulerBase | None, composed_in: Sync | None = None) -> Sync:
    """The sync an operator is subscribed in, even on another thread (after ``subscribe_on``).

    The running code's sync first, then the one whose loop scheduler subscribes it, then the one
    the pipeline was composed in; a clear error when there is none.
    """
    ctx = _current.get(None)
    if ctx is None and isinstance(scheduler, LoopScheduler):
        ctx = scheduler.context.get(_current)
    return ctx or composed_in or current_context()


def composing_context() -> Sync | None:
    """The sync a pipeline is being composed in, if any (operators remember it when applied)."""
    return _current.get(None)


def enter(sync: Sync) -> contextvars.Token[Sync]:
    """Make ``sync`` the one the calling code runs in, until ``leave`` with the token."""
    return _current.set(sync)


def leave(token: contextvars.Token[Sync]) -> None:
    """Undo ``enter``."""
    _current.reset(token)
