"""The sync queue on procrastinate: its app, the sync task, enqueueing, listing and cancelling.

Jobs live in the PostgreSQL database that holds the repositories (procrastinate's tables, created
by ``ensure_queue_schema`` the first time a worker starts or a sync is queued). A sync job carries
``lock`` and ``queueing_lock`` = ``sync:REPOSITORY``: two syncs of one repository never run at
once (and the repository's advisory lock still guards against syncs run outside the queue), and
queueing a repository that already has a queued sync keeps the one queued.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued, JobAborted
from procrastinate.job_context import AbortReason
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from pendingops.context import SyncResult
from pendingops.db.database import Database, dialect_insert
from pendingops.db.schema import SyncTask
from pendingops.pending import describe_error
from pendingops.remote import strip_credentials
from pendingops.storage.base import ArtifactStorage
from pendingops.sync import SyncRequest, run_sync
from pendingops.workers.observe import SyncTaskReport, observed_sync
from pendingops.workers.task_numbers import number_of
from pendingops.workers.task_progress import recorded_progress

SYNC_TASK = "pendingops.sync"
_SCHEMA_LOCK_KEY = 0x70656E6471756575  # "pendqueu"
#: procrastinate's job states, as ``pendingops tasks`` shows them
STATES = {
    "todo": "queued",
    "doing": "running",
    "aborting": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "aborted": "cancelled",
}


class QueueUnavailable(ValueError):
    """The queue cannot be used with this database (it needs PostgreSQL)."""


#: the states a task ends in
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass(slots=True)
class TaskInfo:
    """One queued sync as ``tasks`` lists it; its fields, in order, are ``tasks --json``'s keys.

    ``options`` is filled only for ``tasks show``; ``task`` is None until the job is numbered.
    """

    #: the number users know it by (``task_numbers.py``)
    task: int | None
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


def require_postgresql(db_url: str, what: str) -> None:
    if make_url(db_url).get_backend_name() != "postgresql":
        raise QueueUnavailable(f"{what} needs a PostgreSQL database (--db postgresql://...); this one is SQLite")


def make_app(db_url: str) -> App:
    """The procrastinate app on ``db_url``'s database, with the sync task registered.

    A worker's app also checks the schedules (``workers.schedule.register_tick``).
    """
    conninfo = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    app = App(connector=PsycopgConnector(conninfo=conninfo))
    # Only a job stopped by its worker's shutdown (SIGTERM) goes back to the queue; a failed sync
    # or a cancelled one does not.
    retry = RetryStrategy(max_attempts=100, retry_exceptions={JobAborted})
    app.task(name=SYNC_TASK, pass_context=True, retry=retry)(_run_sync)
    return app


async def _run_sync(context: Any, **arguments: Any) -> None:
    db, job = context.additional_context["runtime"].db, context.job.id
    number = await db.run(number_of, job, SYNC_TASK)  # the task's number, as users know it
    observed = observed_sync(number, arguments["repository"], arguments["url"])
    async with observed as report, recorded_progress(db, job, report):
        report.result = await _sync(context, report, **arguments)


async def _sync(context: Any, report: SyncTaskReport, **arguments: Any) -> SyncResult:
    request = SyncRequest.from_args(arguments)
    runtime: WorkerRuntime = context.additional_context["runtime"]
    job_id = context.job.id
    await runtime.db.run(_record, job_id, worker=runtime.name, version_number=None, error=None)
    try:
        outcome = await run_sync(request, db=runtime.db, storage=runtime.storage, on_progress=report.on_progress)
    except asyncio.CancelledError:
        # The version was discarded. Stopped by its worker's shutdown: back to the queue (the retry
        # strategy takes JobAborted only); cancelled by ``tasks cancel``: cancelled for good.
        if context.abort_reason() == AbortReason.SHUTDOWN:
            raise JobAborted("the worker shut down") from None
        raise
    except Exception as exc:
        await runtime.db.run(_record, job_id, worker=runtime.name, version_number=None, error=describe_error(exc))
        raise
    result = outcome.result
    version = result.version.number if result.created else None
    await runtime.db.run(_record, job_id, worker=runtime.name, version_number=version, error=None)
    return result


@dataclass(slots=True)
class WorkerRuntime:
    """What the sync task uses in a worker process: its database, storage and name."""

    db: Database
    storage: ArtifactStorage
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def _record(conn: Connection, job_id: int, **values: Any) -> None:
    table = SyncTask.__table__
    stmt = dialect_insert(conn.dialect.name, table).values(job_id=job_id, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=[table.c.job_id], set_=values))


def ensure_queue_schema(db: Database, app: App) -> bool:
    """Create procrastinate's tables if missing (one process at a time); True if created now."""
    with db.engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        with conn.connection.cursor() as cursor:  # the raw cursor: the SQL has '%' signs and no parameters
            cursor.execute(app.schema_manager.get_schema())
    return True


