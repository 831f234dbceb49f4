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
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from reactivex import Observable

from pendingops.db.database import Database, connection_lost
from pendingops.db.retry import OutageTooLong, retry_on_lost_connection
from pendingops.db.versions import NewVersion, VersionInfo, VersionLost, begin_version, ensure_remote, ensure_repository
from pendingops.download.fetcher import Fetcher
from pendingops.flow import ByteBudget, Flow, Units, paced_source
from pendingops.loop import uninterruptible
from pendingops.operators._associate import associate
from pendingops.pending import PendingContent, describe_error
from pendingops.progress import Progress, ProgressListener, ProgressReporter
from pendingops.remote import RemoteConfig
from pendingops.run import current
from pendingops.run.changes import refresh_after_sync, sync_changes
from pendingops.run.current import composing_context, context_for, current_context
from pendingops.run.outages import SyncLocks, transact_retried
from pendingops.run.outcome import ErrorPolicy, RemoteUnchanged, SyncFailed, SyncResult, UnitFailure
from pendingops.run.record import RunRecord
from pendingops.run.stream import run_stream
from pendingops.storage.base import ArtifactStorage, StorageUnavailable, set_retry_seconds
from pendingops.storage.owner import Claim, claim_in, settle_claim

__all__ = ["ErrorPolicy", "RemoteUnchanged", "SyncContext", "SyncFailed", "SyncResult", "UnitFailure"]
__all__ += ["composing_context", "context_for", "current_context"]

T = TypeVar("T")
logger = logging.getLogger("pendingops")
#: failures kept in memory for the report; the count is always exact
_MAX_REPORTED_FAILURES = 1000


