"""Mutants of pendingops/cli/: the command line."""

from __future__ import annotations

from ._mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    # -- the seams between features: the shortcut and the storage, outage output, interrupted counts ---
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
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="storage-outage-is-bad-input",
        guarantee="an outage is exit 1, not 2",
        file="pendingops/cli/_app.py",
        why="verify or export cut by a storage outage exits 2, as if the user's input were wrong",
        old="""        return EXIT_FAILED  # an outage or a full disk, not bad input""",
        new="""        return EXIT_USAGE""",
        tests=("tests/maintenance/test_storage_faults.py::test_an_s3_outage_mid_run_is_exit_1_in_one_line",),
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
)
