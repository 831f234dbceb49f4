"""Worker processes on PostgreSQL: a SIGKILLed worker's sync is finished by another; SIGTERM re-queues."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from pendingops import open_database
from tests.cli.test_cli import Cli
from tests.conftest import POSTGRES_URL, assert_no_duplicate_rows, fresh_database
from tests.remote_server import Fault
from tests.s3_server import client
from tests.server_thread import ServerThread
from tests.workers.helpers import Queue, wait_for

pytestmark = pytest.mark.postgres


def repo_files(repo: str, count: int = 8) -> dict[str, bytes]:
    return {f"{repo}/file-{j}.txt": f"{repo} file {j}\n".encode() * 50 for j in range(count)}


def _exported(dest: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file() and p.name != "PULP_MANIFEST"
    }


@pytest.fixture
def empty_postgres(tmp_path: Path) -> Iterator[str]:
    fresh_database("postgresql", tmp_path).close()
    yield POSTGRES_URL


def test_three_workers_on_s3_survive_one_killed_mid_sync(
    empty_postgres: str, s3_url: str, s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 mirror syncs, 3 workers, one SIGKILLed while it runs a sync: all 6 succeed once, nothing fetched twice."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    repos = [f"r{i}" for i in range(6)]
    files = {repo: repo_files(repo) for repo in repos}
    held = "r0/file-7.txt"
    queue = Queue(empty_postgres, s3_url)
    with ExitStack() as stack:
        stack.callback(queue.stop_all)
        servers = {repo: stack.enter_context(ServerThread(files[repo])) for repo in repos}
        servers["r0"].faults[held] = Fault(stall=3600, times=1)  # the first request hangs; a retry is served
        workers = [queue.start_worker("--stalled-after", "2") for _ in range(3)]
        tasks = {repo: queue.enqueue(servers[repo].manifest_url, repo, "--mirror") for repo in repos}

        runner = wait_for(lambda: queue.task(tasks["r0"])["worker"], "a worker to take r0's sync")
        victim = next(w for w in workers if runner.endswith(f":{w.pid}"))
        stored = {hashlib.sha256(data).hexdigest() for path, data in files["r0"].items() if path != held}
        s3 = client(s3_env)
        bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")

        def stored_r0() -> bool:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/artifacts/")
            keys = {"".join(item["Key"].split("/")[-2:]) for page in pages for item in page.get("Contents", ())}
            return stored <= keys and servers["r0"].requests[held] == 1

        wait_for(stored_r0, "r0's worker to store all but the held file")
        assert queue.task(tasks["r0"])["state"] == "running"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()

        wait_for(lambda: all(t["state"] == "succeeded" for t in queue.tasks()), "all six syncs", patience=300)
        r0_requests = dict(servers["r0"].requests)

    listed = queue.tasks()
    assert sorted(t["task"] for t in listed) == sorted(tasks.values())  # one task per sync, none added
    assert all(t["version"] == 1 and t["error"] is None for t in listed)
    assert not queue.task(tasks["r0"])["worker"].endswith(f":{victim.pid}")  # another worker finished it
    # The retry fetched only what the dead worker had not stored.
    assert {path: count for path, count in r0_requests.items() if path != "PULP_MANIFEST"} == {
        **{path: 1 for path in files["r0"]},
        held: 2,
    }
    cli = Cli(empty_postgres, s3_url)  # type: ignore[arg-type]
    for repo in repos:
        assert [v["number"] for v in cli.json("versions", repo)] == [0, 1]  # type: ignore[union-attr]
        dest = tmp_path / "export" / repo
        assert cli.run("export", repo, str(dest)).returncode == 0
        assert _exported(dest) == files[repo]
    verify = cli.run("verify")
    assert verify.returncode == 0 and "0 problem(s)" in verify.stdout, verify.stdout + verify.stderr
    db = open_database(empty_postgres)
    try:
        assert_no_duplicate_rows(db)
    finally:
        db.close()


def test_sigterm_stops_the_running_sync_discards_its_version_and_requeues_it(
    empty_postgres: str, tmp_path: Path
) -> None:
    files = repo_files("r")
    held = "r/file-3.txt"
    queue = Queue(empty_postgres, tmp_path / "storage")
    with ExitStack() as stack:
        stack.callback(queue.stop_all)
        server = stack.enter_context(ServerThread(files))
        server.faults[held] = Fault(stall=3600, times=1)
        worker = queue.start_worker("--grace", "0.5")
        task = queue.enqueue(server.manifest_url, "r")
        wait_for(lambda: server.requests[held] == 1, "the sync to reach the held file")

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(120) == 0
        assert queue.task(task)["state"] == "queued"  # back in the queue, not failed
        cli = Cli(empty_postgres, tmp_path / "storage")
        assert [v["number"] for v in cli.json("versions", "r")] == [0]  # type: ignore[union-attr]

        queue.start_worker()
        wait_for(lambda: queue.task(task)["state"] == "succeeded", "the re-queued sync")
    assert queue.task(task)["version"] == 1
    assert [v["number"] for v in cli.json("versions", "r")] == [0, 1]  # type: ignore[union-attr]


def test_cancelling_a_running_sync_stops_it_for_good(empty_postgres: str, tmp_path: Path) -> None:
    files = repo_files("r")
    held = "r/file-3.txt"
    queue = Queue(empty_postgres, tmp_path / "storage")
    with ExitStack() as stack:
        stack.callback(queue.stop_all)
        server = stack.enter_context(ServerThread(files))
        server.faults[held] = Fault(stall=3600)
        worker = queue.start_worker()
        task = queue.enqueue(server.manifest_url, "r")
        wait_for(lambda: server.requests[held] == 1, "the sync to reach the held file")

        done = queue.run("tasks", "cancel", str(task))
        assert done.returncode == 0 and "asked to stop" in done.stdout
        wait_for(lambda: queue.task(task)["state"] == "cancelled", "the sync to stop")
        assert worker.poll() is None  # the worker goes on with other syncs
    cli = Cli(empty_postgres, tmp_path / "storage")
    assert [v["number"] for v in cli.json("versions", "r")] == [0]  # type: ignore[union-attr]
