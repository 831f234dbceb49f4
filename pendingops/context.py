"""The sync context: binds database, storage, remote and the version being built.

Operators find the context of the sync they run in when they are subscribed, so a pipeline reads
as the design card says (flow control, the window, the byte budget and the loop scheduler the
pipeline runs on, lives in ``pendingops.flow``)::

    async with SyncContext(db, storage, remote, "my-repo", mirror=True) as sync:
        await sync.run(sync.source(units).pipe(ops.dedup(), ops.download(n=10), ops.save()))
    print(sync.result.version)
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

from reactivex import Observable, abc
from sqlalchemy import select

from pendingops.db import private_destinations
from pendingops.db.cleanups import latest_cleanup
from pendingops.db.database import Database, connection_lost
from pendingops.db.locks import LockBusy, RepositoryLock, StoreLock
from pendingops.db.retry import OutageTooLong, retry_on_lost_connection
from pendingops.db.schema import ProgressReport, SyncRun
from pendingops.db.versions import (
    NewVersion,
    VersionInfo,
    VersionLost,
    begin_version,
    discard_version,
    ensure_remote,
    ensure_repository,
    finish_version,
    version_info,
)
from pendingops.download.fetcher import Fetcher
from pendingops.flow import ByteBudget, Flow, LoopObserver, LoopScheduler, Units, paced_source
from pendingops.pending import PendingContent, describe_error, restore_units_db_state, units_db_state
from pendingops.progress import Progress, ProgressListener
from pendingops.remote import RemoteConfig
from pendingops.storage.base import ArtifactStorage, StorageUnavailable, set_retry_seconds
from pendingops.storage.owner import Claim, claim_in, settle_claim

ErrorPolicy = Literal["fail", "skip"]
T = TypeVar("T")
logger = logging.getLogger("pendingops")
_current: contextvars.ContextVar[SyncContext] = contextvars.ContextVar("pendingops_sync_context")
#: failures kept in memory for the report; the count is always exact
_MAX_REPORTED_FAILURES = 1000


class RemoteUnchanged(Exception):
    """Raised by ``index_read`` inside a plugin's source: the sync ends here, with no new version."""


