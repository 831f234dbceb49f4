"""The mutation check: plausible bugs that break the guarantees, each of which the tests must catch.

    python tools/mutants.py               run every mutant, print the table
    python tools/mutants.py --only ID ...  run some of them
    python tools/mutants.py --list        list the mutants (and check their patterns still match)
    python tools/mutants.py --baseline    the selected tests pass without any mutant, and two obvious
                                          mutants prove the scratch copy is what the tests import

A mutant is one small bug: an exact ``old`` snippet of a file and its ``new`` replacement (a few
mutants change the same check in two places of one file). The snippet must occur exactly once in the
committed file, or the check fails loudly ("pattern not found" / "pattern ambiguous"), so the list
stays honest as the code changes. Each mutant is applied to a scratch copy of the committed tree
(``git archive HEAD``: uncommitted changes are not part of the check), and its own small selection
of tests runs there, with that copy first on ``PYTHONPATH`` so the console script and every other
subprocess the tests start import the mutated copy too. A mutant is killed when a test fails.

Mutants of a database-specific guarantee run their tests on PostgreSQL too and count as not run
when no PostgreSQL test ran. The exit status is non-zero when a mutant survived, a pattern is
missing, or a mutant could not be run. Not part of CI (it takes minutes): run it before resolving
an issue that adds a guarantee, and add a mutant for that guarantee.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: per-test limit (pytest-timeout) inside a mutant's run: a mutant that makes a sync hang is caught by it
TEST_TIMEOUT = 120
#: a whole mutant run taking longer than this is stopped (and counted as killed: the suite hung)
RUN_TIMEOUT = 900


@dataclass(frozen=True)
class Mutant:
    """One plausible bug: ``old`` becomes ``new`` in ``file`` (and each pair of ``also`` in it too)."""

    id: str
    guarantee: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str
    also: tuple[tuple[str, str], ...] = ()
    #: "sqlite": the bug does not depend on the database, its tests run on SQLite only;
    #: "both" or "postgresql": a database-specific guarantee, its tests must run on PostgreSQL
    databases: str = "sqlite"

    @property
    def edits(self) -> tuple[tuple[str, str], ...]:
        return ((self.old, self.new), *self.also)


T_FETCHER = "tests/download/test_fetcher.py::"
T_FAULTS = "tests/download/test_faults.py::"
T_CONTEXT = "tests/test_context.py::"
T_DECL = "tests/test_declarative.py::"
T_STOCK = "tests/operators/test_stock_operators.py::"
T = "tests/plugins/deb/"
T_DEB_SOURCE = T + "test_source.py::"
T_DEB_PUBLISH = T + "test_publish.py::"
T_OD = "tests/serve/test_on_demand.py::"
T_COND = "tests/serve/test_conditional.py::"
T_412 = T_COND + "test_if_match_and_if_unmodified_since_answer_412_in_rfc_9110_order"
T_RELEASE2 = "tests/db/test_plugin_release2.py::"
T_S3_OUT = "tests/storage/test_s3_outages.py::"
T_UNCHANGED = "tests/operators/test_unchanged.py::"

MUTANTS: tuple[Mutant, ...] = (
    # -- 2: a declared digest is checked on every path that adopts bytes ----------------------------
    Mutant(
        id="adopt-skips-other-digests",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a leftover file in storage is adopted on its sha256 and size alone (md5, sha512... unchecked)",
        old="""        if any(digests.get(name) != value for name, value in artifact.digests.items()):
            return False
        _record(artifact, size, digests)""",
        new="""        _record(artifact, size, digests)""",
        tests=(T_FETCHER + "test_a_leftover_file_is_checked_against_every_declared_digest",),
    ),
    Mutant(
        id="adopt-skips-sha256",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a leftover file is adopted when its size is right, whatever its bytes",
        old='if digests["sha256"] != artifact.sha256 or (artifact.size is not None and size != artifact.size):',
        new="if (artifact.size is not None and size != artifact.size):",
        tests=(T_FETCHER + "test_a_leftover_file_of_the_right_size_with_other_bytes_is_replaced",),
    ),
    Mutant(
        id="download-skips-sha256",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a download is checked against its size and secondary digests only, not its sha256",
        old="""    if artifact.sha256:
        expected["sha256"] = artifact.sha256
""",
        new="",
        tests=(T_FETCHER + "test_a_mismatching_body_never_produces_a_stored_file",),
    ),
    Mutant(
        id="download-accepts-short-body",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a body shorter than the declared size is accepted when its digest matches",
        old="""    if artifact.size is not None and size != artifact.size:
        raise DownloadError(""",
        new="""    if artifact.size is not None and size > artifact.size:
        raise DownloadError(""",
        tests=(T_FETCHER + "test_a_wrong_size_with_right_digest_is_rejected",),
    ),
    Mutant(
        id="stored-content-drops-artifact",
        guarantee="2 content is immutable",
        file="pendingops/db/lookups.py",
        why="stored content declared with an artifact it lacks is linked without it, the artifact dropped",
        old="""    if declared != set(stored.files):""",
        new="""    unit.artifacts[:] = [a for a in unit.artifacts if a.relative_path in stored.files]
    if False:""",
        tests=(
            "tests/operators/test_save.py::test_stored_content_declared_with_a_new_artifact_fails_instead_of_losing_it",
        ),
    ),
    Mutant(
        id="known-digest-guesses",
        guarantee="2 content is immutable",
        file="pendingops/operators/_known_digests.py",
        why="a url that served different files over time gets one of their digests instead of a download",
        old="""        if len({digest for digest, _ in found}) != 1:""",
        new="""        if not found:""",
        tests=("tests/plugins/test_cookbook.py::test_tarball_replaced_at_the_same_url_is_found_by_downloading",),
    ),
    # -- retries only on retryable errors; outages ----------------------------------------------------
    Mutant(
        id="oversized-body-retried",
        guarantee="retries only if retryable",
        file="pendingops/download/fetcher.py",
        why="a body over its limit (a file over its declared size, an index over its cap) is fetched again, and again",
        old="""raise DownloadError(f"{_shown(url)}: {too_large}", retryable=False)""",
        new="""raise DownloadError(f"{_shown(url)}: {too_large}", retryable=True)""",
        tests=(
            T_FETCHER + "test_an_oversized_manifest_is_requested_once",
            T_FETCHER + "test_an_endless_body_is_cut_off_at_the_expected_size",
        ),
    ),
    Mutant(
        id="client-error-retried",
        guarantee="retries only if retryable",
        file="pendingops/download/fetcher.py",
        why="404 counts as transient (as some CDNs answer briefly), so missing files are asked for again",
        old="""_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})""",
        new="""_RETRYABLE_STATUS = frozenset({404, 408, 425, 429, 500, 502, 503, 504})""",
        tests=(T_FETCHER + "test_missing_file_is_404_without_retry",),
    ),
    Mutant(
        id="one-retry-too-many",
        guarantee="outages: retries bounded",
        file="pendingops/download/fetcher.py",
        why="off by one: retries=N makes N + 2 attempts",
        old="""                if not exc.retryable or tries >= self.remote.retries:""",
        new="""                if not exc.retryable or tries > self.remote.retries:""",
        tests=(T_FETCHER + "test_retries_are_bounded",),
    ),
    Mutant(
        id="connection-error-not-retried",
        guarantee="outages: transient errors retried",
        file="pendingops/download/fetcher.py",
        why="a refused or reset connection fails the unit at once instead of being retried",
        old="""raise DownloadError(f"{_shown(url)}: {type(exc).__name__}: {exc}", retryable=True) from None""",
        new="""raise DownloadError(f"{_shown(url)}: {type(exc).__name__}: {exc}", retryable=False) from None""",
        tests=(T_FAULTS + "test_a_refused_connection_is_retried",),
    ),
    Mutant(
        id="retry-after-ignored",
        guarantee="outages: Retry-After honoured",
        file="pendingops/download/fetcher.py",
        why="a server's Retry-After is ignored: an overloaded remote is asked again after the short backoff",
        old="""                delay = exc.retry_after
""",
        new="""                delay = None
