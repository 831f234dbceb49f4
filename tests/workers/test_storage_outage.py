"""A worker whose S3 storage stalls for good (behind the fault-injecting proxy in front of moto).

Its sync ends (failed, one line naming the storage) rather than staying ``running``; a sync stalled in
storage when SIGTERM comes is discarded and left queued, and the worker exits.
"""

from __future__ import annotations

import signal
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli
from tests.conftest import POSTGRES_URL, fresh_database
from tests.cutting_proxy import FaultProxy
from tests.server_thread import ServerThread
from tests.workers.helpers import Queue, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def test_a_worker_ends_a_sync_whose_storage_stalls_and_stops_on_sigterm_during_one(
    s3_url: str, faulty_s3: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 1 in a worker: the sync fails within the storage retry time (30 s by default) plus a
    timeout (1 s here) and the worker goes on; a second sync held by the stall is stopped by SIGTERM,
    its version discarded, its task queued again."""
    fresh_database("postgresql", tmp_path).close()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    files = {f"r/file-{i:02d}.txt": f"file {i}\n".encode() * 100 for i in range(30)}
    queue = Queue(POSTGRES_URL, s3_url)
    with ExitStack() as stack:
        stack.callback(queue.stop_all)
        stack.callback(faulty_s3.heal)
        server = stack.enter_context(ServerThread(files))
        worker = queue.start_worker("--grace", "0.5")
        faulty_s3.stall_after(40)  # a few files into the sync, then for good
        first = queue.enqueue(server.manifest_url, "r")
        wait_for(lambda: queue.task(first)["state"] == "failed", "the stalled sync to fail")
        error = queue.task(first)["error"]
        assert f"storage {s3_url} unreachable" in error and "no new version" in error, error

        dropped = faulty_s3.dropped
        second = queue.enqueue(server.manifest_url, "r")
        faulty_s3.wait_for("dropped", dropped + 1)  # the second sync is held by the stall: a request timed out
        assert queue.task(second)["state"] == "running"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(120) == 0
        assert queue.task(second)["state"] == "queued"  # retryable, not failed
        assert worker.stderr is not None
        stderr = worker.stderr.read()
        assert "never retrieved" not in stderr and "Traceback" not in stderr, stderr
    versions = Cli(POSTGRES_URL, s3_url).json("versions", "r")  # type: ignore[arg-type]
    assert [v["number"] for v in versions] == [0]  # type: ignore[union-attr]
