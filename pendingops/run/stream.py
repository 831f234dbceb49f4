"""Running a sync's stream: subscribe the pipeline on the loop scheduler and wait for its end.

The pipeline is subscribed with the scheduler of the sync's flow, so reactivex's time-based
operators run on the event loop. The first failure ends the wait: an error of a stage, or a unit
the caller's ``on_unit`` says fails the sync (the ``fail`` policy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from reactivex import Observable

from pendingops.db.database import connection_lost
from pendingops.flow import Flow, LoopObserver
from pendingops.pending import PendingContent, describe_error
from pendingops.run.outcome import SyncFailed


async def run_stream(
    flow: Flow, pipeline: Observable[PendingContent], on_unit: Callable[[PendingContent], SyncFailed | None]
) -> None:
    """Run ``pipeline`` to its end; each unit out of it is counted out of ``flow``, then given to ``on_unit``.

    Raises ``SyncFailed`` for the first failure: what ``on_unit`` returned, a lost database
    connection, or any other error of a stage. The subscription is disposed however it ends.
    """
    assert flow.scheduler is not None
    done: asyncio.Future[None] = flow.scheduler.loop.create_future()

    def on_next(unit: PendingContent) -> None:
        flow.finish(unit)
        failure = on_unit(unit)
        if failure is not None and not done.done():
            done.set_exception(failure)

    def on_error(exc: Exception) -> None:
        if not done.done():
            lost = connection_lost(exc)
            if isinstance(exc, SyncFailed):
                failure = exc
            elif lost is not None:
                failure = SyncFailed(f"{lost}; no new version; rerun to continue")
            else:
                failure = SyncFailed(describe_error(exc))  # callers say "sync failed"
            done.set_exception(failure)

    def on_completed() -> None:
        if not done.done():
            done.set_result(None)

    observer = LoopObserver(flow.scheduler, on_next, on_error, on_completed)
    flow.start()
    subscription = pipeline.subscribe(observer, scheduler=flow.scheduler)
    try:
        await done
    finally:
        subscription.dispose()
