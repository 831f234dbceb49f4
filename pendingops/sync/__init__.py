"""One sync path: a ``SyncRequest`` and ``run_sync``, which ``pendingops sync``, the queue's workers and
the schedules all call, so no behaviour exists on one path only."""

from pendingops.sync.request import SyncRequest
from pendingops.sync.run import RepositoryGone, SyncOutcome, run_sync

__all__ = ["RepositoryGone", "SyncOutcome", "SyncRequest", "run_sync"]