async def enqueue(app: App, request: SyncRequest) -> tuple[int, bool]:
    """Queue a sync; return ``(job id, True)``, or the already queued job's ``(id, False)``.

    A URL with credentials is refused (``CredentialsInURL``): job arguments are stored and listed.
    """
    lock = f"sync:{request.repository}"
    task = app.tasks[SYNC_TASK].configure(lock=lock, queueing_lock=lock)
    try:
        return await task.defer_async(**request.as_args()), True
    except AlreadyEnqueued:
        async with app.connector.pool.connection() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
            await cursor.execute(
                "SELECT id FROM procrastinate_jobs WHERE queueing_lock = %s AND status = 'todo'", (lock,)
            )
            row = await cursor.fetchone()
        if row is None:  # it started meanwhile: queue again
            return await enqueue(app, request)
        return row[0], False


_LIST = text(
    """
    SELECT j.id, j.args, j.status, t.worker, t.version_number, t.error, t.number,
           t.units_done, t.units_total, t.bytes_done, t.progress_at,
           (SELECT min(e.at) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type = 'deferred') AS queued_at,
           (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type = 'started') AS started_at,
           (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id
             AND e.type IN ('succeeded', 'failed', 'cancelled', 'aborted')) AS finished_at
    FROM procrastinate_jobs j LEFT JOIN sync_task t ON t.job_id = j.id
    WHERE j.task_name = :task AND (CAST(:id AS bigint) IS NULL OR j.id = :id)
    ORDER BY j.id
    """
)


def list_tasks(db: Database, job_id: int | None = None) -> list[TaskInfo]:
    """Every queued sync (or the one ``job_id`` names), oldest first, with its progress record."""
    with db.engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
            return []
        rows = conn.execute(_LIST, {"task": SYNC_TASK, "id": job_id}).all()
    now = datetime.now(UTC)
    return [_task_info(row, now) for row in rows]


def _task_info(row: Any, now: datetime) -> TaskInfo:
    state = STATES.get(row.status, row.status)
    finished = row.finished_at if state in FINISHED else None
    started = row.started_at  # of the latest attempt; a re-queued task keeps it
    end = finished if state in FINISHED else now
    elapsed = None
    if started is not None and end is not None and state != "queued":
        elapsed = round(max(0.0, (end - started).total_seconds()), 3)
    return TaskInfo(
        task=row.number,
        repository=row.args.get("repository", ""),
        url=strip_credentials(row.args.get("url", "")),
        state=state,
        worker=row.worker,
        queued_at=row.queued_at,
        started_at=started,
        finished_at=finished,
        elapsed_s=elapsed,
        version=row.version_number,
        error=row.error if state in ("failed", "cancelled") else None,
        units_done=row.units_done,
        units_total=row.units_total,
        downloaded_bytes=row.bytes_done,
        progress_at=row.progress_at,
    )


async def cancel(app: App, job_id: int) -> bool:
    """Cancel a queued task, or ask a running one to stop; False if it had finished already."""
    return await app.job_manager.cancel_job_by_id_async(job_id, abort=True)


def queued_syncs(db: Database, repository: str) -> list[int]:
    """The ids of ``repository``'s syncs waiting in the queue (none on SQLite, which has no queue)."""
    if db.engine.dialect.name != "postgresql":
        return []
    with db.engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
            return []
        found = conn.execute(
            text(
                "SELECT id FROM procrastinate_jobs WHERE task_name = :task AND status = 'todo'"
                " AND args->>'repository' = :repository ORDER BY id"
            ),
            {"task": SYNC_TASK, "repository": repository},
        )
        return list(found.scalars())


async def cancel_all(app: App, job_ids: list[int]) -> int:
    """Cancel the queued syncs ``job_ids``; return how many were cancelled (others had started or ended)."""
    cancelled = 0
    async with app.open_async():
        for job_id in job_ids:
            cancelled += bool(await cancel(app, job_id))
    return cancelled