class SyncFailed(RuntimeError):
    """The sync did not produce a version; ``failures`` lists the units that failed, if any."""

    def __init__(self, message: str, failures: list[UnitFailure] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


@dataclass(frozen=True, slots=True)
class UnitFailure:
    """One content unit that could not be added, and why."""

    unit: str
    stage: str
    reason: str


@dataclass(slots=True)
class SyncResult:
    """What a finished sync did. ``created`` is false when nothing changed (no new version).

    ``filtered`` counts the units the source emitted that an operator dropped on the way (a
    ``filter``, ``take``, ``distinct``...): they were not declared. ``remote_unchanged`` says the
    sync ended at once: the remote's index and the settings were those of the previous run, and
    the repository had not changed since.
    """

    version: VersionInfo
    created: bool
    added: int
    removed: int
    failed_count: int
    failures: list[UnitFailure] = field(default_factory=list)
    filtered: int = 0
    remote_unchanged: bool = False


def current_context() -> SyncContext:
    """The sync the calling code runs in; operators use it at subscribe time."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "pendingops operators must run inside a sync: use 'async with SyncContext(...) as sync' "
            "and 'await sync.run(...)'"
        ) from None


def context_for(scheduler: abc.SchedulerBase | None, composed_in: SyncContext | None = None) -> SyncContext:
    """The sync an operator is subscribed in, even on another thread (after ``subscribe_on``).

    The running code's sync first, then the one whose loop scheduler subscribes it, then the one
    the pipeline was composed in; a clear error when there is none.
    """
    ctx = _current.get(None)
    if ctx is None and isinstance(scheduler, LoopScheduler):
        ctx = scheduler.context.get(_current)
    return ctx or composed_in or current_context()


def composing_context() -> SyncContext | None:
    """The sync a pipeline is being composed in, if any (operators remember it when applied)."""
    return _current.get(None)


class SyncContext:
    """One sync of one repository from one remote; an async context manager.

    Entering takes the repository's lock and starts an invisible new version; leaving makes it
    visible if ``run`` succeeded, and discards it otherwise (artifacts already downloaded stay in
    storage for the rerun). ``window`` bounds how many units the source may be ahead of the end
    of the pipeline, ``max_pending_bytes`` how many downloaded bytes they may hold; ``batch_size``
    is the size of every database batch. A database step that loses its connection (a server
    restart, a failover) is retried on a fresh one for ``db_retry_seconds``; a storage request that
    meets an outage (no connection, a timeout, a 5xx answer) is retried for ``storage_retry_seconds``,
    then the whole sync fails, whatever ``on_error`` says.
    """

    def __init__(
        self,
        db: Database,
        storage: ArtifactStorage,
        remote: RemoteConfig,
        repository: str,
        *,
        mirror: bool = False,
        on_error: ErrorPolicy = "fail",
        batch_size: int = 1000,
        window: int = 5000,
        batch_wait: float = 0.1,
        batch_max_wait: float = 5.0,
        on_progress: ProgressListener | None = None,
        progress_interval: float = 0.5,
        wait_for_lock: bool = True,
        max_pending_bytes: int = 2 * 1024**3,
        db_retry_seconds: float = 30.0,
        storage_retry_seconds: float = 30.0,
    ) -> None:
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        if batch_size < 1 or window < 1:
            raise ValueError("batch_size and window must be at least 1")
        if db_retry_seconds < 0:
            raise ValueError("db_retry_seconds must not be negative")
        if storage_retry_seconds < 0:
            raise ValueError("storage_retry_seconds must not be negative")
        set_retry_seconds(storage, storage_retry_seconds)
        self.db = db
        self.storage = storage
        self.remote = remote
        self.repository = repository
        self.mirror = mirror
        self.on_error = on_error
        self.batch_size = batch_size
        self.window = window
        self.batch_wait = batch_wait
        self.batch_max_wait = batch_max_wait
        #: how long a database step that lost its connection is retried on a fresh one
        self.db_retry_seconds = db_retry_seconds
        self.progress = Progress()
        self.failures: list[UnitFailure] = []
        self.failed_count = 0
        self.result: SyncResult | None = None
        self.repository_id = 0
        self.remote_id = 0
        self.version: NewVersion | None = None
        self.fetcher = Fetcher(remote, storage, connections=0)
        #: the window, the byte budget and the accounts of units in the pipeline
        self.flow = Flow(window, max_pending_bytes, self.progress)
        self.filtered = 0
        #: stored files found missing from storage (fetched again): a run that found any is no
        #: base for the remote-unchanged shortcut of the next one
        self.missing_files = 0
        #: the sync ended at once (see ``index_unchanged``)
        self.remote_unchanged = False
        self._settings_digest: str | None = None
        self._index_digest: str | None = None
        self._force = False
        #: (state, index digest, settings digest, latest version) of the repository's previous run
        self._previous_run: tuple[Any, ...] | None = None
        self._on_progress = on_progress
        self._progress_interval = progress_interval
        self._wait_for_lock = wait_for_lock
        self._lock: RepositoryLock | None = None
        self._store_lock: StoreLock | None = None
        self._token: contextvars.Token[SyncContext] | None = None
        self._ran = False
        #: why ``run`` failed; a context whose run failed can only discard its version
        self._run_error: BaseException | None = None
        self._run_id = 0
        self._finish_tried = False
        #: the latest orphan cleanup when the store lock was taken (see ``_ensure_locks_held``)
        self._cleanups_seen = 0
        self._ticker: asyncio.Task[None] | None = None

    # -- the remote-unchanged shortcut ----------------------------------------------------------

    def allow_shortcut(self, settings_digest: str, *, force: bool = False) -> None:
        """Let this sync end at once when the remote's index is unchanged (see ``index_unchanged``).

        ``settings_digest`` fingerprints what shapes the version besides the index. With ``force``
        the sync never ends early, but it still records what it read, so the next one can.
        """
        self._settings_digest = settings_digest
        self._force = force

    async def index_unchanged(self, index_digest: str) -> bool:
        """Note the digest of the remote index the source read; True when the sync ends here.

        It ends when ``allow_shortcut`` was called without ``force`` and the previous run of the
        repository completed without problems, read the same index with the same settings, and
        left the repository at the version that is still its latest (the base of this sync's, under
        the repository lock). The previous run was read when this one was recorded: no statement.
        """
        if self._settings_digest is None or self.version is None:
            return False
        self._index_digest = index_digest
        if self._force:
            return False
        expected = ("completed", index_digest, self._settings_digest, self.version.base_number)
        self.remote_unchanged = self._previous_run == expected
        return self.remote_unchanged

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> SyncContext:
        try:
            removed = await retry_on_lost_connection(
                self._enter_once, seconds=self.db_retry_seconds, what="starting the sync"
            )
        except OutageTooLong as exc:
            raise SyncFailed(f"{exc}; no new version; rerun to continue") from None
        except StorageUnavailable as exc:
            raise SyncFailed(f"{exc}; no new version; rerun") from None
        if removed:
            logger.info("removed %d temporary file(s) left by an interrupted sync", removed)
        self._token = _current.set(self)
        self.flow.bind(asyncio.get_running_loop(), contextvars.copy_context())
        if self._on_progress is not None:
            self._ticker = asyncio.create_task(self._tick())
        return self

    async def _enter_once(self) -> int:
        """Register, take the locks, start the version and the run record; undone whole if it fails.

        A lost connection half way undoes what was taken and the whole start is tried again (the
        version an earlier attempt may have left is this sync's own, discarded under the lock).
        """
        self.version, self._run_id = None, 0
        self.repository_id, self.remote_id, claim = await self.db.run(self._register)
        if claim.ownership is None:  # the storage's first use: its owner is recorded once the id is committed
            await asyncio.to_thread(settle_claim, self.storage, claim)
        self._store_lock = StoreLock(self.db, shared=True)
        self._lock = RepositoryLock(self.db, self.repository_id)
        try:
            await self._store_lock.acquire(wait=self._wait_for_lock)
            self._cleanups_seen = await self.db.run(latest_cleanup)
            await self._lock.acquire(wait=self._wait_for_lock)
            self.version = await self.db.run(begin_version, self.repository_id)
            self._run_id = await self.db.run(self._start_run)
            return await asyncio.to_thread(self.storage.remove_stale_temp_files)
        except BaseException as exc:
            # Undo whatever was taken, even when cancelled (a deadline on the sync) half way.
            await _uninterruptible(self._undo_enter(exc))
            raise

    async def _undo_enter(self, exc: BaseException) -> None:
        try:
            if self.version is not None:
                await self._abandon_if_possible(describe_error(exc))
        finally:
            self._release_locks()

    def _release_locks(self) -> None:
        for lock in (self._lock, self._store_lock):
            if lock is not None and lock.held:
                try:
                    lock.release()
                except Exception:  # the lock's connection is gone, and with it the lock
                    logger.warning("could not release %s cleanly", type(lock).__name__, exc_info=True)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.version is not None and self._lock is not None
        if self._token is not None:
            _current.reset(self._token)
        if self._ticker is not None:
            self._ticker.cancel()
        ran = self._ran or self.remote_unchanged
        forgot_run = SyncFailed("the sync context was left without calling run()") if not ran else None
        failure = exc or self._run_error or forgot_run
        # Finishing or discarding the version, then letting go of the locks, happens whole: a
        # cancellation meanwhile is held back until both are done, so no lock is ever released with
        # an incomplete version still in the database.
        await _uninterruptible(self._finish(failure))
        if exc is None and failure is not None:
            raise failure

    async def _finish(self, failure: BaseException | None) -> None:
        try:
            await self.fetcher.close()
            if failure is None:
                await self._complete_or_explain()
            else:
                await self._abandon_if_possible(str(failure) or type(failure).__name__)
        finally:
            self._release_locks()
            self._report_progress(finished=True)

    async def _complete_or_explain(self) -> None:
        """Finish the version, riding out a short database outage; report what the database stored."""
        try:
            added, removed, info = await retry_on_lost_connection(
                self._complete_once, seconds=self.db_retry_seconds, what="finishing the version"
            )
        except VersionLost as exc:  # fenced: the version went to another sync; record the failure
            await self._abandon_if_possible(str(exc))
            raise SyncFailed(str(exc)) from None
        except OutageTooLong as exc:
            added, removed, info = await self._outcome_after_outage(exc)
        except SyncFailed as exc:  # a lock lost and not safely taken again
            await self._abandon_if_possible(str(exc))
            raise
        self.progress.add("removed", removed)
        self.result = SyncResult(
            info,
            bool(added or removed),
            added,
            removed,
            self.failed_count,
            self.failures,
            self.filtered,
            self.remote_unchanged,
        )

    async def _outcome_after_outage(self, outage: OutageTooLong) -> tuple[int, int, VersionInfo]:
        """The finish failed for good: what the database holds decides what is reported."""
        try:
            recorded = await self._recorded_outcome() if self._finish_tried else None
        except Exception as exc:
            if connection_lost(exc) is None:
                raise
            raise SyncFailed(
                f"{outage}; whether the version was finished is unknown until the database is back "
                f"('pendingops versions {self.repository}' tells; a rerun completes it if not)"
            ) from None
        if recorded is None:
            await self._abandon_if_possible(str(outage))
            raise SyncFailed(f"{outage}; no new version; rerun to continue")
        return recorded

    async def _complete_once(self) -> tuple[int, int, VersionInfo]:
        # A commit may reach the server with only its answer lost: the run record, written in the
        # same transaction, says whether an earlier attempt finished the version.
        if self._finish_tried:
            recorded = await self._recorded_outcome()
            if recorded is not None:
                return recorded
        await asyncio.to_thread(self._ensure_locks_held)
        self._finish_tried = True
        return await self.db.run(self._complete)

    async def transact(
        self, fn: Callable[..., T], *args: Any, units: Sequence[PendingContent] = (), what: str | None = None
    ) -> T:
        """Run ``fn(connection, *args)`` in a transaction, retried on a fresh connection after an outage.

        The pipeline's database steps go through here. ``units`` are the units ``fn`` may change:
        before a retry they are put back as they were, since the failed transaction was rolled back,
        and the sync's locks are taken again if they went with the lost connection (what they guard
        is fenced by the version's own row). ``what`` names the step in messages.
        """
        state = units_db_state(units)

        async def before_retry() -> None:
            restore_units_db_state(units, state)
            await asyncio.to_thread(self._ensure_locks_held)

        try:
            return await retry_on_lost_connection(
                lambda: self.db.run(fn, *args),
                seconds=self.db_retry_seconds,
                what=what or fn.__name__.strip("_").replace("_", " "),
                before_retry=before_retry,
            )
        except OutageTooLong as exc:
            raise SyncFailed(f"{exc}; no new version; rerun to continue") from None

    def _ensure_locks_held(self) -> None:
        """Notice a lock lost with its database session, and take it again.

        Writing and finishing are fenced by the version's own row (another sync that took the lock
        would have discarded it), so a lock taken again after nobody else used it is safe to go on
        under. A database still out of reach raises its connection error (the caller retries).
        """
        for lock in (self._store_lock, self._lock):
            if lock is None:
                continue
            try:
                retaken = lock.ensure_held()
            except LockBusy as exc:
                raise SyncFailed(f"lost the {lock.name} and could not take it again ({describe_error(exc)}); "
                                 "no new version; rerun") from None
            if not retaken:
                continue
            logger.warning("the database session holding the %s was lost; it was taken again", lock.name)
            if lock is self._store_lock and self.db.transact(latest_cleanup) != self._cleanups_seen:
                raise SyncFailed(
                    "an orphan cleanup ran while this sync had lost its store lock (a database outage); files it "
                    "downloaded may be gone; no new version; rerun"
                )

    async def _recorded_outcome(self) -> tuple[int, int, VersionInfo] | None:
        """(added, removed, version) if this run was recorded as completed, None if it was not."""

        def read(conn: Any) -> tuple[int, int, VersionInfo] | None:
            runs = SyncRun.__table__
            state, number = conn.execute(
                select(runs.c.state, runs.c.version_number).where(runs.c.id == self._run_id)
            ).one()
            if state != "completed":
                return None
            assert self.version is not None
            info = version_info(conn, self.repository, self.version.base_number if number is None else number)
            return (info.added, info.removed, info) if number is not None else (0, 0, info)

        return await self.db.run(read)

    async def _abandon_if_possible(self, error: str) -> None:
        """Discard the version and record why; if the database is out of reach, the version stays
        invisible (incomplete) and the next sync of the repository discards it."""
        try:
            await self.db.run(self._abandon, error)
        except Exception as exc:
            if connection_lost(exc) is None:
                raise
            logger.warning("could not record the failed sync (%s); the next sync discards its version", exc)

    async def _tick(self) -> None:
        while self._on_progress is not None:
            await asyncio.sleep(self._progress_interval)
            self._report_progress()

    def _report_progress(self, *, finished: bool = False) -> None:
        if self._on_progress is None:
            return
        try:
            self._on_progress(self.progress.snapshot(finished=finished))
        except Exception:  # a broken display must not stop the sync, nor go unnoticed
            logger.exception("the on_progress callback failed; progress reports stop")
            self._on_progress = None

    def _register(self, conn: Any) -> tuple[int, int, Claim]:
        claim = claim_in(conn, self.storage)  # another database's storage is refused, before anything is written
        return ensure_repository(conn, self.repository), ensure_remote(conn, self.remote), claim

    def _start_run(self, conn: Any) -> int:
        """Record this run, after reading the previous one (for ``index_unchanged``); runs of the
        repository still marked running ended unrecorded (we hold its lock)."""
        table = SyncRun.__table__
        conn.execute(
            table.update()
            .where(table.c.repository_id == self.repository_id, table.c.state == "running")
            .values(
                state="failed",
                error="ended without recording its outcome (killed, or the database was lost); no new version",
                finished_at=datetime.now(UTC),
            )
        )
        previous = conn.execute(
            select(table.c.state, table.c.index_digest, table.c.settings_digest, table.c.latest_version)
            .where(table.c.repository_id == self.repository_id)
            .order_by(table.c.id.desc())
            .limit(1)
        ).first()
        self._previous_run = None if previous is None else tuple(previous)
        return conn.execute(
            table.insert()
            .values(repository_id=self.repository_id, remote_id=self.remote_id, mirror=self.mirror, state="running")
            .returning(table.c.id)
        ).scalar_one()

    def _complete(self, conn: Any) -> tuple[int, int, VersionInfo]:
        """Finish the version and record the run, in one transaction: visible and recorded together."""
        assert self.version is not None
        private_destinations.remember(conn, self.repository_id, self.remote.allow_private_destinations)
        if self.remote_unchanged:  # nothing was declared: the empty version goes
            discard_version(conn, self.repository_id, self.version)
            info = version_info(conn, self.repository, self.version.base_number)
            self._end_run(conn, "completed", None, None, latest=info.number)
            return 0, 0, info
        added, removed = finish_version(conn, self.repository_id, self.version, mirror=self.mirror)
        created = bool(added or removed)
        info = version_info(conn, self.repository, self.version.number if created else self.version.base_number)
        self._end_run(conn, "completed", info.number if created else None, None, removed=removed, latest=info.number)
        return added, removed, info

    def _abandon(self, conn: Any, error: str) -> None:
        """Discard the version (downloaded artifacts stay) and record why, in one transaction."""
        assert self.version is not None
        discard_version(conn, self.repository_id, self.version)
        if self._run_id:
            self._end_run(conn, "failed", None, error)

    def _end_run(
        self,
        conn: Any,
        state: str,
        number: int | None,
        error: str | None,
        *,
        removed: int = 0,
        latest: int | None = None,
    ) -> None:
        runs = SyncRun.__table__
        # Only a run without problems may let the next one end at once: a unit that failed, or a
        # stored file found missing, is tried again by a full sync.
        clean = state == "completed" and not self.failed_count and not self.missing_files
        conn.execute(
            runs.update()
            .where(runs.c.id == self._run_id)
            .values(
                state=state,
                version_number=number,
                error=error,
                failed_units=self.failed_count,
                finished_at=datetime.now(UTC),
                index_digest=self._index_digest if clean else None,
                settings_digest=self._settings_digest if clean else None,
                latest_version=latest,
                remote_unchanged=self.remote_unchanged and state == "completed",
            )
        )
        rows = [
            {
                "sync_run_id": self._run_id,
                "stage": name,
                "done": s.done + (removed if name == "removed" else 0),
                "total": s.total,
                "bytes": s.bytes,
            }
            for name, s in self.progress.stages.items()
        ]
        conn.execute(ProgressReport.__table__.insert().values(rows))  # one multi-row statement

    @property
    def byte_budget(self) -> ByteBudget:
        """Bytes downloaded by units not yet through the pipeline (bounds disk use)."""
        return self.flow.byte_budget

    @property
    def in_flight(self) -> int:
        """Units pulled from the source and not yet out of the pipeline."""
        return self.flow.in_flight

    @property
    def max_in_flight(self) -> int:
        return self.flow.max_in_flight

    # -- the stream ------------------------------------------------------------------------------

    def source(self, units: Units, *, total: int | None = None) -> Observable[PendingContent]:
        """Turn the plugin's units into an Observable pulled at the pace the pipeline absorbs.

        Iterables and async iterables are read one unit at a time, and only while fewer than
        ``window`` units are inside the pipeline. An Observable cannot be paced (Rx has no
        backpressure): its units are queued as they come.
        """
        if total is None and hasattr(units, "__len__"):
            total = len(units)  # type: ignore[arg-type]
        self.progress.set_total(total)
        return paced_source(self.flow, units)

    async def run(self, pipeline: Observable[PendingContent]) -> None:
        """Run the pipeline to its end, associating every unit that reaches it with the new version.

        The pipeline is subscribed with a scheduler on this loop, so reactivex's time-based operators
        run on it. A unit an operator drops is not declared (counted in ``SyncResult.filtered``).
        Raises ``SyncFailed`` when a unit fails under the ``fail`` policy or a stage errors.
        """
        from pendingops.operators._associate import associate

        if self._run_error is not None:
            raise SyncFailed(f"this sync already failed: {describe_error(self._run_error)}")
        if self.remote_unchanged:
            raise SyncFailed("this sync already ended: the remote is unchanged (a source kept going after index_read)")
        self._ran = True
        flow = self.flow
        assert flow.scheduler is not None
        done: asyncio.Future[None] = flow.scheduler.loop.create_future()

        def on_next(unit: PendingContent) -> None:
            flow.finish(unit)
            if unit.failed:
                self._record_failure(unit)
                if self.on_error == "fail" and not done.done():
                    failure = self.failures[-1]
                    done.set_exception(
                        SyncFailed(f"{failure.unit}: {failure.stage} failed: {failure.reason}", list(self.failures))
                    )

        def on_error(exc: Exception) -> None:
            if not done.done():
                lost = connection_lost(exc)
                if isinstance(exc, SyncFailed):
                    failure = exc
                elif isinstance(exc, StorageUnavailable):
                    failure = SyncFailed(f"{exc}; no new version; rerun")
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
        subscription = pipeline.pipe(associate()).subscribe(observer, scheduler=flow.scheduler)
        try:
            await done
        except BaseException as exc:
            # Remembered, so the version cannot be finished however the caller handles this.
            self._run_error = self._run_error or exc
            raise
        finally:
            subscription.dispose()
            self.filtered = flow.settle()

    def _record_failure(self, unit: PendingContent) -> None:
        self.failed_count += 1
        self.progress.add("failed")
        if len(self.failures) < _MAX_REPORTED_FAILURES:
            self.failures.append(UnitFailure(unit.describe(), unit.failed_stage or "?", unit.error or "?"))


async def _uninterruptible(work: Awaitable[None]) -> None:
    """Run ``work`` to its end even if the caller is cancelled meanwhile; then pass the cancellation on."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
