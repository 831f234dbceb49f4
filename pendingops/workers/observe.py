"""What a worker says about each sync task: one log line when it starts, one when it ends (outcome,
duration, the new version or the one-line reason), and the worker's metrics.

Every line logged while the task runs carries its ``task`` and ``repository`` fields. procrastinate's
own lines about sync jobs say the same at greater length (the job's every argument, a traceback);
above the debug level they are left out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from procrastinate.exceptions import JobAborted

from pendingops.context import SyncResult
from pendingops.logs import log_fields
from pendingops.pending import describe_error
from pendingops.progress import ProgressListener, ProgressSnapshot
from pendingops.remote import strip_credentials
from pendingops.workers.metrics import record_sync

log = logging.getLogger("pendingops.worker")
#: procrastinate's line actions about one job's start and end
_JOB_LINES = frozenset(
    ("start_job", "job_success", "job_error", "job_error_retry", "job_aborted", "job_aborted_retry")
)


class SyncTaskReport:
    """Filled in by the task: the sync's result, and its progress (for the bytes it downloaded)."""

    def __init__(self) -> None:
        self.result: SyncResult | None = None
        self.progress: ProgressSnapshot | None = None
        #: who else hears of the progress (the task's progress record)
        self.listeners: list[ProgressListener] = []

    def on_progress(self, snapshot: ProgressSnapshot) -> None:
        self.progress = snapshot
        for listener in self.listeners:
            listener(snapshot)


@asynccontextmanager
async def observed_sync(task: int, repository: str, url: str) -> AsyncIterator[SyncTaskReport]:
    """Log the start and end of sync task ``task`` and count it; the block sets ``report.result``."""
    report = SyncTaskReport()
    with log_fields(task=task, repository=repository):
        log.info("started: sync of %s", strip_credentials(url))
        started = time.monotonic()
        try:
            yield report
        except BaseException as exc:
            _ended(report, _outcome(exc), time.monotonic() - started, exc)
            raise
        _ended(report, "succeeded", time.monotonic() - started, None)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, JobAborted):
        return "interrupted"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return "failed"


def _ended(report: SyncTaskReport, outcome: str, seconds: float, exc: BaseException | None) -> None:
    result = report.result
    version = result.version.number if result is not None and result.created else None
    fields = {"outcome": outcome, "duration_s": round(seconds, 3), "version": version}
    took = f"in {seconds:.2f} s"
    if outcome == "succeeded":
        log.info("succeeded %s: %s", took, _what_came_out(result), extra=fields)
    elif outcome == "failed":
        reason = describe_error(exc) if exc else ""
        traceback = exc if log.isEnabledFor(logging.DEBUG) else None  # else the reason says it in one line
        log.error("failed %s: %s", took, reason, extra={**fields, "error": reason}, exc_info=traceback)
    elif outcome == "cancelled":
        log.warning("cancelled %s; its version was discarded", took, extra=fields)
    else:
        log.warning("stopped by the worker's shutdown %s; its version was discarded; queued again", took, extra=fields)
    downloaded = report.progress.stages["downloaded"].bytes if report.progress is not None else 0
    added, removed = (result.added, result.removed) if result is not None and result.created else (0, 0)
    record_sync(outcome, seconds, added=added, removed=removed, downloaded=downloaded)


def _what_came_out(result: SyncResult | None) -> str:
    if result is None:
        return "no result"
    skipped = f"; {result.failed_count} unit(s) failed and were skipped" if result.failed_count else ""
    if result.remote_unchanged:
        return f"remote unchanged, no new version (stays at {result.version.number})"
    if not result.created:
        return f"nothing changed, no new version (stays at {result.version.number}){skipped}"
    return f"version {result.version.number} (+{result.added} added, -{result.removed} removed){skipped}"


def quiet_procrastinate_job_lines(task_name: str) -> None:
    """Leave out procrastinate's start and end lines of ``task_name`` jobs, but at the debug level."""
    logging.getLogger("procrastinate.worker").addFilter(_JobLineFilter(task_name))


class _JobLineFilter(logging.Filter):
    def __init__(self, task_name: str) -> None:
        super().__init__()
        self.task_name = task_name

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().isEnabledFor(logging.DEBUG) or record.__dict__.get("action") not in _JOB_LINES:
            return True
        job = record.__dict__.get("job")
        return not (isinstance(job, dict) and job.get("task_name") == self.task_name)
