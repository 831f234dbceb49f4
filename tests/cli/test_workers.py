"""``worker``, ``sync --enqueue``, ``tasks`` and ``tasks cancel`` with real worker processes on PostgreSQL."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pendingops.cli._app import build_parser
from pendingops.cli._request import sync_request
from tests.cli.test_cli import Cli, digests, files_v1
from tests.conftest import POSTGRES_URL, fresh_database
from tests.server_thread import ServerThread
from tests.workers.helpers import Queue, wait_for


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    fresh_database("postgresql", tmp_path).close()  # an empty schema: no queue tables yet either
    queue = Queue(POSTGRES_URL, tmp_path / "storage")
    yield queue
    queue.stop_all()


@pytest.mark.parametrize(
    "command",
    [
        ("sync", "http://127.0.0.1:1/M", "--repo", "r", "--enqueue"),
        ("schedule", "add", "nightly", "http://127.0.0.1:1/M", "--repo", "r", "--every", "1d"),
    ],
)
def test_queued_and_scheduled_syncs_carry_force(command: tuple[str, ...]) -> None:
    parser = build_parser()
    assert sync_request(parser.parse_args([*command, "--force"])).force is True
    assert sync_request(parser.parse_args(list(command))).force is False


@pytest.mark.parametrize(
    "args", [("worker",), ("sync", "http://127.0.0.1:1/M", "--repo", "r", "--enqueue"), ("tasks",)]
)
def test_sqlite_refuses_the_queue_in_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    done = Cli(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "storage").run(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"pendingops: error: {'--enqueue' if '--enqueue' in args else args[0]} needs a PostgreSQL database"
        " (--db postgresql://...); this one is SQLite"
    ]


@pytest.mark.postgres
def test_queued_syncs_run_on_a_worker_one_queued_per_repository(queue: Queue) -> None:
    files = files_v1()
    with ServerThread(files) as server:
        first = queue.enqueue(server.manifest_url, "r", "--mirror")
        again = queue.run("sync", server.manifest_url, "--repo", "r", "--enqueue")
        assert again.returncode == 0 and again.stdout == f"queued task {first}\n"
        assert f"already queued: task {first}" in again.stderr
        other = queue.enqueue(server.manifest_url, "s")
        broken = queue.enqueue(server.base_url + "missing/PULP_MANIFEST", "t")
        listed = queue.tasks()
        assert [(t["task"], t["repository"], t["state"]) for t in listed] == [
            (first, "r", "queued"),
            (other, "s", "queued"),
            (broken, "t", "queued"),
        ]
        assert listed[0]["queued_at"] and not listed[0]["started_at"] and listed[0]["worker"] is None

        worker = queue.start_worker("--concurrency", "2")
        wait_for(lambda: all(t["state"] in ("succeeded", "failed") for t in queue.tasks()), "the three syncs")
    by_repo = {t["repository"]: t for t in queue.tasks()}
    assert [by_repo[r]["state"] for r in "rst"] == ["succeeded", "succeeded", "failed"]
    assert by_repo["r"]["version"] == 1 and by_repo["r"]["error"] is None
    assert by_repo["r"]["worker"].endswith(f":{worker.pid}")
    assert by_repo["r"]["queued_at"] <= by_repo["r"]["started_at"] <= by_repo["r"]["finished_at"]
    assert "404" in by_repo["t"]["error"] and by_repo["t"]["version"] is None
    cli = Cli(POSTGRES_URL, Path(queue.storage))
    assert cli.version_files("r") == cli.version_files("s") == digests(files)

    table = queue.run("tasks")
    assert table.returncode == 0 and "succeeded" in table.stdout and "error:" in table.stdout
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(120) == 0


@pytest.mark.postgres
def test_cancel_a_queued_task(queue: Queue) -> None:
    with ServerThread(files_v1()) as server:
        task = queue.enqueue(server.manifest_url, "r")
        done = queue.run("tasks", "cancel", str(task))
        assert done.returncode == 0 and f"task {task} cancelled" in done.stdout
        assert queue.task(task)["state"] == "cancelled"
        again = queue.run("tasks", "cancel", str(task))
        assert again.returncode == 1 and "nothing to cancel" in again.stdout
        missing = queue.run("tasks", "cancel", "999999")
        assert missing.returncode == 2 and missing.stderr.strip() == "pendingops: error: no task 999999"
        # A new sync of the repository can be queued, and a worker runs it, not the cancelled one.
        fresh = queue.enqueue(server.manifest_url, "r")
        assert fresh != task
        queue.start_worker()
        wait_for(lambda: queue.task(fresh)["state"] == "succeeded", "the new sync")
    assert queue.task(task)["state"] == "cancelled"
