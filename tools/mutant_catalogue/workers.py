"""Mutants of pendingops/workers/: the task queue."""

from __future__ import annotations

from ._mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    # -- operating: serve's login and --repos, health, metrics; the reserved name ------------------
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
    # -- the seams between features: the shortcut and the storage, outage output, interrupted counts ---
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
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
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
)