""",
        tests=(T_FAULTS + "test_retry_after_is_honoured",),
    ),
    Mutant(
        id="no-read-timeout",
        guarantee="4 bounded time (outages)",
        file="pendingops/download/fetcher.py",
        why="read_timeout is not applied, so a stalled body holds a download (and the sync) indefinitely",
        old="""                    sock_read=remote.read_timeout,""",
        new="""                    sock_read=None,""",
        tests=(T_FAULTS + "test_under_the_fail_policy_a_stalled_body_fails_the_sync",),
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
    Mutant(
        id="latest-includes-incomplete",
        guarantee="1 visible iff success",
        file="pendingops/db/versions.py",
        why="the latest version is the highest number, complete or not",
        old="select(func.max(_version.c.number)).where(_version.c.repository_id == repository_id, _version.c.complete)",
        new="select(func.max(_version.c.number)).where(_version.c.repository_id == repository_id)",
        tests=("tests/db/test_versions.py::test_an_incomplete_version_is_invisible_and_undone_whole",),
    ),
    # -- 3: one writer per repository ----------------------------------------------------------------
    Mutant(
        id="sqlite-repository-lock-shared",
        guarantee="3 one writer (SQLite)",
        file="pendingops/db/locks.py",
        why="the file lock is always taken shared: two syncs of one repository run at once",
        old="""        mode = fcntl.LOCK_SH if self._shared else fcntl.LOCK_EX""",
        new="""        mode = fcntl.LOCK_SH""",
        tests=(
            "tests/test_concurrency.py::test_two_syncs_of_one_repository_never_interleave",
            "tests/db/test_locks.py::test_a_repository_lock_is_exclusive_and_the_store_lock_shared",
        ),
    ),
    Mutant(
        id="postgres-repository-lock-shared",
        guarantee="3 one writer (PostgreSQL)",
        file="pendingops/db/locks.py",
        why="the advisory lock is always taken shared: two syncs of one repository run at once",
        old="""        kind = "_shared" if self._shared else ""
        fn = f"pg_advisory_lock{kind}\"""",
        new="""        kind = "_shared"
        fn = f"pg_advisory_lock{kind}\"""",
        tests=(
            "tests/test_concurrency.py::test_two_syncs_of_one_repository_never_interleave",
            "tests/db/test_locks.py::test_a_repository_lock_is_exclusive_and_the_store_lock_shared",
        ),
        databases="postgresql",
    ),
    Mutant(
        id="orphans-do-not-wait",
        guarantee="3 one writer / orphans",
        file="pendingops/maintenance/orphans.py",
        why="orphan cleanup takes the store lock shared, so it runs during a sync and removes what it found",
        old="""    with StoreLock(db, shared=False) as lock:""",
        new="""    with StoreLock(db, shared=True) as lock:""",
        tests=("tests/maintenance/test_orphans.py::test_orphan_cleanup_waits_for_a_sync_that_found_orphans",),
        databases="both",
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
    Mutant(
        id="manifest-line-unbounded",
        guarantee="4 bounded memory",
        file="pendingops/plugins/file.py",
        why="manifest lines are read whole, so one endless line is held in memory before it is refused",
        old="""        while raw := handle.readline(MAX_LINE_BYTES + 1):""",
        new="""        while raw := handle.readline():""",
        tests=("tests/plugins/test_file.py::test_an_endless_line_is_refused_after_reading_a_bounded_prefix",),
    ),
    Mutant(
        id="export-follows-symlinks",
        guarantee="4 nothing written outside DEST",
        file="pendingops/maintenance/export.py",
        why="export opens folders following symlinks: a symlinked folder inside DEST leads outside it",
        old="""_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC""",
        new="""_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC""",
        tests=("tests/maintenance/test_export.py::test_export_refuses_a_symlinked_folder_inside_dest",),
    ),
    Mutant(
        id="database-password-shown",
        guarantee="5 secrets never printed",
        file="pendingops/db/database.py",
        why="a malformed database URL is reported with its password",
        old="""    shown, password = mask_password(url), password_of(url)""",
        new="""    shown, password = url, password_of(url)""",
        tests=("tests/db/test_database.py::test_a_bad_url_is_reported_without_its_password",),
    ),
    # -- 6: cost follows the change; bound variables ------------------------------------------------
    Mutant(
        id="associate-per-unit",
        guarantee="6 cost follows change",
        file="pendingops/operators/_associate.py",
        why="saved content is added to the version one statement per unit",
        old="added = associate_content(conn, ctx.db, ctx.repository_id, ctx.version, new)",
        new="added = sum(associate_content(conn, ctx.db, ctx.repository_id, ctx.version, [c]) for c in new)",
        tests=("tests/db/test_statements.py::test_a_whole_sync_costs_at_most_20_statements_per_thousand_units",),
    ),
    Mutant(
        id="lookup-chunks-too-big",
        guarantee="bound-variable chunking",
        file="pendingops/db/lookups.py",
        why="the content lookup's chunks forget the statement's two other bound values",
        old="""        for chunk in db.chunks(digests, 1, other_params=3):  # content type, remote_id, repository_id""",
        new="""        for chunk in db.chunks(digests, 1):  # content type, remote_id, repository_id""",
        tests=("tests/db/test_writes.py::test_writes_and_lookups_respect_the_bound_variable_limit",),
    ),
    # -- failed units, mirror, window and byte budget ------------------------------------------------
    Mutant(
        id="failed-stored-unit-added",
        guarantee="failed unit never added",
        file="pendingops/operators/_associate.py",
        why="a failed unit that already has a content id (content stored before) is associated",
        old="""    return not unit.failed or (ctx.mirror and unit.in_base)""",
        new="""    return True""",
        also=(
            (
                """    new = [u.content_id for u in units if not u.failed and not u.in_base]""",
                """    new = [u.content_id for u in units if not u.in_base]""",
            ),
        ),
        tests=(T_DECL + "test_a_failed_unit_whose_content_is_already_stored_is_never_added",),
    ),
    Mutant(
        id="failed-base-unit-removed",
        guarantee="mirror keeps failed base unit",
        file="pendingops/operators/_associate.py",
        why="a mirror sync declares only the units that succeeded, so it removes a failed one the base had",
        old="""        declare_content(conn, ctx.db, ctx.version, [u.content_id for u in units])""",
        new="""        declare_content(conn, ctx.db, ctx.version, [u.content_id for u in units if not u.failed])""",
        tests=(T_DECL + "test_mirror_keeps_a_failed_unit_the_previous_version_had",),
    ),
    Mutant(
        id="mirror-rewrites-history",
        guarantee="mirror removes exactly the undeclared",
        file="pendingops/db/versions.py",
        why="mirror removal also re-stamps rows removed by an earlier version, changing old versions",
        old="""                _rc.c.version_removed.is_(None),
                _rc.c.version_added < version.number,""",
        new="""                _rc.c.version_added < version.number,""",
        tests=("tests/db/test_versions.py::test_a_mirror_removal_leaves_what_earlier_versions_removed_alone",),
    ),
    Mutant(
        id="stale-remote-artifact",
        guarantee="remote artifacts follow the remote",
        file="pendingops/db/lookups.py",
        why="a RemoteArtifact with the same digest and size counts as current even when its url moved",
        old="""remote_artifact_current = file.this_remote == (artifact.url, artifact.sha256, artifact.size)""",
        new="""remote_artifact_current = (file.this_remote or ("",))[1:] == (artifact.sha256, artifact.size)""",
        tests=("tests/db/test_writes.py::test_remote_artifacts_follow_the_remote",),
    ),
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
    Mutant(
        id="orphans-of-old-versions",
        guarantee="orphans never remove referenced content",
        file="pendingops/maintenance/orphans.py",
        why="content only old versions hold counts as an orphan (referenced = in a current version)",
        old="""    return _none(_rc.c.id, _rc.c.content_id == _content.c.id)""",
        new="""    return _none(_rc.c.id, _rc.c.content_id == _content.c.id, _rc.c.version_removed.is_(None))""",
        tests=("tests/maintenance/test_orphans.py::test_old_versions_content_is_not_an_orphan",),
    ),
    # -- review fixes: versions, locks, immutability, orphans (issue: correctness and scale) ---------
    Mutant(
        id="version-fence-skipped",
        guarantee="3 one writer: a version another sync discarded is never written",
        file="pendingops/db/versions.py",
        why="membership writes and the finish do not check the version row is still this sync's",
        old="""    if conn.execute(query).scalar() is None:
        raise VersionLost(""",
        new="""    if False:
        raise VersionLost(""",
        tests=(
            "tests/db/test_versions.py::"
            "test_a_sync_whose_version_another_sync_discarded_fails_and_writes_nothing_into_the_new_one",
        ),
        databases="both",
    ),
    Mutant(
        id="lost-lock-not-noticed",
        guarantee="3 a lost lock is noticed before anything is finished",
        file="pendingops/db/locks.py",
        why="the lock's session is never checked before finishing",
        old="""            if self._connection is None and not self._lost:
                return False  # a file or in-process lock cannot be lost while this process lives""",
        new="""            if True:
                return False  # a file or in-process lock cannot be lost while this process lives""",
        tests=(T_CONTEXT + "test_a_lost_repository_lock_is_noticed_before_the_version_is_finished",),
        databases="postgresql",
    ),
    Mutant(
        id="cancelled-lock-wait-kept",
        guarantee="3 a cancelled wait leaves no lock behind",
        file="pendingops/db/locks.py",
        why="a cancelled wait stays queued on the server and takes the lock once it is free, for ever",
        old="""                connection.connection.dbapi_connection.cancel()""",
        new="""                pass""",
        tests=("tests/db/test_locks.py::test_a_cancelled_lock_wait_on_postgresql_is_withdrawn_on_the_server",),
        databases="postgresql",
    ),
    Mutant(
        id="in-memory-sqlite-unlocked",
        guarantee="3 one writer (in-memory SQLite)",
        file="pendingops/db/locks.py",
        why="an in-memory database takes no lock, so two syncs of one repository interleave",
        old="""        if self._local_file() is None:
            lock = _in_process_lock(self._db.engine, self._file_suffix)""",
        new="""        if self._local_file() is None:
            return True
            lock = _in_process_lock(self._db.engine, self._file_suffix)""",
        tests=("tests/db/test_locks.py::test_in_memory_sqlite_runs_syncs_of_one_repository_one_at_a_time",),
    ),
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
        id="stored-key-other-bytes",
        guarantee="2 content is immutable",
        file="pendingops/db/lookups.py",
        why="a stored natural key declared with other bytes is linked to the old bytes",
        old="""    if mine and file.sha256 and mine != file.sha256:""",
        new="""    if False:""",
        tests=(
            "tests/operators/test_save.py::"
            "test_a_stored_key_declared_with_other_bytes_fails_and_keeps_the_stored_bytes",
        ),
    ),
    Mutant(
        id="shared-artifact-digests-unchecked",
        guarantee="2 digests on every path",
        file="pendingops/db/lookups.py",
        why="an artifact stored under the declared sha256 is shared although the declared md5 differs",
        old="""        if stored is not None and stored != value:""",
        new="""        if False:""",
        tests=(
            "tests/operators/test_dedup.py::test_a_stored_artifact_is_linked_only_when_every_declared_digest_agrees",
        ),
    ),
    Mutant(
        id="orphans-dry-run-undercounts",
        guarantee="a dry run reports what the real run does",
        file="pendingops/maintenance/orphans.py",
        why="the dry run counts only artifacts no content links, not those only orphaned content links",
        old="""    if dry_run:
        links.append(""",
        new="""    if False:
        links.append(""",
        tests=("tests/maintenance/test_orphans.py::test_content_of_a_failed_sync_is_removed_with_its_files",),
    ),
    Mutant(
        id="disk-full-skipped",
        guarantee="outages: a full disk stops the sync",
        file="pendingops/operators/_stage.py",
        why="a full storage fails one unit at a time, so a skip policy makes a version without them",
        old="""                    except SYNC_STOPPING:
                        raise  # every unit after it""",
        new="""                    except SYNC_STOPPING as exc:
                        unit.fail(stage, describe_error(exc))  # every unit after it""",
        tests=("tests/test_disk_full.py",),
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
    Mutant(
        id="cleanup-off-the-lock-session",
        guarantee="3 never run without the lock (outages: orphans)",
        file="pendingops/db/locks.py",
        why="orphan cleanup runs on pooled connections, which a restart replaces unseen while the lock is gone",
        old="""        if self._connection is None:
            return self._db.transact(fn, *args)""",
        new="""        if True:
            return self._db.transact(fn, *args)""",
        tests=("tests/test_outages.py",),
        databases="postgresql",
    ),
    Mutant(
        id="orphans-anti-join",
        guarantee="6 cost follows the change (orphan cleanup linear)",
        file="pendingops/maintenance/orphans.py",
        why="PostgreSQL plans NOT EXISTS as a hash anti-join over every membership row, once per window",
        old="""    return select(column).where(*where).limit(1).scalar_subquery().is_(None)""",
        new="""    return ~exists().where(*where)""",
        tests=("tests/db/test_query_plans.py::test_postgresql_orphan_checks_probe_the_membership_index_per_window",),
        databases="postgresql",
    ),
    Mutant(
        id="serve-shows-incomplete-version",
        guarantee="only complete versions are served",
        file="pendingops/serve/resolve.py",
        why="a numbered version is served before its sync finished (or after it failed)",
        old="""_COMPLETE = (_repo.c.name == bindparam("name")) & _version.c.complete""",
        new="""_COMPLETE = _repo.c.name == bindparam("name")""",
        tests=("tests/serve/test_app.py::test_a_version_being_built_is_invisible",),
    ),
    Mutant(
        id="serve-sends-before-checking",
        guarantee="a corrupt upstream file never reaches a client whole",
        file="pendingops/serve/transfer.py",
        why="on-demand bytes go to the client as they arrive, the last chunk included, before the digest is checked",
        old="""                limit = transfer.written - 1 if transfer.written > transfer.hold else 0""",
        new="""                limit = transfer.written""",
        tests=("tests/serve/test_on_demand.py::test_corrupt_upstream_bytes_never_reach_a_client_whole",),
    ),
    Mutant(
        id="serve-single-flight-dropped",
        guarantee="one upstream fetch per on-demand artifact",
        file="pendingops/serve/on_demand.py",
        why="concurrent requests for an artifact not stored each fetch it from the remote",
        old="""        if not streamed_only:
            self._in_flight[ca_id] = leader""",
        new="""        pass""",
        tests=("tests/serve/test_on_demand.py::test_concurrent_requests_cause_one_upstream_fetch",),
    ),
    Mutant(
        id="serve-no-cooldown",
        guarantee="a failing remote is skipped for the next one",
        file="pendingops/serve/on_demand.py",
        why="a remote that just failed is asked again first by the next request",
        old="""        self._failed_at[(ca_id, remote_id)] = now""",
        new="""        pass""",
        tests=(
            "tests/serve/test_on_demand.py::test_a_failing_remote_is_skipped_for_the_next_one_then_cools_down_for_that_file",
        ),
    ),
    Mutant(
        id="serve-range-not-clamped",
        guarantee="ranges answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="a range ending past the file is answered with the end asked for, not the file's",
        old="""    return start, size - 1 if stop is None else min(stop - 1, size - 1)""",
        new="""    return start, size - 1 if stop is None else stop - 1""",
        tests=("tests/serve/test_app.py::test_head_conditional_requests_and_ranges",),
    ),
    # -- storage ownership and repair -----------------------------------------------------------------
    Mutant(
        id="storage-owner-unchecked",
        guarantee="a storage belongs to one database",
        file="pendingops/storage/owner.py",
        why="another database's id in the storage's record is accepted, so its orphan cleanup removes the files",
        old="""    if recorded.database_id != mine:""",
        new="""    if False:""",
        tests=("tests/storage/test_owner.py::test_the_first_database_owns_the_storage_and_another_is_refused",),
    ),
    Mutant(
        id="orphans-remove-foreign-strays",
        guarantee="a storage belongs to one database",
        file="pendingops/maintenance/orphans.py",
        why="stray files written before a shared legacy storage was adopted are removed (another database's files)",
        old="""            if ownership.may_be_foreign(storage, location):""",
        new="""            if False:""",
        tests=("tests/storage/test_owner.py::test_the_issue_scenario_a_legacy_shared_storage_keeps_the_other_databases_files",),
    ),
    Mutant(
        id="legacy-storage-adopted-blindly",
        guarantee="a storage belongs to one database",
        file="pendingops/storage/owner.py",
        why="a storage holding files without an owner record is adopted by a database that has no artifacts",
        old="""        if not _has_artifacts(conn):""",
        new="""        if False:""",
        tests=("tests/storage/test_owner.py::test_a_legacy_storage_with_files_is_refused_to_a_database_without_artifacts",),
    ),
    Mutant(
        id="repair-without-fetching",
        guarantee="verify --repair restores the recorded bytes",
        file="pendingops/maintenance/repair.py",
        why="an artifact is reported repaired without being fetched again",
        old="""    if await asyncio.to_thread(check_artifact, storage, row.location, sha256, row.size) is None:""",
        new="""    if True:""",
        tests=("tests/maintenance/test_repair.py::test_bad_and_missing_artifacts_are_fetched_again",),
    ),
    Mutant(
        id="missing-file-present",
        guarantee="a sync never takes a missing file for present",
        file="pendingops/operators/_dedup.py",
        why="an artifact row whose file is gone links the unit, which is then exported without its file",
        old="""            artifact.artifact_id = None""",
        new="""            pass""",
        tests=("tests/maintenance/test_repair.py::test_a_resync_fetches_a_missing_file_instead_of_calling_it_present",),
    ),
    # -- layers: the floors of docs/architecture.md ----------------------------------------------------
    Mutant(
        id="db-imports-plugin-registry",
        guarantee="layers: db imports nothing above it",
        file="pendingops/db/migrations/branches.py",
        why="the database layer finds the installed plugins itself again (an import inside a function)",
        old='''    """The core's branch: the revision files of ``versions/``, owning the tables of ``db/schema.py``."""
''',
        new='''    """The core's branch: the revision files of ``versions/``, owning the tables of ``db/schema.py``."""
    from pendingops.plugins import available_plugins  # noqa: F401
''',
        tests=("tests/test_architecture.py::test_no_file_imports_a_floor_above_its_own",),
    ),
    Mutant(
        id="schema-check-imports-database",
        guarantee="layers: no import circle",
        file="pendingops/db/migrations/check.py",
        why="the schema check takes DatabaseError from database.py, which calls the check: a circle on one floor",
        old="""from pendingops.db.errors import DatabaseError""",
        new="""from pendingops.db.database import DatabaseError""",
        tests=("tests/test_architecture.py::test_no_import_circle_joins_two_files",),
    ),
    # -- tests that catch plausible bugs, round 2: where two rules meet ---------------------------------
    Mutant(
        id="serve-modified-since-overrides-tag",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="a non-matching If-None-Match falls through to If-Modified-Since: a client holding another file gets 304",
        old="""    if none_match is not None:
        return any(tag.value in (_ANY, etag[1:-1]) for tag in none_match)""",
        new="""    if none_match is not None and any(tag.value in (_ANY, etag[1:-1]) for tag in none_match):
        return True""",
        tests=("tests/serve/test_conditional.py::test_if_none_match_wins_over_if_modified_since",),
    ),
    Mutant(
        id="serve-modified-since-exact-only",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-Modified-Since is a 304 only for the exact Last-Modified, not for any later date",
        old="""int(last_modified.timestamp()) <= since.timestamp()""",
        new="""int(last_modified.timestamp()) == since.timestamp()""",
        tests=("tests/serve/test_conditional.py::test_if_modified_since_compares_as_not_modified_since",),
    ),
    Mutant(
        id="serve-listing-title-raw",
        guarantee="4 a remote's data is never markup in a listing",
        file="pendingops/serve/listing.py",
        why="a listing's title and heading show a folder or repository name unescaped",
        old="""        title = html.escape(self.title)""",
        new="""        title = self.title""",
        tests=("tests/serve/test_listing.py::test_every_text_in_a_listing_is_escaped_titles_included",),
    ),
    Mutant(
        id="serve-on-demand-sha256-only",
        guarantee="2 digests on every path (on_demand)",
        file="pendingops/serve/transfer.py",
        why="an on-demand fetch is checked against its sha256 only: a wrong declared sha512 or md5 is stored",
        old="""if computed.get(name, "").lower() != value.lower():""",
        new="""if name == "sha256" and computed.get(name, "").lower() != value.lower():""",
        tests=("tests/serve/test_on_demand.py::test_on_demand_checks_every_declared_digest_not_only_sha256",),
    ),
    Mutant(
        id="s3-marker-overwritten",
        guarantee="7 a storage belongs to one database (S3)",
        file="pendingops/storage/s3.py",
        why="the owner record is written with a plain PUT: a second database overwrites the first's record",
        old="""Body=text.encode(), IfNoneMatch="*")""",
        new="""Body=text.encode())""",
        tests=("tests/storage/test_s3.py::test_the_ownership_marker_is_create_only",),
    ),
    Mutant(
        id="s3-missing-ignores-prefix",
        guarantee="a sync never takes a stored file for missing (S3)",
        file="pendingops/storage/s3.py",
        why="the batched missing-file check asks for keys without the storage's prefix: every stored file looks gone",
        old="""return not await self._exists(self.prefix + location)""",
        new="""return not await self._exists(location)""",
        tests=(
            "tests/storage/test_s3.py::test_the_batched_missing_check_looks_under_the_prefix",
            "tests/storage/test_s3.py::test_a_second_repository_syncing_the_same_files_on_s3_finds_every_one_stored",
        ),
    ),
    Mutant(
        id="storage-owner-race-unchecked",
        guarantee="7 a storage belongs to one database",
        file="pendingops/storage/owner.py",
        why="a first use whose record another database wrote first takes that record for its own and goes on",
        old="""    _check(storage, recorded, mine.database_id)
    return recorded""",
        new="""    return recorded""",
        tests=("tests/storage/test_owner.py::test_a_first_use_whose_record_another_database_wrote_first_is_refused",),
    ),
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
        id="saved-counts-lookup-misses",
        guarantee="the reported outcome is what was stored (progress counts)",
        file="pendingops/operators/_save.py",
        why="'saved' counts every unit its lookup did not find, though another sync wrote its row meanwhile",
        old="""written = sum(1 for unit in ready if not unit.failed and unit.content_id in created)""",
        new="""written = sum(1 for unit in unlinked if not unit.failed)""",
        tests=(
            "tests/operators/test_save.py::"
            "test_saved_never_counts_a_unit_whose_row_another_sync_wrote_after_its_lookup",
        ),
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
    # -- operating: serve's login and --repos, health, metrics; the reserved name ------------------
    Mutant(
        id="login-not-required",
        guarantee="serve --htpasswd: no answer without a login",
        file="pendingops/serve/operating.py",
        why="a request without valid credentials is answered as if it had them",
        old="""        if user is None:
            return web.Response(status=401""",
        new="""        if False:
            return web.Response(status=401""",
        tests=(
            "tests/serve/test_operating.py::test_everything_but_the_health_check_needs_a_login",
            "tests/cli/test_serve.py::test_serve_with_a_login_and_chosen_repositories_logs_each_request_as_json",
        ),
    ),
    Mutant(
        id="login-unknown-user-is-cheap",
        guarantee="serve --htpasswd: answer times do not tell which users exist",
        file="pendingops/serve/auth.py",
        why="an unknown user is refused at once, without the bcrypt work a known user's check costs",
        old="""    hashed = entries.get(name)
    matches = bcrypt.checkpw(password[:_BCRYPT_LIMIT], decoy if hashed is None else hashed)""",
        new="""    hashed = entries.get(name)
    if hashed is None:
        return False
    matches = bcrypt.checkpw(password[:_BCRYPT_LIMIT], hashed)""",
        tests=("tests/serve/test_auth.py::test_an_unknown_user_costs_the_same_bcrypt_work_as_a_known_one",),
    ),
    Mutant(
        id="login-decoy-cheaper",
        guarantee="serve --htpasswd: answer times do not tell which users exist",
        file="pendingops/serve/auth.py",
        why="an unknown user is checked against a hash of the lowest cost, faster than the file's entries",
        old="""    cost = costs.most_common(1)[0][0] if costs else 5""",
        new="""    cost = 4""",
        tests=("tests/serve/test_auth.py::test_an_unknown_user_costs_the_same_bcrypt_work_as_a_known_one",),
    ),
    Mutant(
        id="htpasswd-never-read-again",
        guarantee="serve --htpasswd: the file is read again when it changes",
        file="pendingops/serve/auth.py",
        why="a user removed from (or a password changed in) the file keeps getting in until the server restarts",
        old="""            if stamp == self._stamp and self._problem is None:""",
        new="""            if True:""",
        tests=(
            "tests/serve/test_auth.py::test_the_file_is_read_again_when_it_changes_and_a_broken_one_lets_nobody_in",
        ),
    ),
    Mutant(
        id="repos-filter-ignored",
        guarantee="serve --repos: other repositories are neither served nor listed",
        file="pendingops/serve/app.py",
        why="a repository outside --repos is served and listed",
        old="""(self.repositories is None or repository in self.repositories)""",
        new="""True""",
        tests=(
            "tests/serve/test_operating.py::test_only_the_repositories_given_are_served_or_listed",
            "tests/cli/test_serve.py::test_serve_with_a_login_and_chosen_repositories_logs_each_request_as_json",
        ),
    ),
    Mutant(
        id="health-ok-when-database-down",
        guarantee="/-/health: 503 naming what failed",
        file="pendingops/serve/health.py",
        why="a failed check still answers 200: a load balancer keeps sending clients to a server without database",
        old="""        if any(result != "ok" for result in results):""",
        new="""        if False:""",
        tests=("tests/serve/test_health.py::test_health_says_503_while_the_database_is_stopped_and_ok_once_it_is_back",),
        databases="postgresql",
    ),
    Mutant(
        id="health-waits-for-database",
        guarantee="/-/health: an answer in bounded time when the database hangs",
        file="pendingops/serve/health.py",
        why="the health check waits as long as the database takes: a probe times out instead of reading 503",
        old="""            await asyncio.wait_for(asyncio.shield(running), self.timeout)""",
        new="""            await asyncio.shield(running)""",
        tests=("tests/serve/test_health.py::test_health_answers_in_time_while_the_database_hangs_and_never_piles_up_checks",),
        databases="postgresql",
    ),
    Mutant(
        id="requests-not-counted",
        guarantee="/-/metrics counts every answered request",
        file="pendingops/serve/metrics.py",
        why="answered requests are timed and their bytes added, but the request counter never grows",
        old="""        counter.inc()
""",
        new="""        pass
""",
        tests=("tests/serve/test_metrics.py::test_the_request_counters_grow_with_the_real_requests",),
    ),
    Mutant(
        id="metrics-of-one-process",
        guarantee="/-/metrics counts every answered request",
        file="pendingops/serve/metrics.py",
        why="with --workers N, /-/metrics shows the counts of the process that answers it only",
        old="""        if getattr(values.ValueClass, "_multiprocess", False):""",
        new="""        if False:""",
        tests=("tests/cli/test_serve.py::test_several_server_processes_count_each_others_requests",),
    ),
    Mutant(
        id="worker-syncs-not-counted",
        guarantee="a worker's /metrics counts its syncs",
        file="pendingops/workers/metrics.py",
        why="a finished sync is timed but not counted by outcome",
        old="""    _SYNCS.labels(outcome=outcome).inc()""",
        new="""    _SYNCS.labels(outcome=outcome)""",
        tests=("tests/workers/test_observe.py::test_a_worker_logs_each_task_once_at_its_start_and_end_and_counts_it",),
        databases="postgresql",
    ),
    Mutant(
        id="reserved-name-accepted",
        guarantee="'-' is no repository name",
        file="pendingops/db/names.py",
        why="a repository named '-' is created; the server's own pages hide it",
        old="""    if name == RESERVED:""",
        new="""    if False:""",
        tests=(
            "tests/db/test_versions.py::test_no_repository_is_made_with_the_reserved_name",
            "tests/cli/test_cli.py::test_the_reserved_repository_name_is_refused_before_anything_is_written",
        ),
    ),
    # -- deb: Debian archives (chain of trust, hostile indexes, verbatim or own dists/) ---------------
    Mutant(
        id="deb-index-unchecked",
        guarantee="2 digests on every path",
        file="pendingops/plugins/deb/source.py",
        why="a Packages index is fetched without the size and SHA256 its Release gives, so any bytes are read",
        old="""                _url(remote, by_hash if release.by_hash else path), path, index.size, index.sha256""",
        new="""                _url(remote, by_hash if release.by_hash else path), path""",
        tests=(T_DEB_SOURCE + "test_an_index_that_does_not_match_its_release_fails_the_sync_with_one_line",),
    ),
    Mutant(
        id="deb-package-unchecked",
        guarantee="2 digests on every path",
        file="pendingops/plugins/deb/source.py",
        why="a package file is fetched without its stanza's Size and SHA256",
        old="""relative_path=filename, size=size, sha256=digest)""",
        new="""relative_path=filename)""",
        tests=(T_DEB_SOURCE + "test_a_package_that_does_not_match_its_stanza_fails_that_unit",),
    ),
    Mutant(
        id="deb-decompression-uncapped",
        guarantee="4 bounded memory, disk and time",
        file="pendingops/plugins/deb/packages.py",
        why="a Packages index is decompressed without a cap: an xz or gzip bomb runs to its end",
        old="""            if total > limit:""",
        new="""            if False:""",
        tests=(T_DEB_SOURCE + "test_a_decompression_bomb_stops_at_the_cap",),
    ),
    Mutant(
        id="deb-index-size-unbounded",
        guarantee="4 bounded memory, disk and time",
        file="pendingops/plugins/deb/source.py",
        why="an index whose Release gives an absurd size is fetched anyway",
        old="""            if index.size > limits.index_bytes:""",
        new="""            if False:""",
        tests=(T_DEB_SOURCE + "test_a_decompression_bomb_stops_at_the_cap",),
    ),
    Mutant(
        id="deb-filename-outside-pool",
        guarantee="4 data never names local files",
        file="pendingops/plugins/deb/packages.py",
        why="a Filename outside pool/ (dists/..., anything relative) is accepted",
        old="""    if problem is None and not filename.startswith(POOL):""",
        new="""    if False:""",
        tests=(T_DEB_SOURCE + "test_a_filename_outside_pool_is_refused_before_anything_is_fetched",),
    ),
    Mutant(
        id="deb-stanza-unbounded",
        guarantee="4 bounded memory",
        file="pendingops/plugins/deb/stanza.py",
        why="a stanza (or one endless line) is read whole, however large, before it is judged",
        old="""                if size > max_bytes:""",
        new="""                if False:""",
        also=(("""        if size + len(rest) > max_bytes:""", """        if False:"""),),
        tests=(T + "test_stanza.py::test_a_stanza_over_the_limit_is_refused_before_more_of_it_is_read",),
    ),
    Mutant(
        id="deb-names-unchecked",
        guarantee="4 data never names local files",
        file="pendingops/plugins/deb/options.py",
        why="suite, component and architecture names with '..' or '/' pieces become URL and storage paths",
        old="""        if not pattern.fullmatch(name):""",
        new="""        if False:""",
        tests=(T + "test_options.py::test_bad_options_are_one_line",),
    ),
    Mutant(
        id="deb-shortcut-ignored",
        guarantee="remote-unchanged shortcut",
        file="pendingops/plugins/deb/source.py",
        why="the Release files' digests are never handed to the shortcut: an unchanged archive is read whole",
        old="""    await index_read(digests)""",
        new="""    pass""",
        tests=(T_DEB_SOURCE + "test_a_mirror_sync_checks_everything_and_keeps_the_suites_files",),
    ),
    Mutant(
        id="deb-filtered-published-verbatim",
        guarantee="deb: verbatim only for the upstream's set",
        file="pendingops/plugins/deb/publish.py",
        why="a packages= sync is served with the upstream's indexes, which offer packages it does not hold",
        old="""    if not rows or len(set(names)) != len(names) or any(row.filtered for row in rows):""",
        new="""    if not rows or len(set(names)) != len(names):""",
        tests=(T_DEB_PUBLISH + "test_packages_gives_our_own_unsigned_indexes_of_the_selected_packages",),
    ),
    Mutant(
        id="deb-merged-published-verbatim",
        guarantee="deb: verbatim only for the upstream's set",
        file="pendingops/plugins/deb/publish.py",
        why="a version whose packages differ from its Release's (an additive merge, a failed unit) is served verbatim",
        old="""    return held == listed == listed_and_held""",
        new="""    return True""",
        tests=(
            T_DEB_PUBLISH + "test_a_package_that_failed_makes_the_version_ours",
            T_DEB_PUBLISH + "test_an_additive_merge_gets_our_indexes_and_a_rollback_the_upstreams_again",
        ),
        databases="both",
    ),
    Mutant(
        id="deb-own-index-beyond-version",
        guarantee="10 a client gets only what a version holds",
        file="pendingops/plugins/reading.py",
        why="our own index lists every stored package its suite listed, not only the version's",
        old="""        .where(membership_filter(repository_id, number), *where)""",
        new="""        .where(*where)""",
        tests=(T_DEB_PUBLISH + "test_a_package_an_operator_dropped_is_not_listed_though_its_suite_lists_it",),
        databases="both",
    ),
    Mutant(
        id="deb-members-unrecorded",
        guarantee="deb: our own indexes list the version's packages",
        file="pendingops/plugins/deb/members.py",
        why="the packages a suite lists are not recorded, so our own indexes list nothing",
        old="""        db.insert_rows(conn, insert, values, _member.c.release_id)""",
        new="""        pass""",
        tests=(T_DEB_PUBLISH + "test_packages_gives_our_own_unsigned_indexes_of_the_selected_packages",),
    ),
    Mutant(
        id="deb-own-release-unsigned",
        guarantee="deb: signing_key signs our own indexes",
        file="pendingops/plugins/deb/publish.py",
        why="our own Release is published unsigned although a signing_key is configured",
        old="""    if suite.signing_key is None:""",
        new="""    if True:""",
        tests=(T_DEB_PUBLISH + "test_a_signing_key_signs_our_release",),
    ),
    Mutant(
        id="pages-apply-everywhere",
        guarantee="deb: verbatim only for the upstream's set",
        file="pendingops/plugins/published.py",
        why="a page folder applies to every version, so a verbatim mirror is served our unsigned indexes",
        old="""        return page.applies is None or page.applies(conn, repository_id, number)""",
        new="""        return True""",
        tests=(T + "test_apt.py::test_apt_gets_a_served_mirror_checked_with_the_upstreams_key[sqlite-immediate]",),
    ),
    Mutant(
        id="export-keeps-replaced-files",
        guarantee="deb: export writes the same tree as serve",
        file="pendingops/maintenance/export.py",
        why="an export of our own dists/ keeps the stored upstream files there (apt reads the upstream's InRelease)",
        old="""            if page.files:""",
        new="""            if False:""",
        tests=(T + "test_apt.py::test_apt_gets_an_export_from_a_static_web_server",),
    ),
    # -- parsers: linear index pages, streamed project pages, PEP 700 pages, JSON exports, adopted counts --
    Mutant(
        id="html-open-construct-rescanned",
        guarantee="4 a remote's page costs linear time",
        file="pendingops/plugins/python/html_anchors.py",
        why="a comment (or CDATA, declaration) a chunk leaves open is kept and scanned again from its start",
        old="            self._carry = text[max(at, len(text) - keep) :] if keep else \"\"",
        new="            self._carry = text[at:]",
        tests=("tests/plugins/python/test_html_anchors.py::test_a_construct_left_open_is_neither_kept_nor_scanned_again",),
    ),
    Mutant(
        id="html-long-tag-kept",
        guarantee="4 a remote's page costs bounded memory",
        file="pendingops/plugins/python/html_anchors.py",
        why="a tag is kept however long it grows (an unterminated attribute value holds the rest of the page)",
        old="""        if self._tag_length > MAX_TAG:""",
        new="""        if False:""",
        tests=(
            "tests/plugins/python/test_html_anchors.py::test_a_construct_left_open_is_neither_kept_nor_scanned_again",
            "tests/plugins/python/test_html_anchors.py::test_a_tag_longer_than_the_limit_is_dropped_and_what_follows_is_read",
        ),
    ),
    Mutant(
        id="json-value-decoded-every-chunk",
        guarantee="4 a remote's page costs linear time",
        file="pendingops/plugins/python/json_stream.py",
        why="a JSON value cut into many chunks is decoded again at every chunk (quadratic in its length)",
        old="""        if len(self._text) - self._at + self._waiting_length < self._need:
            return
""",
        new="",
        tests=(
            "tests/plugins/python/test_json_stream.py::"
            "test_a_value_fed_a_character_at_a_time_is_decoded_a_few_times_not_once_per_character",
        ),
    ),
    Mutant(
        id="project-page-read-whole",
        guarantee="4 a remote's page costs bounded memory",
        file="pendingops/plugins/python/plugin.py",
        why="a project page is joined, decoded and parsed whole (an 8 MiB page of {} entries took ~190 MiB)",
        old="""    pages = (lambda: JsonProjectPage(url), lambda: ProjectPage(url))
    return [link async for link in _read_page(url, "project page", MAX_PROJECT_PAGE_BYTES, fetcher, *pages)]""",
        new="""    text = b"".join([chunk async for chunk in fetcher.stream(url, accept=ACCEPT)]).decode()
    page = JsonProjectPage(url) if text.lstrip().startswith("{") else ProjectPage(url)
    return [*page.feed(text), *page.close()]""",
        tests=("tests/plugins/python/test_plugin.py::test_a_json_project_page_is_read_an_entry_at_a_time",),
    ),
    Mutant(
        id="adopted-counted-as-downloaded",
        guarantee="counters match the transfers made",
        file="pendingops/download/fetcher.py",
        why="a leftover file adopted from storage is reported as a transfer (a rerun looks as if it fetched all)",
        old="""                    if await self._adopt_stored(artifact):
                        return False""",
        new="""                    if await self._adopt_stored(artifact):
                        return True""",
        tests=("tests/operators/test_download.py::test_a_rerun_after_an_interruption_counts_stored_leftovers_as_adopted",),
    ),
    Mutant(
        id="adopted-left-in-download-total",
        guarantee="counters match the transfers made",
        file="pendingops/operators/_download.py",
        why="an adopted file stays in the download total, so the panel's download bar never ends full",
        old="""                ctx.progress.add_total("downloaded", -1)""",
        new="""                pass""",
        tests=("tests/operators/test_download.py::test_a_rerun_after_an_interruption_counts_stored_leftovers_as_adopted",),
    ),
    Mutant(
        id="pep700-sizes-dropped",
        guarantee="served JSON pages are api-version 1.1",
        file="pendingops/plugins/python/simple.py",
        why="a served PEP 691 project page lists its files without their sizes",
        old="""            entry["size"] = row.size""",
        new="""            pass""",
        tests=("tests/plugins/python/test_simple.py::test_a_served_json_page_is_api_1_1_with_versions_sizes_and_upload_times",),
    ),
    Mutant(
        id="pep700-upload-time-not-kept",
        guarantee="served JSON pages are api-version 1.1",
        file="pendingops/plugins/python/plugin.py",
        why="the upload time the remote's JSON page gives is not kept on the unit, so the served page has none",
        old="""        "upload_time": link.upload_time,""",
        new="""        "upload_time": None,""",
        tests=("tests/plugins/python/test_simple.py::test_a_served_json_page_is_api_1_1_with_versions_sizes_and_upload_times",),
    ),
    Mutant(
        id="pep700-versions-dropped",
        guarantee="served JSON pages are api-version 1.1",
        file="pendingops/plugins/python/simple.py",
        why="a served PEP 691 project page has no versions list",
        old="""    page = {"meta": {"api-version": API_VERSION}, "name": name, "versions": versions, "files": files}""",
        new="""    page = {"meta": {"api-version": API_VERSION}, "name": name, "files": files}""",
        tests=("tests/plugins/python/test_simple.py::test_a_served_json_page_is_api_1_1_with_versions_sizes_and_upload_times",),
    ),
    Mutant(
        id="export-without-json-pages",
        guarantee="an export is a simple index in HTML and JSON",
        file="pendingops/plugins/python/simple.py",
        why="an export writes the HTML form of each project page only, so a static server cannot answer in JSON",
        old="""            yield f"{name}/{JSON_PAGE}", [_project_json("../../", name, latest)]""",
        new="""            pass""",
        tests=("tests/plugins/test_python.py::test_an_export_is_a_static_simple_index_another_sync_mirrors",),
    ),
    # -- ssrf: private destinations, on-demand bounds, single flight, cooldown per file, inert answers -------
    Mutant(
        id="private-literal-unchecked",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/download/fetcher.py",
        why="an IP-literal host (which no resolver sees) or a redirect hop to one is fetched from the private network",
        old="""                check_literal(URL(target).host or "")""",
        new="""                pass""",
        tests=(
            "tests/download/test_destinations.py::test_an_ip_literal_of_another_origin_is_refused_before_any_connection",
            "tests/security/test_private_destinations.py::test_a_sync_refuses_each_private_destination_in_one_line_naming_its_host",
        ),
    ),
    Mutant(
        id="private-resolver-unused",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/download/fetcher.py",
        why="the connector resolves names with the default resolver: a name that resolves to loopback is fetched",
        old="""                resolver = PublicResolver(self._proxy_addresses())
                self._resolvers.append(resolver)""",
        new="""                pass""",
        tests=(
            "tests/security/test_private_destinations.py::test_a_sync_refuses_each_private_destination_in_one_line_naming_its_host",
        ),
    ),
    Mutant(
        id="private-mapped-address-public",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/download/destinations.py",
        why="an IPv4-mapped IPv6 address (::ffff:127.0.0.1) is judged as IPv6, so a private IPv4 one slips through",
        old="""    if address.ipv4_mapped is not None:
        return address.ipv4_mapped""",
        new="""    if False:
        return address.ipv4_mapped""",
        tests=(
            "tests/download/test_destinations.py::test_an_ipv4_address_wrapped_in_ipv6_is_judged_by_the_ipv4_one",
            "tests/download/test_destinations.py::test_an_ip_literal_of_another_origin_is_refused_before_any_connection",
        ),
    ),
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
    Mutant(
        id="serve-ignores-private-leave",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/serve/on_demand.py",
        why="serve fetches with the recorded settings only: a repository the operator allowed cannot be served",
        old="""        if allow_private:""",
        new="""        if False:""",
        tests=(
            "tests/security/test_private_destinations.py::test_private_destinations_the_operator_allowed_are_remembered_for_serving",
        ),
    ),
    Mutant(
        id="on-demand-size-cap-ignored",
        guarantee="4 what a remote sends costs bounded disk",
        file="pendingops/serve/on_demand.py",
        why="an on-demand file of undeclared size is bounded by the 1 GiB default, not by the remote's max_file_size",
        old="""        limit = settings.max_file_size or DEFAULT_MAX_FILE_SIZE""",
        new="""        limit = DEFAULT_MAX_FILE_SIZE""",
        tests=(T_OD + "test_an_endless_body_of_undeclared_size_stops_at_max_file_size_and_nothing_is_kept",),
    ),
    Mutant(
        id="on-demand-unbounded-concurrency",
        guarantee="4 what a remote sends costs bounded memory, disk and time",
        file="pendingops/serve/on_demand.py",
        why="every request for a file not stored starts an upstream transfer at once, however many run",
        old="""        self._slots = asyncio.Semaphore(concurrency)""",
        new="""        self._slots = asyncio.Semaphore(concurrency * 1000)""",
        tests=(T_OD + "test_upstream_fetches_are_bounded_the_rest_wait_then_get_503_with_retry_after",),
    ),
    Mutant(
        id="serve-late-arrival-fetches-again",
        guarantee="one upstream fetch per on-demand artifact",
        file="pendingops/serve/on_demand.py",
        why="a request that read the file as not stored, and looks for its fetch after that ended, fetches it again",
        old="""            if not streamed_only and await self._run(_is_stored, ca_id):""",
        new="""            if False:""",
        tests=(T_OD + "test_twenty_concurrent_first_requests_make_one_upstream_get_fifty_times_out_of_fifty",),
    ),
    Mutant(
        id="serve-range-streams-unchecked",
        guarantee="10 no byte of a file that failed its digest is sent where it can be avoided",
        file="pendingops/serve/on_demand.py",
        why="a Range on a file not stored yet is answered with the whole body as it arrives",
        old="""        ranged = hdrs.RANGE in request.headers and not streamed_only""",
        new="""        ranged = False""",
        tests=(T_OD + "test_a_range_on_a_file_not_stored_yet_waits_for_the_checked_file",),
    ),
    Mutant(
        id="verify-before-send-ignored",
        guarantee="10 no byte of a file that failed its digest is sent where it can be avoided",
        file="pendingops/serve/on_demand.py",
        why="a small file streams before it is checked: a client gets all but its last byte of a corrupt file",
        old="""        hold = 0 if large else self.verify_before_send""",
        new="""        hold = 0""",
        tests=(T_OD + "test_a_file_up_to_verify_before_send_is_checked_against_every_digest_before_its_first_byte",),
    ),
    Mutant(
        id="on-demand-checks-sha256-only",
        guarantee="2 digests on every path",
        file="pendingops/serve/transfer.py",
        why="an on-demand file is checked against its sha256 only, not every digest the remote declared",
        old="""    for name, value in source.digests.items():""",
        new="""    for name, value in list(source.digests.items())[:1]:""",
        tests=(T_OD + "test_a_file_up_to_verify_before_send_is_checked_against_every_digest_before_its_first_byte",),
    ),
    Mutant(
        id="cooldown-per-remote",
        guarantee="a failing file cools down alone",
        file="pendingops/serve/on_demand.py",
        why="one file that failed makes every file of its remote 502 for the cooldown (anyone can trigger it)",
        old="""        failed = self._failed_at.get((ca_id, remote_id))""",
        new="""        failed = max((t for (_, r), t in self._failed_at.items() if r == remote_id), default=None)""",
        tests=(T_OD + "test_after_one_file_failed_a_healthy_file_of_the_same_remote_is_served_at_once",),
    ),
    Mutant(
        id="stored-files-not-sandboxed",
        guarantee="stored files are inert in a browser",
        file="pendingops/serve/headers.py",
        why="a remote's evil.html runs in the server's origin: no Content-Security-Policy: sandbox",
        old="""    response.headers.setdefault("Content-Security-Policy", SANDBOX)""",
        new="""    pass""",
        tests=("tests/serve/test_headers.py::test_every_answer_is_inert_stored_and_fetched_files_listings_and_errors",),
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
        id="enqueue-drops-retain",
        guarantee="9 one path per job",
        file="pendingops/cli/_request.py",
        why="sync --enqueue --retain K exits 0 but the queued request does not carry K",
        old="""_destinations", "retain")""",
        new="""_destinations")""",
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
        id="repos-delete-ignores-queue",
        guarantee="deleting a repository is final for the queue",
        file="pendingops/cli/lifecycle.py",
        why="repos delete neither refuses nor cancels while syncs are queued or scheduled: they bring it back",
        old="""        if queued or schedules:""",
        new="""        if False:""",
        also=(
            (
                """    cancelled, unscheduled = _forget_queue(settings, name, queued)""",
                """    cancelled, unscheduled = 0, 0""",
            ),
        ),
        tests=(
            "tests/workers/test_one_path.py::test_repos_delete_refuses_while_syncs_are_queued_and_yes_cancels_them",
            "tests/workers/test_one_path.py::test_a_deleted_repositorys_schedule_never_brings_it_back",
        ),
        databases="postgresql",
    ),
    Mutant(
        id="unbound-schedule-creates-repository",
        guarantee="deleting a repository is final for the queue",
        file="pendingops/workers/schedule.py",
        why="a schedule stored without its repository's id creates the repository of its name when due",
        old="""    return request if request.repository_id is not None else bind(conn, request, register=False)""",
        new="""    return request if request.repository_id is not None else bind(conn, request)""",
        tests=("tests/workers/test_schedule.py::test_a_schedule_is_bound_to_its_repository_and_never_creates_one",),
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
        id="netrc-ignored",
        guarantee="credentials come from netrc or the environment",
        file="pendingops/download/fetcher.py",
        why="the fetcher never reads netrc nor the environment: a remote behind a login cannot be queued",
        old="""            found = credentials_for(remote.url)""",
        new="""            found = None""",
        tests=("tests/download/test_credentials.py",),
    ),
    Mutant(
        id="netrc-credentials-to-every-origin",
        guarantee="4 every remote is hostile",
        file="pendingops/download/fetcher.py",
        why="credentials go with every request, so a redirect hands netrc's password to another server",
        old="""            headers = dict(self._own_headers) if own else {}""",
        new="""            headers = dict(self._own_headers)""",
        tests=("tests/download/test_credentials.py",),
    ),
    Mutant(
        id="scrub-misses-remote-artifacts",
        guarantee="5 secrets never printed or stored",
        file="pendingops/db/migrations/versions/core_0010_scrub_credentials.py",
        why="the data migration leaves the passwords older releases stored in remote_artifact URLs",
        old="""    _scrub_column(conn, "remote_artifact", "url")""",
        new="""    pass""",
        tests=("tests/db/test_scrub_migration.py",),
        databases="both",
    ),
    Mutant(
        id="bound-by-id-only",
        guarantee="deleting a repository is final for the queue",
        file="pendingops/db/versions.py",
        why="a queued sync is bound by id alone: on SQLite a new repository may get a deleted one's id",
        old="""    return None if row is None else (row.id, str(row.created_at))""",
        new="""    return None if row is None else (row.id, "")""",
        tests=("tests/test_sync_path.py::test_a_request_bound_to_a_deleted_repository_fails_and_creates_nothing",),
    ),
    Mutant(
        id="task-numbers-count-internal-jobs",
        guarantee="task numbers: sync jobs only, no gaps",
        file="pendingops/workers/task_numbers.py",
        why="schedule ticks take task numbers: the numbers users see have gaps",
        old="""          WHERE j.task_name = :task AND t.number IS NULL) AS todo,""",
        new="""          WHERE (j.task_name = :task OR j.task_name != :task) AND t.number IS NULL) AS todo,""",
        tests=("tests/workers/test_tasks.py::test_only_syncs_are_numbered_and_without_gaps_across_schedule_ticks",),
        databases="postgresql",
    ),
    Mutant(
        id="task-numbers-skip",
        guarantee="task numbers: sync jobs only, no gaps",
        file="pendingops/workers/task_numbers.py",
        why="numbers drawn past the highest one leave a gap between two tasks",
        old="""    SELECT todo.id, top.number + todo.rank""",
        new="""    SELECT todo.id, top.number + 2 * todo.rank - 1""",
        tests=(
            "tests/workers/test_tasks.py::test_only_syncs_are_numbered_and_without_gaps_across_schedule_ticks",
            "tests/workers/test_task_numbers.py::test_numbers_follow_the_sync_jobs_in_order_whatever_else_is_queued_or_rolled_back",
        ),
        databases="postgresql",
    ),
    Mutant(
        id="task-progress-not-recorded",
        guarantee="tasks show a running sync's progress",
        file="pendingops/workers/task_progress.py",
        why="the worker never records progress: a running sync shows no units, MiB or elapsed time",
        old="""    report.listeners.append(recorder.on_progress)
    try:""",
        new="""    report.listeners.append(print)
    try:""",
        also=(("report.listeners.remove(recorder.on_progress)", "report.listeners.remove(print)"),),
        tests=("tests/workers/test_tasks.py::test_a_running_sync_shows_its_progress_and_wait_times_out",),
        databases="postgresql",
    ),
    Mutant(
        id="task-progress-not-final",
        guarantee="tasks show a running sync's progress",
        file="pendingops/workers/task_progress.py",
        why="the last snapshot is not written when the sync ends: a finished task keeps stale counts",
        old="""        await asyncio.shield(recorder.write(again=True))""",
        new="""        pass""",
        tests=("tests/workers/test_tasks.py::test_wait_gives_the_outcome_and_show_the_whole_record",),
        databases="postgresql",
    ),
    Mutant(
        id="task-wait-cancelled-succeeds",
        guarantee="tasks wait exits with the task's outcome",
        file="pendingops/cli/tasks.py",
        why="a cancelled task counts as success for a script waiting on it",
        old="""            return 0 if task.state == "succeeded" else 1""",
        new="""            return 1 if task.state == "failed" else 0""",
        tests=("tests/workers/test_tasks.py::test_a_running_sync_shows_its_progress_and_wait_times_out",),
        databases="postgresql",
    ),
    Mutant(
        id="task-wait-timeout-is-failure",
        guarantee="tasks wait exits with the task's outcome",
        file="pendingops/cli/tasks.py",
        why="a timeout is told as a failed task (exit 1), not as 'still running' (exit 2)",
        old="""            return 2""",
        new="""            return 1""",
        tests=("tests/workers/test_tasks.py::test_a_running_sync_shows_its_progress_and_wait_times_out",),
        databases="postgresql",
    ),
    Mutant(
        id="task-numbers-in-reverse",
        guarantee="task numbers: sync jobs only, no gaps",
        file="pendingops/workers/task_numbers.py",
        why="jobs numbered together get their numbers against the order they were queued",
        old="""row_number() OVER (ORDER BY j.id) AS rank""",
        new="""row_number() OVER (ORDER BY j.id DESC) AS rank""",
        tests=("tests/workers/test_task_numbers.py::test_numbers_follow_the_sync_jobs_in_order_whatever_else_is_queued_or_rolled_back",),
        databases="postgresql",
    ),
    Mutant(
        id="task-numbering-unlocked",
        guarantee="task numbers: sync jobs only, no gaps",
        file="pendingops/workers/task_numbers.py",
        why="two commands numbering at once both take the highest number: one fails, or a number repeats",
        old="""    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _NUMBERING_LOCK_KEY})""",
        new="""    pass""",
        tests=(
            "tests/workers/test_task_numbers.py::test_syncs_queued_at_once_get_distinct_numbers_without_gaps",
            "tests/workers/test_task_numbers.py::"
            "test_numbering_waits_for_a_numbering_in_progress_even_when_jobs_commit_out_of_order",
        ),
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
        id="outage-retries-chatter",
        guarantee="an outage that outlasts the retry is one line",
        file="pendingops/db/retry.py",
        why="every retry of a lost connection writes a warning: a long outage is many lines before the one",
        old="""            logger.debug("%s during %s; trying again in %.1f s", reason, what, wait)""",
        new="""            logger.warning("%s during %s; trying again in %.1f s", reason, what, wait)""",
        tests=("tests/test_outage_output.py::test_an_outage_longer_than_the_retry_is_one_line",),
        databases="postgresql",
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
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="fill-overwrites-stored-values",
        guarantee="2 content is immutable (fill, never overwrite)",
        file="pendingops/db/fill.py",
        why="a resync overwrites a stored field with whatever the remote declares now",
        old="""                sets[name] = func.coalesce(column, case(values, value=table.c.id))
                wanted.append(and_(column.is_(None), table.c.id.in_(sorted(declaring))))  # type: ignore[type-var]""",
        new="""                sets[name] = case(values, value=table.c.id, else_=column)
                wanted.append(table.c.id.in_(sorted(declaring)))  # type: ignore[type-var]""",
        also=(
            (
                """.where(table.c.id.in_(chunk), any_null)""",
                """.where(table.c.id.in_(chunk))""",
            ),
            (
                """                    if stored is None and unit.fields.get(c.name) is not None""",
                """                    if unit.fields.get(c.name) is not None""",
            ),
        ),
        tests=(T_RELEASE2 + "test_release_2_fills_its_new_column_for_stored_content_and_never_overwrites",),
        databases="both",
    ),
    Mutant(
        id="fill-never-done",
        guarantee="a column added since content was saved is filled on resync",
        file="pendingops/operators/_save.py",
        why="stored units are linked and skipped: the new column stays NULL",
        old="""    if unit.content_id is None or unit.unfilled:""",
        new="""    if unit.content_id is None:""",
        tests=(T_RELEASE2 + "test_release_2_fills_its_new_column_for_stored_content_and_never_overwrites",),
    ),
    Mutant(
        id="drift-not-refused-on-open",
        guarantee="8 drift is an error before it is a SQL error",
        file="pendingops/db/migrations/check.py",
        why="a model column no revision created passes the check; the first statement naming it fails",
        old="""    drifts = missing_columns(conn, tables, branches)
    if drifts:""",
        new="""    drifts = missing_columns(conn, tables, branches)
    if drifts and False:""",
        tests=(T_RELEASE2 + "test_a_model_column_without_a_revision_is_drift_refused_in_one_line",),
        databases="both",
    ),
    Mutant(
        id="unknown-revision-internal-error",
        guarantee="bad input is one line and exit 2",
        file="pendingops/db/migrations/runner.py",
        why="db downgrade to a revision no branch has prints an internal error, exit 1",
        old="""    except (CommandError, RevisionError) as exc:""",
        new="""    except (KeyError,) as exc:""",
        tests=(T_RELEASE2 + "test_downgrade_to_an_unknown_revision_or_branch_is_one_line_exit_2",),
    ),
    Mutant(
        id="export-links-absolute",
        guarantee="exports are servable as they are",
        file="pendingops/maintenance/export.py",
        why="an export's universe links to file:// URLs of the machine that wrote it",
        old="""result.version, "./", stored_only=True)""",
        new="""result.version, dest.absolute().as_uri() + "/", stored_only=True)""",
        also=((""" replace(version, base_url="../" * len(folders) or "./")""", """ version"""),),
        tests=("tests/maintenance/test_export_served.py",),
    ),
    Mutant(
        id="units-latest-not-first",
        guarantee="a published index lists the unit the latest version added",
        file="pendingops/plugins/reading.py",
        why="the oldest unit of an item is listed: an additive sync's replaced file is published as it was",
        old="""        query = query.order_by(*keys, _rc.c.version_added.desc(), table.c.id.desc())""",
        new="""        query = query.order_by(*keys, _rc.c.version_added, table.c.id)""",
        tests=(
            "tests/security/test_export_round_trip.py::"
            "test_a_path_two_versions_gave_different_files_exports_the_latest_once_and_resyncs",
        ),
    ),
    Mutant(
        id="no-plugin-hint",
        guarantee="bad input names the fix",
        file="pendingops/plugins/guess.py",
        why="a sync of a simple index without --plugin says only that it is no PULP_MANIFEST",
        old="""        if name != used and callable(looks_like) and looks_like(head, url):""",
        new="""        if False:""",
        tests=("tests/cli/test_plugin_hint.py",),
    ),
    Mutant(
        id="fill-per-unit-statement",
        guarantee="6 cost follows the change (fill in batch statements)",
        file="pendingops/db/fill.py",
        why="filling a new column sends one UPDATE per stored unit",
        old="""        for chunk in db.chunks(group, 1 + 3 * len(names)):""",
        new="""        for chunk in ([unit] for unit in group):""",
        tests=("tests/db/test_fill.py",),
        databases="both",
    ),
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
        id="rollback-origin-forgotten",
        guarantee="versions says a version came from a rollback",
        file="pendingops/db/lifecycle.py",
        why="a rollback's version is listed like any sync's",
        old="""content_count=count, rolled_back_to=target)""",
        new="""content_count=count, rolled_back_to=None)""",
        tests=("tests/cli/test_lifecycle.py::test_diff_rollback_and_version_removal",),
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
    Mutant(
        id="verify-names-only-the-digest",
        guarantee="verify names where a bad file is used",
        file="pendingops/maintenance/artifact_uses.py",
        why="verify names only the sha256 of a damaged file, not its repository and path",
        old="""        .where(_artifact.c.sha256 == sha256, _rc.c.version_removed.is_(None))""",
        new="""        .where(_artifact.c.sha256 == sha256, _rc.c.version_removed.is_(None), _rc.c.id < 0)""",
        tests=("tests/cli/test_papercuts_plugins.py::test_verify_names_the_repository_and_path_of_a_bad_file",),
    ),
    Mutant(
        id="schedule-list-hides-mirror",
        guarantee="schedule list shows what each schedule syncs",
        file="pendingops/workers/schedule.py",
        why="schedule list shows every schedule as additive",
        old="""                mirror=bool(options.get("mirror", False)),""",
        new="""                mirror=False,""",
        tests=("tests/cli/test_schedule.py::test_add_list_remove_and_bad_input",),
        databases="postgresql",
    ),
    Mutant(
        id="storage-outage-skips-units",
        guarantee="1 no short version on a storage outage",
        file="pendingops/storage/base.py",
        why="an unreachable storage fails single units: under --on-error skip the sync makes a short version",
        old="""SYNC_STOPPING = (StorageFull, StorageUnavailable)""",
        new="""SYNC_STOPPING = (StorageFull,)""",
        tests=(
            T_S3_OUT + "test_storage_down_for_good_ends_the_sync_in_one_line_and_no_short_version",
            T_S3_OUT + "test_uploads_failing_alone_stop_the_sync_rather_than_skip_units",
        ),
        databases="both",
    ),
    Mutant(
        id="s3-request-unbounded",
        guarantee="every process ends: bounded time on every storage call",
        file="pendingops/storage/s3.py",
        why="a PutObject holds its body back for a 100 Continue a stalled S3 never sends and nothing bounds"
        " the request as a whole: the upload waits for ever (each of the two bounds alone ends it)",
        old="""        client.meta.events.unregister("before-call.s3", add_expect_header)""",
        new="""        pass""",
        also=(
            (
                """            async with asyncio.timeout(limit):""",
                """            async with asyncio.timeout(None):""",
            ),
        ),
        tests=(T_S3_OUT + "test_a_small_upload_to_a_storage_that_stalls_for_good_gives_up",),
        databases="sqlite",
    ),
    Mutant(
        id="storage-outage-not-ridden-out",
        guarantee="storage outages are ridden out",
        file="pendingops/storage/outage.py",
        why="a storage request that timed out or got 503 SlowDown fails at once instead of being retried",
        old="""            remaining = clock.seconds - (now - start)""",
        new="""            remaining = 0.0""",
        tests=(
            T_S3_OUT + "test_a_stall_longer_than_the_read_timeout_is_ridden_out",
            T_S3_OUT + "test_a_burst_of_slow_down_answers_is_ridden_out",
        ),
    ),
    Mutant(
        id="s3-no-read-timeout",
        guarantee="bounded time on storage calls",
        file="pendingops/storage/s3.py",
        why="the S3 read timeout is not set: a request on a connection that never answers waits for an hour",
        old="""            read_timeout=self.read_timeout,""",
        new="""            read_timeout=3600,""",
        tests=(T_S3_OUT + "test_a_stall_longer_than_the_read_timeout_is_ridden_out",),
    ),
    Mutant(
        id="s3-cleanup-masks-error",
        guarantee="the first error wins",
        file="pendingops/storage/s3.py",
        why="the upload's cleanup (delete of its temporary key) fails too and its error replaces the upload's",
        old="""            await self._quietly(exc, "delete_object", Key=temp_key)""",
        new="""            await self._call("delete_object", Key=temp_key)""",
        tests=(T_S3_OUT + "test_a_refused_upload_fails_with_the_upload_error_not_its_cleanup",),
    ),
    Mutant(
        id="s3-named-by-its-object",
        guarantee="messages name the storage",
        file="pendingops/storage/s3.py",
        why="an S3 storage is named <pendingops.storage.s3.S3Storage object at 0x...> in the ownership refusal",
        old="""    def __str__(self) -> str:""",
        new="""    def _unused_str(self) -> str:""",
        tests=(T_S3_OUT + "test_the_ownership_refusal_names_the_bucket_and_prefix",),
    ),
    Mutant(
        id="serve-storage-failure-is-500",
        guarantee="serve: 503 before the first byte",
        file="pendingops/serve/stored.py",
        why="a file whose storage read fails is an internal error (500), not a 503 with Retry-After",
        old="""        except OSError as exc:  # StorageError, StorageUnavailable, a cut connection""",
        new="""        except ValueError as exc:""",
        tests=("tests/serve/test_storage_outage.py::test_a_file_whose_storage_read_fails_gets_503_not_a_cut_200",),
    ),
    Mutant(
        id="serve-storage-reads-queue",
        guarantee="serve: a stalled storage holds up nothing else",
        file="pendingops/serve/stored.py",
        why="with every storage thread held by a stall, a further file request queues behind it",
        old="""        return self._running >= self._threads""",
        new="""        return False""",
        tests=(
            "tests/serve/test_storage_outage.py::"
            "test_listings_index_files_and_health_answer_while_storage_reads_are_held",
        ),
    ),
    Mutant(
        id="export-leaves-its-half",
        guarantee="a failed export leaves DEST as it was",
        file="pendingops/maintenance/export.py",
        why="an export cut by a full destination or an unreadable stored file leaves what it wrote in DEST",
        old="""            written.undo(root)""",
        new="""            pass""",
        tests=(
            "tests/maintenance/test_storage_faults.py::test_a_full_destination_is_named_and_left_as_it_was",
            "tests/maintenance/test_storage_faults.py::"
            "test_a_stored_file_replaced_by_a_folder_fails_the_export_cleanly_and_repair_puts_it_back",
        ),
    ),
    Mutant(
        id="repair-stops-on-a-folder",
        guarantee="verify --repair quarantines what it cannot repair",
        file="pendingops/maintenance/repair.py",
        why="a folder where a stored file belongs is left in place: the repair aborts or reports no quarantine",
        old="""    aside = await asyncio.to_thread(_move_folder_aside, storage, row.location, sha256)""",
        new="""    aside = None""",
        tests=(
            "tests/maintenance/test_storage_faults.py::"
            "test_a_stored_file_replaced_by_a_folder_fails_the_export_cleanly_and_repair_puts_it_back",
        ),
    ),
    Mutant(
        id="storage-outage-is-bad-input",
        guarantee="an outage is exit 1, not 2",
        file="pendingops/cli/_app.py",
        why="verify or export cut by a storage outage exits 2, as if the user's input were wrong",
        old="""        return EXIT_FAILED  # an outage or a full disk, not bad input""",
        new="""        return EXIT_USAGE""",
        tests=("tests/maintenance/test_storage_faults.py::test_an_s3_outage_mid_run_is_exit_1_in_one_line",),
    ),
    Mutant(
        id="work-folder-cleanup-masks-error",
        guarantee="the first error wins",
        file="pendingops/storage/work_folder.py",
        why="a plugin's cleanup in the work folder failing (read-only storage) replaces the error that caused it",
        old="""            if isinstance(first, Exception):  # the error that made it clean up""",
        new="""            if False:""",
        tests=(
            "tests/storage/test_read_only.py::test_a_cleanup_in_the_work_folder_never_masks_the_error_that_caused_it",
        ),
    ),
    Mutant(
        id="read-only-storage-raw-oserror",
        guarantee="messages name the storage",
        file="pendingops/storage/work_folder.py",
        why="a storage turned read-only ends the sync with a bare 'Read-only file system: PULP_MANIFEST'",
        old="""        if isinstance(exc, OSError) and _inside(exc.filename, path):""",
        new="""        if False:""",
        tests=("tests/storage/test_read_only.py::test_storage_read_only_at_the_end_of_a_sync_is_one_line_naming_it",),
    ),
    Mutant(
        id="s3-small-file-through-a-temp-key",
        guarantee="cost follows the change (S3 requests)",
        file="pendingops/storage/s3.py",
        why="a small file goes through a temporary key, a HEAD, a copy and a delete: 5 requests, not 2",
        old="""        if size <= self.part_size:""",
        new="""        if False:""",
        tests=(
            "tests/storage/test_s3_requests.py::"
            "test_a_small_file_is_stored_in_one_put_to_its_address_with_at_most_two_requests",
        ),
    ),
    Mutant(
        id="s3-repair-keeps-damaged-object",
        guarantee="verify --repair puts the recorded bytes back",
        file="pendingops/maintenance/repair.py",
        why="on S3 the damaged object stays: the conditional put of the fetched bytes keeps what is there",
        old="""        await asyncio.to_thread(storage.delete, row.location)  # again: the damaged one goes first""",
        new="""        pass""",
        tests=("tests/maintenance/test_storage_faults.py::test_repair_on_s3_replaces_a_damaged_object",),
    ),
    Mutant(
        id="batched-write-not-awaited",
        guarantee="a file on disk before its row",
        file="pendingops/operators/_save.py",
        why="save inserts a batch's rows while its small files are still queued for their batched write",
        old="""    await settle(units)  # every file the batch downloaded is in storage before a row points at it""",
        new="""    pass""",
        tests=(
            "tests/operators/test_download.py::test_a_downloaded_file_is_in_storage_before_its_row",
            "tests/test_disk_full.py::test_a_full_disk_under_batched_small_writes_fails_the_sync_and_no_row_points_at_a_missing_file",
        ),
    ),
    Mutant(
        id="batch-found-file-trusted",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a leftover file dedup's batched existence check found is adopted on that word, never hashed",
        old="""        digests = await asyncio.to_thread(_hash_stored, self.storage, location, artifact.digests)""",
        new="""        if artifact.in_storage:
            _record(artifact, artifact.size or 0, {"sha256": artifact.sha256, **artifact.digests})
            return True
        digests = await asyncio.to_thread(_hash_stored, self.storage, location, artifact.digests)""",
        tests=("tests/operators/test_download.py::test_a_leftover_the_batch_found_is_checked_before_it_is_adopted",),
    ),
    Mutant(
        id="leftovers-checked-per-file",
        guarantee="nothing per file on the loop that can be batched",
        file="pendingops/operators/_dedup.py",
        why="dedup's batch does not say which files storage holds: every download looks at storage first",
        old="""        artifact.in_storage = wanted[artifact.sha256] not in missing""",
        new="""        pass""",
        tests=("tests/operators/test_download.py::test_dedup_looks_for_leftover_files_in_one_batch_not_per_file",),
    ),
    Mutant(
        id="followers-wait-for-next-chunk",
        guarantee="on_demand followers get what is written",
        file="pendingops/download/_sink.py",
        why="bytes that came while a batch was in flight wait for the next chunk: a stalled stream's followers starve",
        old="""            if self._in_flight is None:
                self._start()  # what came meanwhile, without waiting for the next chunk""",
        new="""            pass""",
        also=(("""        elif self._written is not None and self._in_flight is None:
            self._start()""", """        elif False:
            self._start()"""),),
        tests=("tests/download/test_sink.py::test_a_large_followed_streams_bytes_are_reported_without_waiting_for_the_next_chunk",),
    ),
    Mutant(
        id="serve-if-range-date-not-exact",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="an If-Range date later than Last-Modified honours the range (FileResponse's own rule)",
        old="""int(last_modified.timestamp()) == int(moment.timestamp())""",
        new="""int(last_modified.timestamp()) <= int(moment.timestamp())""",
        tests=("tests/serve/test_conditional.py::test_if_range_honours_the_range_only_for_this_very_file",),
    ),
    Mutant(
        id="serve-if-range-tag-skipped",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="an If-Range naming another file's tag still gets the range (FileResponse skips tags)",
        old="""        return condition == etag""",
        new="""        return True""",
        tests=("tests/serve/test_conditional.py::test_if_range_honours_the_range_only_for_this_very_file",),
    ),
    Mutant(
        id="serve-if-range-weak-tag",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-Range compares weakly: a W/ tag of this file gets the range",
        old="""    if condition.startswith('"'):""",
        new="""    condition = condition.removeprefix("W/")
    if condition.startswith('"'):""",
        tests=("tests/serve/test_conditional.py::test_if_range_honours_the_range_only_for_this_very_file",),
    ),
    Mutant(
        id="serve-if-none-match-strong",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-None-Match compares strongly: a client holding the file under a W/ tag gets it again",
        old="""        return any(tag.value in (_ANY, etag[1:-1]) for tag in none_match)""",
        new="""        return any(tag.value in (_ANY, etag[1:-1]) and not tag.is_weak for tag in none_match)""",
        tests=("tests/serve/test_app.py::test_head_conditional_requests_and_ranges",),
    ),
    Mutant(
        id="serve-several-ranges-refused",
        guarantee="ranges answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="several ranges, or one that does not parse, are a 416 (FileResponse's rule) instead of the whole file",
        old="""    except ValueError:  # several ranges, another unit, last before first, a number too long: ignored
        return None""",
        new="""    except ValueError:
        raise Unsatisfiable from None""",
        tests=("tests/serve/test_app.py::test_head_conditional_requests_and_ranges",),
    ),
    Mutant(
        id="serve-empty-suffix-from-start",
        guarantee="ranges answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="an empty suffix (bytes=-0) is read as the whole file from byte 0, not a 416",
        old="""    if start < 0 or (start == 0 and request.headers[hdrs.RANGE].partition("=")[2].startswith("-")):""",
        new="""    if start < 0:""",
        tests=("tests/serve/test_app.py::test_head_conditional_requests_and_ranges",),
    ),
    # -- seams of the merge: a plugin step reads a file written in a batch -------------------------
    Mutant(
        id="enrich-before-the-write",
        guarantee="a plugin's enrich step finds the unit's downloaded files in storage",
        file="pendingops/operators/_enrich.py",
        why="a small body is written after its download: an enrich step reading it finds no file",
        old="""        await settle([unit])
        if not unit.failed:
            await fn(unit)""",
        new="""        await fn(unit)""",
        tests=("tests/plugins/test_guide.py::test_the_installed_plugin_is_listed_and_syncs_a_base_url",),
    ),
    Mutant(
        id="cookbook-export-without-metadata",
        guarantee="a cookbook export, served statically, is synced by another pendingops",
        file="pendingops/plugins/cookbook/plugin.py",
        why="the export writes the universe only: a fresh pendingops asks each version's metadata and gets 404s",
        old="""        return [metadata_pages()]""",
        new="""        return []""",
        tests=("tests/plugins/test_cookbook_export.py",),
    ),
    Mutant(
        id="cookbook-metadata-link-absolute",
        guarantee="a cookbook export, served statically, is synced by another pendingops",
        file="pendingops/plugins/cookbook/pages.py",
        why="the exported metadata document links its tarball from the wrong folder: not servable as it is",
        old="""_TO_TOP = "../" * 5""",
        new="""_TO_TOP = "../" * 4""",
        tests=("tests/plugins/test_cookbook_export.py",),
    ),
    Mutant(
        id="cookbook-metadata-loses-license",
        guarantee="a cookbook export, served statically, is synced by another pendingops",
        file="pendingops/plugins/cookbook/pages.py",
        why="the published metadata document drops the license: the copy's units differ from the exported ones",
        old=""""license": row.license,""",
        new=""""license": None,""",
        tests=("tests/plugins/test_cookbook_export.py",),
    ),
    Mutant(
        id="cookbook-served-metadata-any-version",
        guarantee="a cookbook version pendingops serve serves is synced by another pendingops",
        file="pendingops/plugins/cookbook/pages.py",
        why="serve answers every metadata request with the first cookbook version's document",
        old="""    where = [table.c.name == found["name"], table.c.version == found["version"]]""",
        new="""    where = []""",
        tests=("tests/plugins/test_cookbook_export.py::test_a_served_cookbook_version_is_synced_by_another_pendingops",),
    ),
    Mutant(
        id="registration-recreates-deleted-repository",
        guarantee="deleting a repository is final for the queue",
        file="pendingops/db/versions.py",
        why="a queued sync registers its repository by name only: one deleted after run_sync's check is created again",
        old="""    if identity is not None:
        return require_repository(conn, name, identity)""",
        new="""    pass""",
        tests=(
            "tests/test_sync_path.py::"
            "test_a_repository_deleted_between_the_check_and_the_registration_is_not_created_again",
        ),
        databases="both",
    ),
    Mutant(
        id="sqlite-checkpoints-every-batch",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/database.py",
        why="SQLite's default checkpoint every 1000 WAL pages: beside a large store nearly every batch's commit "
        "copies its scattered pages back and syncs the file (a sync beside 150,000 units ~1.5x the empty store's)",
        old="""SQLITE_WAL_AUTOCHECKPOINT = 10_000""",
        new="""SQLITE_WAL_AUTOCHECKPOINT = 1000""",
        tests=(
            "tests/db/test_statistics.py::test_sqlite_batches_beside_a_store_leave_their_pages_to_one_later_checkpoint",
        ),
        databases="sqlite",
    ),
    Mutant(
        id="sqlite-wal-kept-at-its-peak",
        guarantee="cost follows the change: rarer SQLite checkpoints without a WAL file kept at its peak",
        file="pendingops/db/database.py",
        why="a WAL grown between the rarer checkpoints keeps its size on disk after they copied it back",
        old="""            cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")""",
        new="""            pass""",
        tests=("tests/db/test_statistics.py::test_a_checkpointed_sqlite_wal_is_cut_back_to_its_size_limit",),
        databases="sqlite",
    ),
    Mutant(
        id="stats-share-ignored",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/statistics.py",
        why="only a change larger than the whole table counts: statistics stay stale after a change of a third",
        old="""    return changed >= STALE_ROWS or changed > STALE_SHARE * max(known, 0)""",
        new="""    return changed >= STALE_ROWS or changed > max(known, 0)""",
        tests=("tests/db/test_statistics.py::test_a_small_change_beside_fresh_statistics_analyses_nothing_a_large_one_does",),
        databases="both",
    ),
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
    Mutant(
        id="stats-not-refreshed-after-rollback",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/maintenance/lifecycle.py",
        why="a rollback that brought back hundreds of membership rows leaves their statistics as they were",
        old="""    refresh_statistics(db, {"repository_content": done.added + done.removed})""",
        new="""    pass""",
        tests=("tests/db/test_statistics.py::test_a_rollback_and_retention_refresh_the_membership_statistics",),
        databases="both",
    ),
    Mutant(
        id="stats-retention-uncounted",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/maintenance/lifecycle.py",
        why="retention counts no changed rows: the membership statistics still describe the removed versions",
        old="""    changed.append(sql.membership_changes(conn, repo_id, numbers))""",
        new="""    changed.append(0)""",
        tests=("tests/db/test_statistics.py::test_a_rollback_and_retention_refresh_the_membership_statistics",),
        databases="both",
    ),
    Mutant(
        id="stats-not-refreshed-after-orphans",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/maintenance/orphans.py",
        why="an orphan cleanup that removed most content leaves the planner believing it is still there",
        old="""    refresh_statistics(db, gone | {"artifact": report.artifacts})""",
        new="""    pass""",
        tests=("tests/db/test_statistics.py::test_an_orphan_cleanup_refreshes_the_statistics_of_what_it_removed",),
        databases="both",
    ),
    Mutant(
        id="rollback-update-one-statement",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/lifecycle.py",
        why="the rows of what came after are ended in one statement around the diff: a planner whose statistics"
        " predate the repository probes all its current rows once per unit (quadratic)",
        old="""_rc.c.content_id.in_(chunk), current)""",
        new="""_rc.c.content_id.in_(_only_in(repository_id, latest, target).scalar_subquery()), current)""",
        tests=(
            "tests/db/test_skewed_plans.py::test_a_rollback_ends_the_rows_of_what_came_after_through_the_content_index",
        ),
        databases="both",
    ),
    Mutant(
        id="join-adjacent-by-repository",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/lifecycle.py",
        why="the later row of a unit is looked for through a repository index: skewed statistics walk the"
        " whole repository for every row ending at the removed version",
        old="""                starting.c.repository_id + 0 == ending.c.repository_id,""",
        new="""                starting.c.repository_id == ending.c.repository_id,""",
        tests=(
            "tests/db/test_skewed_plans.py::test_removing_versions_joins_adjacent_rows_through_the_content_index",
            "tests/db/test_skewed_plans.py::test_with_statistics_that_predate_a_repository_the_join_of_adjacent_rows_stays_a_probe",
        ),
        databases="both",
    ),
    Mutant(
        id="sqlite-no-optimize-on-close",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/database.py",
        why="a SQLite connection closes without PRAGMA optimize: tables it queried keep no statistics",
        old="""            dbapi_conn.execute("PRAGMA optimize")""",
        new="""            pass""",
        tests=("tests/db/test_statistics.py::test_a_sqlite_connection_that_closes_runs_pragma_optimize",),
        databases="sqlite",
    ),
    Mutant(
        id="sqlite-pool-keeps-old-statistics",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/statistics.py",
        why="SQLite connections the pool kept from before a refresh never load its statistics",
        old="""        db.engine.dispose()""",
        new="""        pass""",
        tests=(
            "tests/db/test_statistics.py::test_after_a_refresh_sqlite_connections_of_the_pool_plan_with_the_new_statistics",
        ),
        databases="sqlite",
    ),
    Mutant(
        id="lookup-membership-by-repository",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/lookups.py",
        why="the membership probe may use a (repository, ...) index: statistics that predate the repository"
        " call it empty and every unit's probe walks all its rows",
        old="""            _rc.c.repository_id + 0 == repository_id,""",
        new="""            _rc.c.repository_id == repository_id,""",
        tests=(
            "tests/db/test_statistics.py::test_after_the_first_sync_a_lookup_beside_the_store_probes_by_key_and_membership_by_content",
        ),
        databases="both",
    ),
    # -- If-Match and If-Unmodified-Since (RFC 9110 13.1.1, 13.1.4, 13.2.2) ------------------------------
    Mutant(
        id="serve-if-match-weak",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-Match compares weakly: a W/ tag of this file passes the precondition",
        old="""        return not any(not tag.is_weak and tag.value in (_ANY, etag[1:-1]) for tag in match)""",
        new="""        return not any(tag.value in (_ANY, etag[1:-1]) for tag in match)""",
        tests=(
            T_COND + "test_the_conditions_decide_as_rfc_9110_s_table",
            T_412 + "[sqlite-local-1 KiB, sent at once]",
        ),
    ),
    Mutant(
        id="serve-unmodified-since-despite-if-match",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="a matching If-Match falls through to If-Unmodified-Since: an earlier date makes it a 412",
        old="""    if match is not None:
        return not any(not tag.is_weak and tag.value in (_ANY, etag[1:-1]) for tag in match)""",
        new="""    if match is not None and not any(
        not tag.is_weak and tag.value in (_ANY, etag[1:-1]) for tag in match
    ):
        return True""",
        tests=(
            T_COND + "test_the_conditions_decide_as_rfc_9110_s_table",
            T_412 + "[sqlite-local-1 KiB, sent at once]",
        ),
    ),
    Mutant(
        id="serve-unmodified-since-inclusive",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-Unmodified-Since at exactly Last-Modified is a 412: the file was not modified since",
        old="""int(last_modified.timestamp()) > since.timestamp()""",
        new="""int(last_modified.timestamp()) >= since.timestamp()""",
        tests=(
            T_COND + "test_the_conditions_decide_as_rfc_9110_s_table",
            T_412 + "[sqlite-local-1 KiB, sent at once]",
        ),
    ),
    Mutant(
        id="serve-304-before-412",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-None-Match is looked at before If-Match: a failed precondition is answered 304",
        old="""    if precondition_failed(request, etag, last_modified):
        return 412
    if not_modified(request, etag, last_modified):
        return 304""",
        new="""    if not_modified(request, etag, last_modified):
        return 304
    if precondition_failed(request, etag, last_modified):
        return 412""",
        tests=(
            T_COND + "test_the_conditions_decide_as_rfc_9110_s_table",
            T_412 + "[sqlite-local-1 KiB, sent at once]",
        ),
    ),
    Mutant(
        id="serve-s3-ignores-preconditions",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/stored.py",
        why="a file read through an object store skips If-Match and If-Unmodified-Since",
        old="""    status = condition_status(request, etag, last_modified)""",
        new="""    status = condition_status(request.clone(headers={}), etag, last_modified)""",
        tests=(T_412 + "[sqlite-s3-1 KiB, sent at once]",),
    ),
    # -- the plain progress printer ---------------------------------------------------------------------
    Mutant(
        id="progress-plain-line-at-start",
        guarantee="a quick failing sync prints only its error",
        file="pendingops/cli/_progress.py",
        why="the plain printer logs its first line at the first snapshot, before its interval has passed",
        old="""        self._next_log = self._log_every""",
        new="""        self._next_log = 0.0""",
        tests=(
            "tests/cli/test_progress.py::test_a_plain_line_comes_only_once_each_interval_of_the_sync_has_passed",
            "tests/cli/test_progress.py::test_a_sync_failing_before_the_first_interval_prints_only_its_error[sqlite]",
        ),
    ),
    Mutant(
        id="progress-plain-line-every-snapshot",
        guarantee="a quick failing sync prints only its error",
        file="pendingops/cli/_progress.py",
        why="once the first interval has passed, the plain printer logs every snapshot, not one per interval",
        old="""            self._next_log = snapshot.elapsed + self._log_every""",
        new="""            self._next_log = self._log_every""",
        tests=("tests/cli/test_progress.py::test_a_plain_line_comes_only_once_each_interval_of_the_sync_has_passed",),
    ),
    # -- the resync's unchanged units, compared and declared in SQL -----------------------------------
    Mutant(
        id="unchanged-ignores-digest",
        guarantee="2 digests on every path",
        file="pendingops/db/unchanged.py",
        why="a unit whose remote now declares another sha256 is taken as unchanged: its source row stays stale",
        old="""        _ra.c.sha256 == temp.c.a_sha256,""",
        new="""        True,""",
        tests=(T_UNCHANGED + "test_a_changed_url_size_or_digest_goes_through_the_pipeline",),
        databases="both",
    ),
    Mutant(
        id="unchanged-ignores-url",
        guarantee="unchanged units only skip the pipeline",
        file="pendingops/db/unchanged.py",
        why="a unit served from a new url is taken as unchanged: the on-demand source keeps the old url",
        old="""        _ra.c.url == temp.c.a_url,""",
        new="""        True,""",
        tests=(T_UNCHANGED + "test_a_changed_url_size_or_digest_goes_through_the_pipeline",),
        databases="both",
    ),
    Mutant(
        id="unchanged-ignores-stored-bytes",
        guarantee="2 digests on every path",
        file="pendingops/db/unchanged.py",
        why="a stored artifact whose size contradicts the remote is taken as unchanged instead of reported",
        old="""        or_(temp.c.a_size.is_(None), _artifact.c.size == temp.c.a_size),""",
        new="""        True,""",
        tests=(T_UNCHANGED + "test_a_stored_artifact_of_other_bytes_is_not_unchanged",),
        databases="both",
    ),
    Mutant(
        id="unchanged-skips-missing-file-check",
        guarantee="a file on disk before its row",
        file="pendingops/operators/_unchanged.py",
        why="an unchanged unit whose stored file was deleted is kept without it: the version serves a missing file",
        old="""missing = await asyncio.to_thread(missing_locations, ctx.storage, locations)""",
        new="""missing = set() if True else await asyncio.to_thread(missing_locations, ctx.storage, locations)""",
        tests=(T_UNCHANGED + "test_a_unit_whose_stored_file_was_deleted_is_fetched_again",),
    ),
    Mutant(
        id="unchanged-any-past-membership",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/unchanged.py",
        why="content the repository held once (removed since) is taken as a member: it is never added back",
        old="""_rc.c.version_removed.is_(None)""",
        new="""True""",
        tests=(
            T_UNCHANGED + "test_a_unit_removed_earlier_or_held_by_another_repository_is_added_again",
            T_UNCHANGED + "test_the_version_is_what_was_declared_whatever_the_shortcut_took",
        ),
        databases="both",
    ),
    Mutant(
        id="unchanged-any-repository",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/unchanged.py",
        why="content another repository holds is taken as this one's: a second repository never gets it",
        old="""_rc.c.repository_id == repository_id, """,
        new="""""",
        tests=(T_UNCHANGED + "test_a_unit_removed_earlier_or_held_by_another_repository_is_added_again",),
        databases="both",
    ),
    Mutant(
        id="unchanged-not-declared-in-mirror",
        guarantee="mirror removes, additive keeps",
        file="pendingops/operators/_unchanged.py",
        why="unchanged units are not declared in the new version: a mirror resync removes them all",
        old="""    declare_in = ctx.version if ctx.mirror else None""",
        new="""    declare_in = None""",
        tests=(T_UNCHANGED + "test_unchanged_units_are_declared_and_not_fetched_again",),
    ),
    Mutant(
        id="unchanged-declared-in-another-version",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/unchanged.py",
        why="the INSERT ... SELECT declares the unchanged units for another version than the one being built",
        old="""        declared = select(literal(declare_in.id), matches.c.content_id)""",
        new="""        declared = select(literal(declare_in.id - 1), matches.c.content_id)""",
        tests=(T_UNCHANGED + "test_unchanged_units_are_declared_and_not_fetched_again",),
        databases="both",
    ),
    Mutant(
        id="unchanged-temp-not-analysed",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/unchanged.py",
        why="the loaded batch has no statistics: SQLite scans a whole store table per batch and probes the batch",
        old="""    conn.exec_driver_sql(f"ANALYZE {temp.name}")""",
        new="""    pass""",
        tests=(T_UNCHANGED + "test_the_comparison_walks_the_batch_and_probes_the_store_by_index",),
    ),
    Mutant(
        id="unchanged-joined-not-probed",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/unchanged.py",
        why="PostgreSQL joins the batch to the store as it plans: a hash or merge join reads whole tables per batch",
        old="""    if dialect == "postgresql":
        probe""",
        new="""    if False:
        probe""",
        tests=(T_UNCHANGED + "test_the_comparison_walks_the_batch_and_probes_the_store_by_index",),
        databases="postgresql",
    ),
    Mutant(
        id="unchanged-skips-null-fields",
        guarantee="fill, never overwrite",
        file="pendingops/db/unchanged.py",
        why="stored content with a NULL field the unit declares is taken as unchanged: save never fills it",
        old="""        conditions.append(or_(typed.c[name].is_not(None), temp.c[f"d_{name}"] == 0))""",
        new="""        pass""",
        tests=(T_UNCHANGED + "test_a_stored_null_field_the_unit_declares_is_filled_not_skipped",),
    ),
)

#: Obvious mutants that are not in the list: killed only if the tests import the scratch copy, in
#: process and through the ``pendingops`` console script the CLI tests start.
SELF_CHECKS: tuple[Mutant, ...] = (
    Mutant(
        id="self-check-in-process",
        guarantee="the copy is imported",
        file="pendingops/db/versions.py",
        why="every version number is off by one",
        old="""    number = base.number + 1""",
        new="""    number = base.number + 2""",
        tests=(T_DECL + "test_initial_sync_then_mirror_resync",),
    ),
    Mutant(
        id="self-check-console-script",
        guarantee="the copy is imported",
        file="pendingops/plugins/__init__.py",
        why="the console script lists no plugin",
        old="""    broken: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):""",
        new="""    broken: dict[str, str] = {}
    return {}, broken
    for entry in entry_points(group=ENTRY_POINT_GROUP):""",
        tests=("tests/cli/test_cli.py::test_plugins_lists_the_file_plugin",),
    ),
)


# -- running ---------------------------------------------------------------------------------------


class PatternError(Exception):
    """A mutant's snippet is missing from its file, or found more than once."""


@dataclass
class Outcome:
    mutant: Mutant
    result: str
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    detail: str = ""
    postgres_ran: bool = False
    #: pytest's one-line summary of each failed test
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result in ("killed", "killed (hang)", "passes")


def mutate(text: str, mutant: Mutant) -> str:
    """``text`` with the mutant's edits; PatternError if a snippet is not there exactly once."""
    for old, new in mutant.edits:
        count = text.count(old)
        if count != 1:
            problem = "pattern not found" if count == 0 else f"pattern ambiguous ({count} matches)"
            first = old.strip().splitlines()[0]
            raise PatternError(f"{mutant.id}: {problem} in {mutant.file}: {first!r}")
        text = text.replace(old, new)
    return text


def committed_tree(dest: Path) -> str:
    """Extract the tree of HEAD into ``dest``; return HEAD's short commit id."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return head.stdout.strip()


def check_patterns(base: Path, mutants: Sequence[Mutant]) -> list[str]:
    """The pattern problems of ``mutants`` against the committed files in ``base``."""
    problems = []
    for mutant in mutants:
        path = base / mutant.file
        if not path.is_file():
            problems.append(f"{mutant.id}: file not found: {mutant.file}")
            continue
        try:
            mutated = mutate(path.read_text(encoding="utf-8"), mutant)
            compile(mutated, str(path), "exec")
        except PatternError as exc:
            problems.append(str(exc))
        except SyntaxError as exc:
            problems.append(f"{mutant.id}: the mutated {mutant.file} does not compile: {exc}")
    return problems


def postgres_reachable() -> bool:
    """Whether the tests' PostgreSQL server answers (the same check the tests make)."""
    probe = (
        "import os, sqlalchemy\n"
        "url = os.environ.get('PENDINGOPS_TEST_POSTGRES', 'postgresql+psycopg2://postgres@127.0.0.1:5432/test')\n"
        "url = sqlalchemy.engine.make_url(url).set(database='postgres')\n"
        "sqlalchemy.create_engine(url, connect_args={'connect_timeout': 3}).connect().close()\n"
    )
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["HYPOTHESIS_PROFILE"] = "ci"  # derandomized: the same examples on every run
    env["COLUMNS"] = "400"  # pytest cuts its one-line failure summaries to the terminal's width
    # A skipped PostgreSQL test must stay a skip (counted by this tool), not become a failure.
    env.pop("PENDINGOPS_REQUIRE_POSTGRES", None)
    return env


def _imported_from(copy: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import pendingops; print(pendingops.__file__)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or done.stderr.strip()


def run_tests(mutant: Mutant, copy: Path, outcome: Outcome) -> int | None:
    """Run the mutant's tests in ``copy``; fill ``outcome``'s counts; return pytest's exit code (None: hung)."""
    env = _environment(copy)
    imported = _imported_from(copy, env)
    if not imported.startswith(str(copy)):
        outcome.detail = f"pendingops is imported from {imported}, not from the scratch copy"
        return -1
    report = copy / "mutant-report.xml"
    markers = {"sqlite": ["-m", "not postgres"], "postgresql": ["-m", "postgres"], "both": []}[mutant.databases]
    # A database-independent mutant stops at its first failing test; a database-specific one runs its
    # tests on every database, so the table shows where it is caught.
    stop = ["-x"] if mutant.databases == "sqlite" else []
    command = [
        sys.executable,
        "-m",
        "pytest",
        *stop,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--timeout={TEST_TIMEOUT}",
        f"--junitxml={report}",
        *markers,
        *mutant.tests,
    ]
    process = subprocess.Popen(
        command, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        code = None
    _read_report(report, outcome)
    outcome.failures = [line for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    if code not in (0, 1):
        outcome.detail = output.strip().splitlines()[-1] if output.strip() else f"pytest exit code {code}"
    return code


def _read_report(report: Path, outcome: Outcome) -> None:
    if not report.exists():
        return
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("skipped") is not None:
            outcome.skipped += 1
            continue
        outcome.ran += 1
        if "postgresql" in name:  # a "[postgresql]" parameter, or a PostgreSQL-only test
            outcome.postgres_ran = True
        if case.find("failure") is not None or case.find("error") is not None:
            outcome.failed += 1


def run_one(mutant: Mutant, base: Path, scratch: Path, *, apply: bool) -> Outcome:
    """Copy ``base``, apply ``mutant`` (unless ``apply`` is false: the baseline), run its tests."""
    started = time.monotonic()
    outcome = Outcome(mutant, "ERROR")
    copy = Path(tempfile.mkdtemp(prefix=f"{mutant.id}-", dir=scratch))
    try:
        shutil.copytree(base, copy, dirs_exist_ok=True)
        if apply:
            target = copy / mutant.file
            target.write_text(mutate(target.read_text(encoding="utf-8"), mutant), encoding="utf-8")
        code = run_tests(mutant, copy, outcome)
    except PatternError as exc:
        outcome.detail = str(exc)
        outcome.result = "PATTERN NOT FOUND"
        return outcome
    finally:
        outcome.seconds = time.monotonic() - started
        shutil.rmtree(copy, ignore_errors=True)
    wants_postgres = mutant.databases != "sqlite"
    if code is None:
        outcome.result = "killed (hang)" if apply else "HANGS"
    elif code == -1:
        outcome.result = "ERROR"
    elif code not in (0, 1) or outcome.ran == 0:
        outcome.result = "ERROR"
        outcome.detail = outcome.detail or "no test ran: is the selection stale?"
    elif wants_postgres and not outcome.postgres_ran and code == 0:
        outcome.result = "NOT RUN ON POSTGRESQL"
        outcome.detail = "the guarantee is database-specific and no PostgreSQL test ran"
    elif apply:
        outcome.result = "killed" if code == 1 else "SURVIVED"
    else:
        outcome.result = "passes" if code == 0 else "FAILS UNMUTATED"
    return outcome


def print_table(outcomes: Sequence[Outcome], *, show_failures: bool = False) -> None:
    """The table of outcomes; with ``show_failures``, the line pytest gave each failed test."""
    rows = [("id", "guarantee", "file", "result", "tests run", "seconds")]
    for o in outcomes:
        tests = (
            f"{o.ran}" + (f" ({o.failed} failed)" if o.failed else "") + (f", {o.skipped} skipped" if o.skipped else "")
        )
        rows.append((o.mutant.id, o.mutant.guarantee, o.mutant.file, o.result, tests, f"{o.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("-+-".join("-" * width for width in widths))
    for o in outcomes:
        if o.detail:
            print(f"  {o.mutant.id}: {o.detail}")
        for line in o.failures if show_failures else ():
            print(f"  {o.mutant.id}: {_shorten(line)}")


def _shorten(text: str, limit: int = 220) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choose(ids: Sequence[str] | None) -> list[Mutant]:
    if not ids:
        return list(MUTANTS)
    known = {m.id: m for m in (*MUTANTS, *SELF_CHECKS)}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise SystemExit(f"unknown mutant id(s): {', '.join(unknown)} (see --list)")
    return [known[i] for i in ids]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and check their patterns")
    parser.add_argument("--baseline", action="store_true", help="check the selected tests pass without mutants")
    parser.add_argument("--why", action="store_true", help="show the failure that killed each mutant")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1: timing stays honest)")
    args = parser.parse_args(argv)
    mutants = choose(args.only)

    with tempfile.TemporaryDirectory(prefix="pendingops-mutants-") as scratch_dir:
        scratch = Path(scratch_dir)
        base = scratch / "base"
        base.mkdir()
        head = committed_tree(base)
        problems = check_patterns(base, [*mutants, *SELF_CHECKS])
        for problem in problems:
            print(f"ERROR {problem}", file=sys.stderr)
        if args.list:
            for m in mutants:
                print(f"{m.id:32} {m.guarantee:40} {m.file}\n{'':32} {m.why}")
                print(f"{'':32} tests ({m.databases}): {' '.join(m.tests)}")
            print(f"{len(mutants)} mutants; patterns checked against the committed tree at {head}")
            return 1 if problems else 0
        if problems:
            print("the mutant list no longer matches the code: fix the patterns first", file=sys.stderr)
            return 2
        if subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True).stdout:
            print(f"note: uncommitted changes are not part of the check (it runs the tree at {head})")
        if any(m.databases != "sqlite" for m in mutants) and not postgres_reachable():
            print("note: PostgreSQL does not answer: database-specific mutants cannot be run", file=sys.stderr)

        started = time.monotonic()
        apply = not args.baseline
        runs = mutants if apply else [*mutants, *(check for check in SELF_CHECKS if check not in mutants)]

        def job(mutant: Mutant) -> Outcome:
            # The baseline runs the self checks mutated: each must be killed to prove the copy is imported.
            outcome = run_one(mutant, base, scratch, apply=apply or mutant in SELF_CHECKS)
            print(f"  {mutant.id}: {outcome.result} ({outcome.seconds:.1f} s)", flush=True)
            return outcome

        print(f"{'mutants' if apply else 'baseline'} at {head}: {len(runs)} runs", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(job, runs))
        elapsed = time.monotonic() - started

    print()
    print_table(outcomes, show_failures=args.why)
    good = sum(o.ok for o in outcomes)
    if apply:
        killed = sum(o.result.startswith("killed") for o in outcomes)
        print(f"\n{killed}/{len(outcomes)} mutants killed in {elapsed:.0f} s (tree at {head})")
    else:
        print(f"\n{good}/{len(outcomes)} as expected in {elapsed:.0f} s (tree at {head})")
    return 0 if good == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