class SyncContext:
    """One sync of one repository from one remote; an async context manager.

    Entering takes the repository's lock and starts an invisible new version; leaving makes it
    visible if ``run`` succeeded, and discards it otherwise (artifacts already downloaded stay in
    storage for the rerun). ``window`` bounds how many units the source may be ahead of the end
    of the pipeline, ``max_pending_bytes`` how many downloaded bytes they may hold; ``batch_size``
    is the size of every database batch. A database step that loses its connection (a server
    restart, a failover) is retried on a fresh one for ``db_retry_seconds``; a storage request that
    meets an outage (no connection, a timeout, a 5xx answer) is retried for ``storage_retry_seconds``,
    then the whole sync fails, whatever ``on_error`` says. ``repository_identity`` (a queued sync's):
    the repository must still be that one when the sync registers, else ``RepositoryGone``.
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
        repository_identity: tuple[int, str] | None = None,
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
        #: the (id, creation stamp) a queued sync was bound to: registering refuses any other repository
        self.repository_identity = repository_identity
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
        #: the plugin tables of the units that left the pipeline (their statistics may need a refresh)
        self._content_tables: set[str] = set()
        #: this run's record, and the shortcut decided from the previous one
        self._record = RunRecord()
        self._reporter = ProgressReporter(self.progress, on_progress, progress_interval)
        self._wait_for_lock = wait_for_lock
        self._locks: SyncLocks | None = None
        self._token: contextvars.Token[current.Sync] | None = None
        self._ran = False
        #: why ``run`` failed; a context whose run failed can only discard its version
        self._run_error: BaseException | None = None
        self._finish_tried = False

    # -- the remote-unchanged shortcut ----------------------------------------------------------

    @property
    def remote_unchanged(self) -> bool:
        """The sync ended at once (see ``index_unchanged``)."""
        return self._record.remote_unchanged

    def allow_shortcut(self, settings_digest: str, *, force: bool = False) -> None:
        """Let this sync end at once when the remote's index is unchanged (see ``index_unchanged``).

        ``settings_digest`` fingerprints what shapes the version besides the index; the storage is
        added to it. With ``force`` the sync never ends early, but it still records what it read, so
        the next one can.
        """
        self._record.allow_shortcut(settings_digest, self.storage, force=force)

    async def index_unchanged(self, index_digest: str) -> bool:
        """Note the digest of the remote index the source read; True when the sync ends here.

        It ends when ``allow_shortcut`` was called without ``force`` and the previous run of the
        repository completed without problems, read the same index with the same settings, and
        left the repository at the version that is still its latest (the base of this sync's, under
        the repository lock). The previous run was read when this one was recorded: no statement.
        """
        base = None if self.version is None else self.version.base_number
        return self._record.index_unchanged(index_digest, base)

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
        self._token = current.enter(self)
        self.flow.bind(asyncio.get_running_loop(), contextvars.copy_context())
        self._reporter.start()
        return self

    async def _enter_once(self) -> int:
        """Register, take the locks, start the version and the run record; undone whole if it fails.

        A lost connection half way undoes what was taken and the whole start is tried again (the
        version an earlier attempt may have left is this sync's own, discarded under the lock).
        """
        self.version, self._record.id = None, 0
        self.repository_id, self.remote_id, claim = await self.db.run(self._register)
        if claim.ownership is None:  # the storage's first use: its owner is recorded once the id is committed
            await asyncio.to_thread(settle_claim, self.storage, claim)
            self._record.storage_claimed = True  # what the base version needs may be elsewhere
        self._locks = SyncLocks(self.db, self.repository_id)
        try:
            await self._locks.acquire(wait=self._wait_for_lock)
            self.version = await self.db.run(begin_version, self.repository_id)
            self._record.id = await self.db.run(
                self._record.start, self.repository_id, self.remote_id, self.mirror
            )
            return await asyncio.to_thread(self.storage.remove_stale_temp_files)
        except BaseException as exc:
            # Undo whatever was taken, even when cancelled (a deadline on the sync) half way.
            await uninterruptible(self._undo_enter(exc))
            raise

    async def _undo_enter(self, exc: BaseException) -> None:
        try:
            if self.version is not None:
                await self._abandon_if_possible(describe_error(exc))
        finally:
            self._release_locks()

    def _release_locks(self) -> None:
        if self._locks is not None:
            self._locks.release()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.version is not None and self._locks is not None
        if self._token is not None:
            current.leave(self._token)
        self._reporter.stop()
        ran = self._ran or self.remote_unchanged
        forgot_run = SyncFailed("the sync context was left without calling run()") if not ran else None
        failure = exc or self._run_error or forgot_run
        # Finishing or discarding the version, then letting go of the locks, happens whole: a
        # cancellation meanwhile is held back until both are done, so no lock is ever released with
        # an incomplete version still in the database.
        await uninterruptible(self._finish(failure))
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
            self._reporter.report(finished=True)
        if self.result is not None:  # after the locks: analysing blocks no other sync
            changes = sync_changes(self.progress, self._content_tables, self.result.added, self.result.removed)
            await refresh_after_sync(self.db, changes)

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
        self.result = SyncResult(info, bool(added or removed), added, removed, self.failed_count, self.failures,
                                 self.filtered, self.remote_unchanged)

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
        assert self._locks is not None
        await asyncio.to_thread(self._locks.ensure_held)
        self._finish_tried = True
        return await self.db.run(self._record.complete, self)

    async def transact(
        self, fn: Callable[..., T], *args: Any, units: Sequence[PendingContent] = (), what: str | None = None
    ) -> T:
        """Run ``fn(connection, *args)`` in a transaction, retried on a fresh connection after an outage.

        The pipeline's database steps go through here. ``units`` are the units ``fn`` may change:
        before a retry they are put back as they were, since the failed transaction was rolled back,
        and the sync's locks are taken again if they went with the lost connection (what they guard
        is fenced by the version's own row). ``what`` names the step in messages.
        """
        what = what or fn.__name__.strip("_").replace("_", " ")
        return await transact_retried(self.db, self._locks, fn, *args, units=units, what=what,
                                      seconds=self.db_retry_seconds)

    async def _recorded_outcome(self) -> tuple[int, int, VersionInfo] | None:
        """(added, removed, version) if this run was recorded as completed, None if it was not."""
        assert self.version is not None
        return await self.db.run(self._record.recorded_outcome, self.repository, self.version.base_number)

    async def _abandon_if_possible(self, error: str) -> None:
        """Discard the version and record why; if the database is out of reach, the version stays
        invisible (incomplete) and the next sync of the repository discards it."""
        try:
            await self.db.run(self._record.abandon, self, error)
        except Exception as exc:
            if connection_lost(exc) is None:
                raise
            # The failure itself is reported by the caller, in one line; this is its detail.
            logger.debug("could not record the failed sync (%s); the next sync discards its version", exc)

    def _register(self, conn: Any) -> tuple[int, int, Claim]:
        claim = claim_in(conn, self.storage)  # another database's storage is refused, before anything is written
        repository_id = ensure_repository(conn, self.repository, identity=self.repository_identity)
        return repository_id, ensure_remote(conn, self.remote), claim

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
        if self._run_error is not None:
            raise SyncFailed(f"this sync already failed: {describe_error(self._run_error)}")
        if self.remote_unchanged:
            raise SyncFailed("this sync already ended: the remote is unchanged (a source kept going after index_read)")
        self._ran = True
        ended = False
        try:
            await run_stream(self.flow, pipeline.pipe(associate()), self._unit_out)
            ended = True
        except BaseException as exc:
            # Remembered, so the version cannot be finished however the caller handles this.
            self._run_error = self._run_error or exc
            raise
        finally:
            # Units an interruption or a failure cut off inside the pipeline were not dropped.
            self.filtered = self.flow.settle(cut_off=not ended)

    def _unit_out(self, unit: PendingContent) -> SyncFailed | None:
        """A unit left the pipeline: a failed one is recorded, and ends the sync under the ``fail`` policy."""
        if not unit.failed:
            self._content_tables.add(unit.content_type.__tablename__)
            return None
        self.failed_count += 1
        self.progress.add("failed")
        if len(self.failures) < _MAX_REPORTED_FAILURES:
            self.failures.append(UnitFailure(unit.describe(), unit.failed_stage or "?", unit.error or "?"))
        if self.on_error != "fail":
            return None
        failure = self.failures[-1]
        return SyncFailed(f"{failure.unit}: {failure.stage} failed: {failure.reason}", list(self.failures))
