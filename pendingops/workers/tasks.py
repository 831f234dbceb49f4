"""The tasks users see: queued syncs by number (``task_numbers.py``), with their progress."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from pendingops.db.database import Database
from pendingops.remote import strip_credentials
from pendingops.workers.queue import FINISHED, STATES, SYNC_TASK, TaskInfo, list_tasks
from pendingops.workers.task_numbers import job_of, number_of, number_tasks

__all__ = ["FINISHED", "TASK_STATES", "TaskInfo", "task_number", "task_views"]

#: the states ``tasks`` shows, and ``tasks --state`` takes
TASK_STATES = tuple(dict.fromkeys(STATES.values()))


def task_number(db: Database, job_id: int) -> int:
    """The number of sync job ``job_id`` (numbering it, and any before it, if not yet)."""
    return db.transact(number_of, job_id, SYNC_TASK)


def task_views(db: Database, *, number: int | None = None, state: str | None = None) -> list[TaskInfo]:
    """Every sync task (or task ``number``, with its options; or those in ``state``), oldest first."""
    if number is None:
        job_id = None
        db.transact(number_tasks, SYNC_TASK)
    else:
        job_id = db.transact(job_of, number, SYNC_TASK)
    views = [info for info in list_tasks(db, job_id) if info.task is not None]
    if number is not None and not views:  # numbered, but the queue no longer has its job
        raise ValueError(f"no task {number}")
    if job_id is not None:
        views[0].options = _options(db, job_id)
    return sorted((v for v in views if state is None or v.state == state), key=lambda view: view.task or 0)


def _options(db: Database, job_id: int) -> dict[str, Any]:
    with db.engine.connect() as conn:
        query = text("SELECT args FROM procrastinate_jobs WHERE id = :id")
        args = conn.execute(query, {"id": job_id}).scalar()
    options = dict(args or {})
    if isinstance(options.get("url"), str):
        options["url"] = strip_credentials(options["url"])
    return options
