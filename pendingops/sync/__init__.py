"""One sync path: a ``SyncRequest`` and ``run_sync``, which ``pendingops sync``, the queue's workers and
the schedules all call, so no behaviour exists on one path only.

The names are loaded on first use: building a request (the command line's parsers do) must not import
the sync machinery (the HTTP client, the stream library)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pendingops.sync.request import SyncRequest
    from pendingops.sync.run import RepositoryGone, SyncOutcome, run_sync

__all__ = ["RepositoryGone", "SyncOutcome", "SyncRequest", "run_sync"]

_HOME = {"SyncRequest": "request", "RepositoryGone": "run", "SyncOutcome": "run", "run_sync": "run"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'pendingops.sync' has no attribute {name!r}")
    return getattr(import_module(f"pendingops.sync.{_HOME[name]}"), name)
