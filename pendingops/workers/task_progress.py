"""A running sync task's progress, recorded where ``pendingops tasks`` reads it.

The worker's sync reports a snapshot every half second or so; the latest one is written to the
task's ``sync_task`` row at most once a ``interval`` seconds (one small UPDATE), and the last one
received is written when the sync ends, so a finished task keeps its final counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, update

from pendingops.db.database import Database
from pendingops.db.schema import SyncTask
from pendingops.progress import ProgressListener, ProgressSnapshot

log = logging.getLogger("pendingops.worker")
_task = SyncTask.__table__
#: the stages whose units are finished: put in the version, already there, failed, or dropped
_FINISHED = ("associated", "present", "failed", "filtered")


class _Reported(Protocol):
    listeners: list[ProgressListener]


def units_done(snapshot: ProgressSnapshot) -> int:
    """Units the sync is through with (in the version, already there, failed or filtered out)."""
    return max(sum(snapshot.done(stage) for stage in _FINISHED), snapshot.done("saved"))


class _Recorder:
    def __init__(self, db: Database, job_id: int, interval: float) -> None:
        self.db, self.job_id, self.interval = db, job_id, interval
        self.latest: ProgressSnapshot | None = None
        self.written: ProgressSnapshot | None = None
        self.writer: asyncio.Task[None] | None = None

    def on_progress(self, snapshot: ProgressSnapshot) -> None:
        self.latest = snapshot
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write_while_new())

    async def _write_while_new(self) -> None:
        while self.latest is not self.written:
            await self.write()
            await asyncio.sleep(self.interval)

    async def write(self, *, again: bool = False) -> None:
        """Write the latest snapshot if not written yet (``again``: even if, as a stopped write may be lost)."""
        snapshot = self.latest
        if snapshot is None or (snapshot is self.written and not again):
            return
        self.written = snapshot
        try:
            await self.db.run(_store, self.job_id, snapshot)
        except Exception as exc:  # a progress line is not worth failing the sync for
            log.warning("could not record the sync's progress: %s", exc)


def _store(conn: Connection, job_id: int, snapshot: ProgressSnapshot) -> None:
    values: dict[str, Any] = {
        "units_done": units_done(snapshot),
        "units_total": snapshot.stages["seen"].total,
        "bytes_done": snapshot.stages["downloaded"].bytes,
        "progress_at": datetime.now(UTC),
    }
    conn.execute(update(_task).where(_task.c.job_id == job_id).values(**values))


@contextlib.asynccontextmanager
async def recorded_progress(db: Database, job_id: int, report: _Reported, interval: float = 1.0) -> AsyncIterator[None]:
    """Record the progress ``report`` receives on task ``job_id``'s row while the block runs."""
    recorder = _Recorder(db, job_id, interval)
    report.listeners.append(recorder.on_progress)
    try:
        yield
    finally:
        report.listeners.remove(recorder.on_progress)
        if recorder.writer is not None:
            recorder.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder.writer
        await asyncio.shield(recorder.write(again=True))
