"""The tasks users see: queued syncs by number (``task_numbers.py``), with their progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, text

from pendingops.db.database import Database
from pendingops.db.schema import SyncTask
from pendingops.remote import strip_credentials
from pendingops.workers.queue import STATES, SYNC_TASK, TaskInfo, list_tasks
from pendingops.workers.task_numbers import job_of, number_of, number_tasks

_task = SyncTask.__table__
#: the states ``tasks`` shows, and ``tasks --state`` takes
TASK_STATES = tuple(dict.fromkeys(STATES.values()))
#: the states a task ends in
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass(slots=True)
class TaskView:
    """One sync task as ``tasks`` shows it (``options`` only for ``tasks show``)."""

    task: int
    repository: str
    url: str
    state: str
    worker: str | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    #: seconds from the start to the end, or to now while it runs
    elapsed_s: float | None
    #: the version the sync made
    version: int | None
    #: why it failed (or was cancelled), in one line
    error: str | None
    #: units finished of units listed (None until the source says), bytes downloaded; None until recorded
    units_done: int | None
    units_total: int | None
    downloaded_bytes: int | None
    progress_at: datetime | None
    options: dict[str, Any] | None = None


def task_number(db: Database, job_id: int) -> int:
    """The number of sync job ``job_id`` (numbering it, and any before it, if not yet)."""
    return db.transact(number_of, job_id, SYNC_TASK)


def task_views(db: Database, *, number: int | None = None, state: str | None = None) -> list[TaskView]:
    """Every sync task (or task ``number``; or those in ``state``), oldest first."""
    if number is None:
        job_id = None
        db.transact(number_tasks, SYNC_TASK)
    else:
        job_id = db.transact(job_of, number, SYNC_TASK)
    infos = list_tasks(db, job_id)
    with db.engine.connect() as conn:
        query = select(_task).where(_task.c.number.is_not(None))
        if job_id is not None:
            query = query.where(_task.c.job_id == job_id)
        records = {row.job_id: row for row in conn.execute(query)}
        options = _options(conn, job_id) if job_id is not None else None
    now = datetime.now(UTC)
    views = [_view(info, records[info.id], now, options) for info in infos if info.id in records]
    if number is not None and not views:  # numbered, but the queue no longer has its job
        raise ValueError(f"no task {number}")
    return sorted((v for v in views if state is None or v.state == state), key=lambda view: view.task)


def _options(conn: Connection, job_id: int) -> dict[str, Any]:
    args = conn.execute(text("SELECT args FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}).scalar()
    options = dict(args or {})
    if isinstance(options.get("url"), str):
        options["url"] = strip_credentials(options["url"])
    return options


def _view(info: TaskInfo, record: Any, now: datetime, options: dict[str, Any] | None) -> TaskView:
    end = info.finished_at if info.state in FINISHED else now
    elapsed = None
    if info.started_at is not None and end is not None and info.state != "queued":
        elapsed = round(max(0.0, (end - info.started_at).total_seconds()), 3)
    return TaskView(
        task=record.number,
        repository=info.repository,
        url=strip_credentials(info.url),
        state=info.state,
        worker=info.worker,
        queued_at=info.queued_at,
        started_at=info.started_at,
        finished_at=info.finished_at,
        elapsed_s=elapsed,
        version=info.version,
        error=info.error,
        units_done=record.units_done,
        units_total=record.units_total,
        downloaded_bytes=record.bytes_done,
        progress_at=record.progress_at,
        options=options,
    )
