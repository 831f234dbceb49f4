"""A worker process: runs queued syncs, and re-queues the syncs of workers that died.

Each worker sends a heartbeat every ``heartbeat`` seconds. Every worker also looks, every
``heartbeat`` seconds, for running jobs whose worker has sent none for ``stalled_after`` seconds
(killed, or its host gone) and puts them back in the queue, so a dead worker's sync is taken up again
within about ``stalled_after + 2 * heartbeat`` seconds. The retry finds the artifacts the dead worker
stored and does not download them again. SIGTERM or SIGINT: the worker takes no new job and lets
the running ones finish for ``grace`` seconds; then it stops them (their versions are discarded)
and they go back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from procrastinate import App

from pendingops.workers.queue import WorkerRuntime

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkerSettings:
    concurrency: int = 1
    heartbeat: float = 5.0
    stalled_after: float = 30.0
    grace: float = 60.0


async def run_worker(app: App, runtime: WorkerRuntime, settings: WorkerSettings) -> None:
    """Run syncs from the queue until SIGTERM/SIGINT."""
    async with app.open_async():
        watcher = asyncio.create_task(_requeue_stalled(app, settings))
        try:
            await app.run_worker_async(
                name=runtime.name,
                concurrency=settings.concurrency,
                wait=True,
                shutdown_graceful_timeout=settings.grace,
                additional_context={"runtime": runtime},
                update_heartbeat_interval=settings.heartbeat,
                stalled_worker_timeout=settings.stalled_after,
                fetch_job_polling_interval=settings.heartbeat,
                abort_job_polling_interval=min(settings.heartbeat, 1.0),
            )
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def _requeue_stalled(app: App, settings: WorkerSettings) -> None:
    while True:
        await asyncio.sleep(settings.heartbeat)
        try:
            stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.stalled_after)
            for job in stalled:
                logger.warning("re-queueing job %s: its worker stopped sending heartbeats", job.id)
                await app.job_manager.retry_job(job)
        except Exception as exc:  # another worker re-queued it first, or the database blinked
            logger.info("stalled-job check: %s", exc)
