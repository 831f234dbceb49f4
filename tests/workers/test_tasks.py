"""Tasks as users see them (PostgreSQL): numbers without gaps, a running sync's progress, show, --state, wait."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import text

from pendingops import open_database
from tests.conftest import POSTGRES_URL, fresh_database
from tests.remote_server import Fault
from tests.server_thread import ServerThread
from tests.workers.helpers import Queue, wait_for

pytestmark = pytest.mark.postgres

SIZE = 256 * 1024


def big_files(repo: str, count: int = 8) -> dict[str, bytes]:
    return {f"{repo}/file-{j}.bin": bytes([j]) * SIZE for j in range(count)}


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    fresh_database("postgresql", tmp_path).close()
    queue = Queue(POSTGRES_URL, tmp_path / "storage")
    yield queue
    queue.stop_all()


def jobs() -> list[tuple[int, str]]:
    """The queue's jobs, sync and internal, as (job id, task name)."""
    db = open_database(POSTGRES_URL)
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, task_name FROM procrastinate_jobs ORDER BY id"))
            return [(row.id, row.task_name) for row in rows]
    finally:
        db.close()


#: the keys of ``tasks show --json``, in order; ``tasks --json`` lists each task with all but ``options``
RECORD_KEYS = [
    "task",
    "repository",
    "url",
    "state",
    "worker",
    "queued_at",
    "started_at",
    "finished_at",
    "elapsed_s",
    "version",
    "error",
    "units_done",
    "units_total",
    "downloaded_bytes",
    "progress_at",
    "options",
]


def test_only_syncs_are_numbered_and_without_gaps_across_schedule_ticks(queue: Queue) -> None:
    with ServerThread(big_files("r", 2)) as server:
        queue.start_worker("--schedule-tick", "1")
        first = queue.run("sync", server.manifest_url, "--repo", "a", "--enqueue")
        assert (first.returncode, first.stdout) == (0, "queued task 1\n"), first.stderr
        second = queue.run("sync", server.manifest_url, "--repo", "b", "--enqueue", "--json")
        assert (second.returncode, json.loads(second.stdout)) == (0, {"task": 2}), second.stderr
        # the schedule ticks are jobs of the same queue: wait until two came after task 2's job
        wait_for(lambda: sum(name != "pendingops.sync" for _, name in jobs()) >= 2, "two schedule ticks")
        assert queue.enqueue(server.manifest_url, "c") == 3
        wait_for(lambda: all(t["state"] == "succeeded" for t in queue.tasks()), "the three syncs")
    sync_jobs = [job for job, name in jobs() if name == "pendingops.sync"]
    assert sync_jobs[2] - sync_jobs[1] > 1  # the job ids have a gap; the task numbers have none
    listed = queue.tasks()
    assert [(t["task"], t["repository"]) for t in listed] == [(1, "a"), (2, "b"), (3, "c")]
    # tasks cancel takes the number: task 3 is found (its job id is not 3)
    done = queue.run("tasks", "cancel", "3")
    assert (done.returncode, done.stdout) == (1, "task 3 is succeeded: nothing to cancel\n")


def test_a_running_sync_shows_its_progress_and_wait_times_out(queue: Queue) -> None:
    files = big_files("r")
    held = "r/file-7.bin"
    with ExitStack() as stack:
        server = stack.enter_context(ServerThread(files))
        server.faults[held] = Fault(stall=3600)
        queue.start_worker()
        task = queue.enqueue(server.manifest_url, "r", "--mirror", "--batch-size", "1")
        others = len(files) - 1

        def progressed() -> dict | None:
            found = queue.task(task)
            return found if (found["downloaded_bytes"], found["units_done"]) == (others * SIZE, others) else None

        running = wait_for(progressed, "the progress of the files before the held one")
        assert server.requests[held] == 1
        assert running["state"] == "running" and running["units_total"] == len(files)
        assert running["elapsed_s"] >= 0 and running["progress_at"]

        table = queue.run("tasks")
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        row = next(i for i, line in enumerate(lines) if line.split()[:2] == [str(task), "running"])
        assert f"/ {len(files)} units, 1.8 MiB, " in lines[row + 1]

        assert [t["task"] for t in json.loads(queue.run("tasks", "--state", "running", "--json").stdout)] == [task]
        assert json.loads(queue.run("tasks", "--state", "succeeded", "--json").stdout) == []

        shown = queue.run("tasks", "show", str(task), "--json")
        assert shown.returncode == 0, shown.stderr
        record = json.loads(shown.stdout)
        assert record["task"] == task and record["state"] == "running" and record["version"] is None
        assert record["options"]["repository"] == "r" and record["options"]["mirror"] is True
        assert record["options"]["batch_size"] == 1
        assert record["url"] == record["options"]["url"] == server.manifest_url

        waited = queue.run("tasks", "wait", str(task), "--timeout", "0.5")
        assert waited.returncode == 2 and waited.stderr == f"pendingops: task {task} is still running after 0.5 s\n"

        assert queue.run("tasks", "cancel", str(task)).returncode == 0
        cancelled = queue.run("tasks", "wait", str(task))
        assert (cancelled.returncode, cancelled.stdout) == (1, f"task {task} cancelled\n"), cancelled.stderr


def test_wait_gives_the_outcome_and_show_the_whole_record(queue: Queue) -> None:
    release = threading.Event()
    with ServerThread(big_files("r", 3)) as server:
        server.faults["r/file-2.bin"] = Fault(stall=3600, until=release)
        good = queue.enqueue(server.manifest_url, "r", "--batch-size", "1")
        bad = queue.enqueue(server.base_url + "missing/PULP_MANIFEST", "s")
        queue.start_worker()
        # progress recorded half way, then the held file is let go: the record ends with the final counts
        wait_for(lambda: queue.task(good)["downloaded_bytes"] == 2 * SIZE, "the sync to reach the held file")
        release.set()
        succeeded = queue.run("tasks", "wait", str(good), "--timeout", "600")
        assert (succeeded.returncode, succeeded.stdout) == (0, f"task {good} succeeded (version 1)\n")
        failed = queue.run("tasks", "wait", str(bad))
        assert failed.returncode == 1 and failed.stdout.startswith(f"task {bad} failed: ") and "404" in failed.stdout
    record = json.loads(queue.run("tasks", "show", str(good), "--json").stdout)
    assert list(record) == RECORD_KEYS and list(queue.task(good)) == RECORD_KEYS[:-1]  # users' scripts read them
    assert record["state"] == "succeeded" and record["version"] == 1 and record["error"] is None
    assert record["units_done"] == record["units_total"] == 3 and record["downloaded_bytes"] == 3 * SIZE
    assert record["queued_at"] <= record["started_at"] <= record["finished_at"] and record["elapsed_s"] >= 0
    failed_record = json.loads(queue.run("tasks", "show", str(bad), "--json").stdout)
    assert failed_record["state"] == "failed" and "404" in failed_record["error"]
    text_record = queue.run("tasks", "show", str(good)).stdout
    assert "state:            succeeded" in text_record and "repository:" in text_record and "options:" in text_record

    for action in ("wait", "show", "cancel"):
        missing = queue.run("tasks", action, "99")
        assert (missing.returncode, missing.stderr) == (2, "pendingops: error: no task 99\n"), action
    bogus = queue.run("tasks", "--state", "done")
    assert (bogus.returncode, bogus.stderr) == (
        2,
        "pendingops: error: no task state 'done' (one of: queued, running, succeeded, failed, cancelled)\n",
    )
