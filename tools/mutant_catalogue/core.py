"""Mutants of the modules at the top of pendingops/: context, declarative, loop, paths, pending, readable, testing."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T_CONTEXT, T_DECL, T_RELEASE2

MUTANTS: tuple[Mutant, ...] = (
    # -- the loop a sync runs on ----------------------------------------------------------------------
    Mutant(
        id="sync-gc-thresholds-not-restored",
        guarantee="run leaves the process as it found it",
        file="pendingops/loop.py",
        why="the collector's thresholds a sync raised stay raised in the process after run returns",
        old="""    finally:
        gc.set_threshold(*before)""",
        new="""    finally:
        pass""",
        tests=("tests/test_loop.py::test_run_collects_young_objects_less_often_and_puts_the_thresholds_back",),
    ),
    Mutant(
        id="sync-gc-thresholds-lowered",
        guarantee="run leaves the process as it found it",
        file="pendingops/loop.py",
        why="a process that asked for fewer collections gets the sync's lower thresholds",
        old="""max(mine, theirs) for mine, theirs""",
        new="""mine for mine, theirs""",
        tests=("tests/test_loop.py::test_run_collects_young_objects_less_often_and_puts_the_thresholds_back",),
    ),
    # -- 1: a version is visible if and only if its sync succeeded -----------------------------------
    Mutant(
        id="fail-policy-ignored",
        guarantee="1 visible iff success",
        file="pendingops/context.py",
        why="under on_error='fail' a failed unit no longer fails the sync: the version becomes visible",
        old="""        if self.on_error != "fail":""",
        new="""        if self.on_error == "fail":""",
        tests=(T_DECL + "test_fail_policy_keeps_the_version_and_the_downloaded_artifacts",),
    ),
    Mutant(
        id="cancelled-sync-completes",
        guarantee="1 visible iff success",
        file="pendingops/context.py",
        why="only Exceptions count as failures: a cancelled sync (BaseException) makes its version visible",
        old="""        failure = exc or self._run_error or forgot_run""",
        new="""        failure = next((e for e in (exc, self._run_error) if isinstance(e, Exception)), forgot_run)""",
        tests=(T_CONTEXT + "test_a_cancelled_sync_leaves_no_version",),
    ),
    # -- 4: every remote is hostile; 5: secrets -------------------------------------------------------
    Mutant(
        id="dotdot-path-accepted",
        guarantee="4 data never names local files",
        file="pendingops/paths.py",
        why="a '..' segment in a relative path is accepted (only '.' is refused)",
        old="""        if segment in (".", ".."):""",
        new="""        if segment == ".":""",
        tests=("tests/plugins/test_file.py::test_bad_manifest_is_refused_and_nothing_is_written[sqlite-dotdot]",),
    ),
    # -- review fixes: versions, locks, immutability, orphans (issue: correctness and scale) ---------
    Mutant(
        id="run-failure-forgotten",
        guarantee="1 visible iff success",
        file="pendingops/context.py",
        why="a failed run() caught by the caller inside the block lets the version be finished",
        old="""            self._run_error = self._run_error or exc""",
        new="""            pass""",
        tests=(T_CONTEXT + "test_a_run_failure_caught_inside_the_context_never_publishes_a_version",),
    ),
    Mutant(
        id="exit-interruptible",
        guarantee="3 no lock released before the version is discarded",
        file="pendingops/context.py",
        why="a cancellation during the exit releases the locks while the incomplete version still exists",
        old="""        await uninterruptible(self._finish(failure))""",
        new="""        await self._finish(failure)""",
        tests=(T_CONTEXT + "test_a_cancelled_exit_keeps_the_lock_until_the_version_is_discarded",),
    ),
    Mutant(
        id="lost-connection-unexplained",
        guarantee="1 the reported outcome is the stored outcome (outages)",
        file="pendingops/context.py",
        why="a finish that failed for good is reported as a failure without reading what was stored",
        old="            recorded = await self._recorded_outcome() if self._finish_tried else None",
        new="            recorded = None",
        tests=("tests/test_outages.py",),
        databases="postgresql",
    ),
    Mutant(
        id="finish-retried-blindly",
        guarantee="1 the reported outcome is the stored outcome (outages)",
        file="pendingops/context.py",
        why="a finish retried after a lost answer runs again without asking whether the commit landed",
        old="        if self._finish_tried:\n",
        new="        if False:\n",
        tests=("tests/test_outages.py",),
        databases="postgresql",
    ),
    # -- tests that catch plausible bugs, round 2: where two rules meet ---------------------------------
    Mutant(
        id="shortcut-ignores-url",
        guarantee="a sync ends early only when nothing that shapes it changed",
        file="pendingops/declarative.py",
        why="a remote moved to another URL with the same manifest is short-cut: its new file URLs are never recorded",
        old="""        "url": remote.url,\n""",
        new="",
        tests=(T_DECL + "test_a_remote_moved_to_another_url_runs_the_whole_sync_and_records_the_new_urls",),
    ),
    Mutant(
        id="retry-keeps-linked-mark",
        guarantee="1 visible iff success (outages: a retried batch)",
        file="pendingops/pending.py",
        why="a retried batch keeps the 'linked' mark its rolled-back attempt set: files stay unlinked from content",
        old="""    "artifact_linked",\n""",
        new="",
        tests=("tests/test_outages.py::test_an_outage_retry_restores_every_unit_field_it_touched",),
        databases="postgresql",
    ),
    # -- the seams between features: the shortcut and the storage, outage output, interrupted counts ---
    Mutant(
        id="outage-unrecorded-failure-noise",
        guarantee="an outage that outlasts the retry is one line",
        file="pendingops/context.py",
        why="the failure the database could not record is a second warning beside the one line",
        old='logger.debug("could not record the failed sync',
        new='logger.warning("could not record the failed sync',
        tests=("tests/test_outage_output.py::test_an_outage_longer_than_the_retry_is_one_line",),
        databases="postgresql",
    ),
    Mutant(
        id="cut-off-counted-filtered",
        guarantee="filtered counts only units a pipeline dropped",
        file="pendingops/context.py",
        why="the units an interruption cut off inside the pipeline are counted as filtered",
        old="""            self.filtered = self.flow.settle(cut_off=not ended)""",
        new="""            self.filtered = self.flow.settle()""",
        tests=("tests/test_interrupted_counts.py::test_units_cut_off_by_an_interruption_are_not_counted_filtered",),
        databases="both",
    ),
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="testing-kit-misses-drift",
        guarantee="a plugin's tests catch a forgotten revision",
        file="pendingops/testing.py",
        why="assert_migrations_match_models passes a model column no revision creates",
        old="""            drifts = [d for d in compare(conn, branches) if d.owner == name]""",
        new="""            drifts = [d for d in compare(conn, branches) if d.owner == name and d.column is None]""",
        tests=(T_RELEASE2 + "test_the_testing_helper_finds_the_forgotten_revision",),
    ),
    Mutant(
        id="one-versions",
        guarantee="counts read as people say them",
        file="pendingops/readable.py",
        why="repos delete says '(1 versions)'",
        old='''    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"''',
        new='''    return f"{count} {noun}s"''',
        tests=("tests/cli/test_papercuts_plugins.py::test_one_version_is_singular_when_a_repository_is_deleted",),
    ),
    # -- seams of the merge: a plugin step reads a file written in a batch -------------------------
    Mutant(
        id="stats-not-refreshed-after-sync",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/context.py",
        why="nothing analyses what a sync wrote: the next sync beside 150,000 units plans for an empty store",
        old="""        if self.result is not None:  # after the locks: analysing blocks no other sync""",
        new="""        if False:""",
        tests=(
            "tests/db/test_statistics.py::test_a_sync_beside_a_large_unanalysed_store_leaves_the_planner_knowing_it",
            "tests/db/test_statistics.py::test_after_the_first_sync_a_lookup_beside_the_store_probes_by_key_and_membership_by_content",
        ),
        databases="both",
    ),
)
