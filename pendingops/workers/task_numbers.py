"""Task numbers: what users call a queued sync, instead of the queue's job id.

The queue's job ids are shared with its internal jobs (the schedule checks), so they have gaps.
``number_tasks`` gives every sync job without a number the next ones, in job order, under a lock:
numbers are computed from the highest one in the same transaction (not drawn from a sequence, which
a rolled-back insert would leave a gap in), so they are 1, 2, 3... with no gap, and only sync jobs
have them. ``sync --enqueue`` numbers its job at once, a worker the job it starts (a schedule's), and
every ``tasks`` command any job still without one.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, text

from pendingops.db.schema import SyncTask

_task = SyncTask.__table__
_NUMBERING_LOCK_KEY = 0x70656E647461736B  # "pendtask"
_NUMBER = text(
    """
    INSERT INTO sync_task (job_id, number)
    SELECT todo.id, top.number + todo.rank
    FROM (SELECT j.id, row_number() OVER (ORDER BY j.id) AS rank
          FROM procrastinate_jobs j LEFT JOIN sync_task t ON t.job_id = j.id
          WHERE j.task_name = :task AND t.number IS NULL) AS todo,
         (SELECT coalesce(max(number), 0) AS number FROM sync_task) AS top
    ON CONFLICT (job_id) DO UPDATE SET number = excluded.number
    """
)


def number_tasks(conn: Connection, task_name: str) -> None:
    """Give every ``task_name`` job without a number the next ones, in the order they were queued."""
    if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _NUMBERING_LOCK_KEY})
    conn.execute(_NUMBER, {"task": task_name})


def number_of(conn: Connection, job_id: int, task_name: str) -> int:
    """The task number of job ``job_id`` (numbering it, and any job before it, if not yet)."""
    number = conn.execute(select(_task.c.number).where(_task.c.job_id == job_id)).scalar()
    if number is None:
        number_tasks(conn, task_name)
        number = conn.execute(select(_task.c.number).where(_task.c.job_id == job_id)).scalar_one()
    return int(number)


def job_of(conn: Connection, number: int, task_name: str) -> int:
    """The queue's job id of task ``number``; ValueError (one line) if there is none."""
    number_tasks(conn, task_name)
    job_id = conn.execute(select(_task.c.job_id).where(_task.c.number == number)).scalar()
    if job_id is None:
        raise ValueError(f"no task {number}")
    return int(job_id)
