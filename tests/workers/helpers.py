"""Worker processes and queue commands for the worker tests (PostgreSQL only)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cli.test_cli import SCRIPT

#: how long a test waits for a state a worker reaches (generous: a busy 2-core box)
PATIENCE = 180.0


class Queue:
    """The console script on one database and storage: enqueue, list, cancel, start workers."""

    def __init__(self, db_url: str, storage: str | Path, env: dict[str, str] | None = None) -> None:
        self.db_url = db_url
        self.storage = str(storage)
        self.env = env
        self.workers: list[subprocess.Popen[str]] = []
        #: the line each worker printed when it was ready, by process id
        self.ready_lines: dict[int, str] = {}

    def command(self, *args: str) -> list[str]:
        return [SCRIPT, "--db", self.db_url, "--storage", self.storage, *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=120, env=self.env)

    def enqueue(self, url: str, repo: str, *options: str) -> int:
        done = self.run("sync", url, "--repo", repo, "--enqueue", *options)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("queued task "), done.stdout
        return int(done.stdout.removeprefix("queued task "))

    def tasks(self) -> list[dict[str, Any]]:
        done = self.run("tasks", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def task(self, task_id: int) -> dict[str, Any]:
        return next(task for task in self.tasks() if task["task"] == task_id)

    def start_worker(self, *options: str) -> subprocess.Popen[str]:
        worker = subprocess.Popen(
            self.command("worker", "--heartbeat", "0.5", *options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.workers.append(worker)
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert "waiting for syncs" in line
        self.ready_lines[worker.pid] = line
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
            worker.wait()
            for stream in (worker.stdout, worker.stderr):
                if stream is not None:
                    stream.close()


def wait_for(condition: Callable[[], Any], what: str, patience: float = PATIENCE) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
