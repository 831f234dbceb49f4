"""Queued and scheduled syncs run the one sync path, with real worker processes on PostgreSQL (issue 26,
items 1-2): retention applies on every path, a deleted repository never comes back, and credentials
never travel through the queue (issue 25, item 3)."""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.cli.test_cli import assert_clean_error
from tests.conftest import POSTGRES_URL, fresh_database
from tests.remote_server import LoginServer
from tests.server_thread import ServerThread
from tests.workers.helpers import Queue, wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    fresh_database("postgresql", tmp_path).close()
    queue = Queue(POSTGRES_URL, tmp_path / "storage")
    yield queue
    queue.stop_all()


def _versions(queue: Queue, repo: str) -> list[int]:
    done = queue.run("versions", repo, "--json")
    assert done.returncode == 0, done.stderr
    return [v["number"] for v in json.loads(done.stdout)]


def _repos(queue: Queue) -> list[str]:
    done = queue.run("repos", "--json")
    assert done.returncode == 0, done.stderr
    return [r["name"] for r in json.loads(done.stdout)]


def _finished(queue: Queue, task_id: int) -> dict:
    def ended() -> dict | None:
        task = queue.task(task_id)
        return None if task["state"] in ("queued", "running") else task

    return wait_for(ended, f"task {task_id}")


def test_the_worker_applies_remembered_and_queued_retention(queue: Queue) -> None:
    with ServerThread({"a": b"one\n"}) as server:
        assert queue.run("sync", server.manifest_url, "--repo", "r", "--retain", "1").returncode == 0
        server.files["b"] = b"two\n"
        remembered = queue.enqueue(server.manifest_url, "r")  # retention remembered by the by-hand sync
        for content in (b"three\n", b"four\n"):
            assert queue.run("sync", server.manifest_url, "--repo", "q").returncode == 0
            server.files["q"] = content
        assert _versions(queue, "q") == [0, 1, 2]
        carried = queue.enqueue(server.manifest_url, "q", "--retain", "1")  # K travels with the queued sync
        queue.start_worker()
        assert _finished(queue, remembered)["state"] == "succeeded"
        assert _finished(queue, carried)["state"] == "succeeded"
    assert _versions(queue, "r") == [2]
    assert _versions(queue, "q") == [3]


def test_repos_delete_refuses_while_syncs_are_queued_and_yes_cancels_them(queue: Queue) -> None:
    with ServerThread({"a": b"one\n"}) as server:
        assert queue.run("sync", server.manifest_url, "--repo", "r2").returncode == 0
        task = queue.enqueue(server.manifest_url, "r2")
        refused = queue.run("repos", "delete", "r2")
        assert_clean_error(refused, 2)
        assert "repository 'r2' has 1 queued sync(s) and 0 schedule(s)" in refused.stderr
        assert "r2" in _repos(queue) and queue.task(task)["state"] == "queued"
        done = queue.run("repos", "delete", "r2", "--yes")
        assert done.returncode == 0, done.stderr
        assert "removed repository 'r2'" in done.stdout and "cancelled 1 queued sync(s)" in done.stdout
        marker = queue.enqueue(server.manifest_url, "marker")  # queued after: run once the queue is past r2
        queue.start_worker()
        assert _finished(queue, marker)["state"] == "succeeded"
    assert queue.task(task)["state"] == "cancelled"
    assert _repos(queue) == ["marker"]


def test_a_queued_sync_that_meets_a_deleted_repository_fails_in_one_line_and_creates_nothing(queue: Queue) -> None:
    from pendingops import open_database
    from pendingops.maintenance.lifecycle import delete_repository

    with ServerThread({"a": b"one\n"}) as server:
        for repo in ("gone", "again"):
            assert queue.run("sync", server.manifest_url, "--repo", repo).returncode == 0
        gone, again = queue.enqueue(server.manifest_url, "gone"), queue.enqueue(server.manifest_url, "again")
        db = open_database(POSTGRES_URL)
        try:  # removed behind the queue's back (as an older release did): the queued syncs stay
            delete_repository(db, "gone")
            delete_repository(db, "again")
        finally:
            db.close()
        assert queue.run("sync", server.manifest_url, "--repo", "again").returncode == 0  # a new one, same name
        queue.start_worker()
        for task_id, repo in ((gone, "gone"), (again, "again")):
            failed = _finished(queue, task_id)
            assert failed["state"] == "failed"
            assert failed["error"].splitlines() == [
                f"RepositoryGone: repository '{repo}' was deleted after this sync was queued; nothing was synced"
                " (queue it again)"
            ]
    assert _repos(queue) == ["again"]
    assert _versions(queue, "again") == [0, 1]


