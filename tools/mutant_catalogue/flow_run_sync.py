"""Mutants of pendingops/flow/, pendingops/run/ and pendingops/sync/: a sync's stream, records and outages."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T_CONTEXT, T_STOCK

MUTANTS: tuple[Mutant, ...] = (
    # -- 1: a version is visible if and only if its sync succeeded -----------------------------------
    Mutant(
        id="failing-source-completes",
        guarantee="1 visible iff success",
        file="pendingops/flow/source.py",
        why="a plugin source that raises ends the stream as if it were complete",
        old="""    except Exception as exc:  # the plugin's source failed: the whole sync fails
        observer.on_error(exc)""",
        new="""    except Exception:  # the plugin's source failed: the whole sync fails
        observer.on_completed()""",
        tests=(T_CONTEXT + "test_a_failing_source_fails_the_sync",),
    ),
    # -- failed units, mirror, window and byte budget ------------------------------------------------
    Mutant(
        id="failed-unit-keeps-window-place",
        guarantee="window bound; a sync ends",
        file="pendingops/flow/control.py",
        why="only units that succeed give their place in the window (and their bytes) back as they finish",
        old="""        self.finished += 1
        ticket.passes -= 1""",
        new="""        self.finished += 1
        if unit.failed:
            return
        ticket.passes -= 1""",
        tests=(T_CONTEXT + "test_failed_units_give_their_window_place_back",),
    ),
    Mutant(
        id="failed-unit-keeps-bytes",
        guarantee="byte budget released; a sync ends",
        file="pendingops/flow/control.py",
        why="only units that succeed give their downloaded bytes back to the budget",
        old="""            self._give_back(ticket, unit)""",
        new="""            if not unit.failed:
                self._give_back(ticket, unit)""",
        tests=("tests/test_budget.py::test_units_failing_after_their_download_give_their_bytes_back",),
    ),
    # -- any reactivex operator composes with ours ----------------------------------------------------
    Mutant(
        id="collected-unit-keeps-place",
        guarantee="a dropped unit never deadlocks",
        file="pendingops/flow/control.py",
        why="a unit dropped by a filter and garbage collected is not noticed: its place waits for a stall",
        old="""        if self.scheduler is not None:
            self.scheduler.call_soon(self._collected, ticket)""",
        new="""        pass""",
        tests=(T_STOCK + "test_a_dropped_unit_gives_its_place_back_when_collected_or_at_a_stall[sqlite-True]",),
    ),
    Mutant(
        id="no-stall-door",
        guarantee="a dropped unit never deadlocks",
        file="pendingops/flow/control.py",
        why="units parked outside our operators (dropped but held by the plugin's list) never give their place back",
        old="""        if self._outside and (self.window.waiting or self.byte_budget.waiting):""",
        new="""        if False:""",
        tests=(T_STOCK + "test_a_dropped_unit_gives_its_place_back_when_collected_or_at_a_stall[sqlite-False]",),
    ),
    Mutant(
        id="filtered-count-from-gc",
        guarantee="a dropped unit is counted exactly",
        file="pendingops/flow/control.py",
        why="the filtered count is what garbage collection noticed, not what entered and did not finish",
        old="""        dropped = self.entered - self.finished""",
        new="""        dropped = self.collected""",
        tests=(T_STOCK + "test_a_stock_operator_composes_with_ours[sqlite-filter-before]",),
    ),
    Mutant(
        id="no-loop-scheduler",
        guarantee="stock operators run on the loop",
        file="pendingops/run/stream.py",
        why="the pipeline is subscribed without the loop scheduler: delay emits from reactivex's timer threads",
        old="""    subscription = pipeline.subscribe(observer, scheduler=flow.scheduler)""",
        new="""    subscription = pipeline.subscribe(observer)""",
        tests=(T_STOCK + "test_a_stock_operator_composes_with_ours[sqlite-delay-between]",),
    ),
    Mutant(
        id="emissions-not-handed-over",
        guarantee="stock operators run on the loop",
        file="pendingops/flow/scheduler.py",
        why="an emission from another thread reaches our operator on that thread",
        old="""    def on_next(self, value: Any) -> None:
        if self._queued == 0 and threading.get_ident() == self._thread:""",
        new="""    def on_next(self, value: Any) -> None:
        if True:""",
        tests=(T_STOCK + "test_a_stock_operator_composes_with_ours[sqlite-observe_on(NewThreadScheduler)-before]",),
    ),
    # -- review fixes: versions, locks, immutability, orphans (issue: correctness and scale) ---------
    Mutant(
        id="retry-keeps-rolled-back-state",
        guarantee="1 visible iff success (outages: a retried batch)",
        file="pendingops/run/outages.py",
        why="a batch retried after a lost connection keeps the row ids its rolled-back attempt gave the units",
        old="        restore_units_db_state(units, state)\n",
        new="        pass\n",
        tests=("tests/test_outages.py",),
        databases="postgresql",
    ),
    Mutant(
        id="cleanup-during-outage-unnoticed",
        guarantee="3 never run without the lock (outages: orphans)",
        file="pendingops/run/outages.py",
        why="a sync that took its lost store lock again goes on though an orphan cleanup ran meanwhile",
        old="            if lock is self.store and self.db.transact(latest_cleanup) != self.cleanups_seen:",
        new="            if False:",
        tests=("tests/test_outages.py",),
        databases="postgresql",
    ),
    # -- tests that catch plausible bugs, round 2: where two rules meet ---------------------------------
    Mutant(
        id="retry-retakes-store-lock-only",
        guarantee="3 one writer per repository (outages)",
        file="pendingops/run/outages.py",
        why="after an outage only the store lock is taken again: another sync of the repository runs meanwhile",
        old="""        for lock in (self.store, self.repository):""",
        new="""        for lock in (self.store,):""",
        tests=("tests/test_outages.py::test_after_an_outage_retry_the_repository_lock_is_held_again",),
        databases="postgresql",
    ),
    # -- ssrf: private destinations, on-demand bounds, single flight, cooldown per file, inert answers -------
    Mutant(
        id="private-leave-not-remembered",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/run/record.py",
        why="what a sync ran with is not remembered: a later sync, serve and repair ignore the operator's choice",
        old="""private_destinations.remember(conn, sync.repository_id, sync.remote.allow_private_destinations)""",
        new="""None""",
        tests=(
            "tests/db/test_private_destinations.py::test_a_repository_remembers_what_its_last_successful_sync_ran_with",
            "tests/security/test_private_destinations.py::test_private_destinations_the_operator_allowed_are_remembered_for_serving",
        ),
        databases="both",
    ),
    # -- the seams between features: the shortcut and the storage, outage output, interrupted counts ---
    Mutant(
        id="worker-skips-retention",
        guarantee="9 one path per job",
        file="pendingops/sync/run.py",
        why="retention runs on by-hand syncs only: a queued sync leaves every version (issue 26, item 1)",
        old="""    removed = await asyncio.to_thread(apply_retention, db, request.repository, request.retain)""",
        new="""    removed = (
        []
        if request.repository_id is not None
        else await asyncio.to_thread(apply_retention, db, request.repository, request.retain)
    )""",
        tests=("tests/workers/test_one_path.py::test_the_worker_applies_remembered_and_queued_retention",),
        databases="postgresql",
    ),
    Mutant(
        id="queued-sync-recreates-deleted-repository",
        guarantee="deleting a repository is final for the queue",
        file="pendingops/sync/run.py",
        why="a queued sync does not check its repository is the one it was queued for: it creates it again",
        old="""    if request.repository_id is not None:
        await db.run(""",
        new="""    if False:
        await db.run(""",
        tests=(
            "tests/workers/test_one_path.py::"
            "test_a_queued_sync_that_meets_a_deleted_repository_fails_in_one_line_and_creates_nothing",
        ),
        databases="postgresql",
    ),
    Mutant(
        id="credentials-go-into-the-queue",
        guarantee="5 secrets never printed or stored",
        file="pendingops/sync/request.py",
        why="sync --enqueue and schedule add store a user:password@ URL, shown by tasks and schedule list",
        old="""    if user or password:""",
        new="""    if False:""",
        tests=("tests/workers/test_one_path.py::test_credentials_in_a_queued_or_scheduled_url_are_refused",),
        databases="postgresql",
    ),
    Mutant(
        id="shortcut-ignores-storage",
        guarantee="1 the shortcut only when the storage holds the base version",
        file="pendingops/run/record.py",
        why="the storage is not in the fingerprint: a sync into another storage of this database ends at once",
        old='        identity = f"{settings_digest}\\n{storage_identity(storage)}"',
        new='        identity = f"{settings_digest}\\n"',
        tests=("tests/test_shortcut_storage.py::test_a_storage_this_database_already_owns_is_part_of_the_fingerprint",),
        databases="both",
    ),
    Mutant(
        id="shortcut-on-first-claim",
        guarantee="1 the shortcut only when the storage holds the base version",
        file="pendingops/run/record.py",
        why="a storage claimed for the first time (an emptied folder) lets the sync end at once: files missing",
        old="""        if self.force or self.storage_claimed:""",
        new="""        if self.force:""",
        tests=("tests/test_shortcut_storage.py::test_a_storage_folder_emptied_and_claimed_again_runs_the_whole_sync",),
        databases="both",
    ),
    Mutant(
        id="outage-lock-release-noise",
        guarantee="an outage that outlasts the retry is one line",
        file="pendingops/run/outages.py",
        why="a lock whose session the outage took is reported as a failed release, with its traceback",
        old='logger.debug("could not release %s cleanly"',
        new='logger.warning("could not release %s cleanly"',
        tests=("tests/test_outage_output.py::test_an_outage_longer_than_the_retry_is_one_line",),
        databases="postgresql",
    ),
    Mutant(
        id="cut-off-drops-forgotten",
        guarantee="filtered counts only units a pipeline dropped",
        file="pendingops/flow/control.py",
        why="after an interruption not even the units a filter dropped are counted",
        old="""        counted = self.collected if cut_off else dropped""",
        new="""        counted = 0 if cut_off else dropped""",
        tests=("tests/test_interrupted_counts.py::test_units_a_filter_dropped_before_the_interruption_still_count",),
        databases="both",
    ),
)
