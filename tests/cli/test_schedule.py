"""``pendingops schedule add|list|remove`` and workers queueing due syncs (PostgreSQL)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli, digests, files_v1
from tests.conftest import POSTGRES_URL, fresh_database
from tests.server_thread import ServerThread
from tests.workers.helpers import Queue, wait_for


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    fresh_database("postgresql", tmp_path).close()
    queue = Queue(POSTGRES_URL, tmp_path / "storage")
    yield queue
    queue.stop_all()


def test_sqlite_refuses_schedules(tmp_path: Path) -> None:
    done = Cli(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "storage").run("schedule", "list")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "pendingops: error: schedule needs a PostgreSQL database (--db postgresql://...); this one is SQLite"
    )


@pytest.mark.postgres
def test_add_list_remove_and_bad_input(queue: Queue) -> None:
    url = "http://127.0.0.1:1/PULP_MANIFEST"
    assert queue.run("schedule", "add", "nightly", url, "--repo", "r", "--cron", "0 3 * * *").returncode == 0
    assert queue.run("schedule", "add", "often", url, "--repo", "s", "--every", "6h", "--mirror").returncode == 0
    listed = json.loads(queue.run("schedule", "list", "--json").stdout)
    assert [(s["name"], s["repository"], s["every"], s["cron"], s["last_due"]) for s in listed] == [
        ("nightly", "r", None, "0 3 * * *", None),
        ("often", "s", "6h", None, None),
    ]
    assert datetime.fromisoformat(listed[0]["next_due"]).strftime("%H:%M") == "03:00"
    assert [(s["plugin"], s["mirror"], s["policy"]) for s in listed] == [
        ("file", False, "immediate"),
        ("file", True, "immediate"),
    ]
    table = queue.run("schedule", "list")
    assert "every 6h" in table.stdout and "0 3 * * *" in table.stdout
    rows = table.stdout.splitlines()
    often = next(i for i, line in enumerate(rows) if line.startswith("often "))
    assert rows[often].split()[-3:] == ["file", "mirror", url] and rows[often + 1].split() == ["policy", "immediate"]
    for args, message in [
        (("add", "often", url, "--repo", "s", "--every", "1h"), "a schedule named 'often' exists already"),
        (("add", "x", url, "--repo", "s", "--every", "soon"), "not a period"),
        (("add", "x", url, "--repo", "s", "--cron", "61 * * * *"), "not a cron expression"),
        (("add", "x", url, "--repo", "s"), "one of the arguments --every --cron is required"),
        (("remove", "nosuch"), "no schedule named 'nosuch'"),
    ]:
        done = queue.run("schedule", *args)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert queue.run("schedule", "remove", "often").returncode == 0
    assert [s["name"] for s in json.loads(queue.run("schedule", "list", "--json").stdout)] == ["nightly"]


@pytest.mark.postgres
def test_plugin_options_are_checked_when_added_and_go_with_each_queued_sync(queue: Queue) -> None:
    from pendingops import open_database
    from pendingops.workers.schedule import claim_due

    url = "http://127.0.0.1:1/simple/"
    added = queue.run(
        "schedule", "add", "py", url, "--repo", "p", "--plugin", "python", "--every", "1h", "--option", "projects=a,b"
    )
    assert added.returncode == 0, added.stderr
    listed = json.loads(queue.run("schedule", "list", "--json").stdout)
    assert [(s["name"], s["plugin_options"], s["plugin"]) for s in listed] == [("py", {"projects": "a,b"}, "python")]
    table = queue.run("schedule", "list").stdout.splitlines()
    assert table[2].split() == ["policy", "immediate,", "options", "projects=a,b"]
    python = ("--repo", "p", "--plugin", "python", "--every", "1h")
    bad = queue.run("schedule", "add", "x", url, *python, "--option", "colour=red")
    assert bad.returncode == 2 and "colour" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    db = open_database(POSTGRES_URL)
    try:
        due = db.transact(claim_due, datetime.fromisoformat(listed[0]["next_due"]))
    finally:
        db.close()
    assert [(o.repository, o.plugin, o.plugin_options) for o in due] == [("p", "python", {"projects": "a,b"})]


@pytest.mark.postgres
def test_workers_queue_each_due_sync_once(queue: Queue) -> None:
    files = files_v1()
    with ServerThread(files) as server:
        begun = time.monotonic()
        added = queue.run("schedule", "add", "quick", server.manifest_url, "--repo", "r", "--every", "2s")
        assert added.returncode == 0, added.stderr
        workers = [queue.start_worker("--schedule-tick", "1") for _ in range(2)]
        wait_for(lambda: sum(t["state"] == "succeeded" for t in queue.tasks()) >= 2, "two scheduled syncs")
        assert queue.run("schedule", "remove", "quick").returncode == 0
        elapsed = time.monotonic() - begun
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(120) == 0
    schedule_tasks = queue.tasks()
    assert all(t["repository"] == "r" and t["state"] in ("succeeded", "queued") for t in schedule_tasks)
    # Two workers ticking every second, a due time every 2 s: never more syncs than due times.
    assert len(schedule_tasks) <= elapsed // 2
    assert Cli(POSTGRES_URL, Path(queue.storage)).version_files("r") == digests(files)