def _ticks(succeeded_after: int = 0) -> int:
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'pendingops.schedules'"
                    " AND status = 'succeeded' AND id > :after"
                ),
                {"after": succeeded_after},
            ).scalar_one()
    finally:
        engine.dispose()


def _last_job() -> int:
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")).scalar_one()
    finally:
        engine.dispose()


def test_a_deleted_repositorys_schedule_never_brings_it_back(queue: Queue) -> None:
    with ServerThread({"a": b"one\n"}) as server:
        added = queue.run("schedule", "add", "often", server.manifest_url, "--repo", "s", "--every", "2s")
        assert added.returncode == 0, added.stderr
        workers = [queue.start_worker("--schedule-tick", "1") for _ in range(2)]
        wait_for(lambda: any(t["state"] == "succeeded" for t in queue.tasks()), "a scheduled sync")
        refused = queue.run("repos", "delete", "s")
        assert_clean_error(refused, 2)
        assert "schedule(s); --yes cancels and removes them with it" in refused.stderr
        done = queue.run("repos", "delete", "s", "--yes")
        assert done.returncode == 0, done.stderr
        assert "removed 1 schedule(s)" in done.stdout
        after = _last_job()
        last_task = max((t["task"] for t in queue.tasks()), default=0)  # numbers every job queued so far
        wait_for(lambda: _ticks(after) >= 4, "four schedule ticks after the deletion")
        assert "s" not in _repos(queue)
        assert json.loads(queue.run("schedule", "list", "--json").stdout) == []
        assert all(t["task"] <= last_task or t["state"] != "succeeded" for t in queue.tasks())
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(120) == 0


@pytest.mark.parametrize(
    "command",
    [
        ("sync", "http://alice:S3cretPW@127.0.0.1:1/M", "--repo", "r", "--enqueue"),
        ("schedule", "add", "n", "https://bob:Hunter2PW@127.0.0.1:1/M", "--repo", "r", "--every", "1d"),
        ("sync", "http://tokenonly@127.0.0.1:1/M", "--repo", "r", "--enqueue"),
    ],
)
def test_credentials_in_a_queued_or_scheduled_url_are_refused(queue: Queue, command: tuple[str, ...]) -> None:
    done = queue.run(*command)
    assert_clean_error(done, 2)
    assert "netrc" in done.stderr and "S3cretPW" not in done.stderr and "Hunter2PW" not in done.stderr
    assert queue.tasks() == []
    assert json.loads(queue.run("schedule", "list", "--json").stdout) == []
    assert _repos(queue) == []  # refused before anything was written


def test_a_worker_takes_credentials_from_its_netrc(queue: Queue, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password S3cretPW\n")
    netrc.chmod(0o600)
    login = "Basic " + base64.b64encode(b"alice:S3cretPW").decode()
    server = LoginServer({"a": b"behind a login\n"}, login=login)
    with ServerThread(server=server):
        task = queue.enqueue(server.manifest_url, "private")
        queue.env = {**os.environ, "NETRC": str(netrc)}
        queue.env.pop("PENDINGOPS_REMOTE_USERNAME", None)
        worker = queue.start_worker()
        assert _finished(queue, task)["state"] == "succeeded"
        listed = queue.run("tasks")
        worker_line = " ".join(worker.args)
    assert _versions(queue, "private") == [0, 1]
    assert "S3cretPW" not in listed.stdout and "S3cretPW" not in worker_line
