"""What a worker says about each sync task: a log line when it starts and one when it ends (outcome,
duration, the new version or the reason; no traceback above debug), and its /metrics counting them."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import POSTGRES_URL, fresh_database
from tests.server_thread import ServerThread
from tests.workers.helpers import Queue, wait_for

pytestmark = pytest.mark.postgres

FILES = {f"dir/file-{i}.txt": f"file {i}\n".encode() * 40 for i in range(6)}


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    fresh_database("postgresql", tmp_path).close()
    queue = Queue(POSTGRES_URL, tmp_path / "storage", env={**os.environ, "PENDINGOPS_LOG_FORMAT": "json"})
    yield queue
    queue.stop_all()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=60) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_worker_logs_each_task_once_at_its_start_and_end_and_counts_it(queue: Queue) -> None:
    worker = queue.start_worker("--metrics-port", "0")
    found = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", queue.ready_lines[worker.pid])
    assert found, queue.ready_lines[worker.pid]
    metrics = found[1]
    before = scrape(metrics)
    assert before[("pendingops_syncs_total", (("outcome", "succeeded"),))] == 0
    with ServerThread(FILES) as origin:
        good = queue.enqueue(origin.manifest_url, "good", "--mirror")
        wait_for(lambda: queue.task(good)["state"] == "succeeded", "the sync to succeed")
        bad = queue.enqueue(origin.base_url + "no/such/PULP_MANIFEST", "bad")
        wait_for(lambda: queue.task(bad)["state"] == "failed", "the sync to fail")
    after = scrape(metrics)
    assert after[("pendingops_syncs_total", (("outcome", "succeeded"),))] == 1
    assert after[("pendingops_syncs_total", (("outcome", "failed"),))] == 1
    assert after[("pendingops_units_total", (("change", "added"),))] == len(FILES)
    assert after[("pendingops_units_total", (("change", "removed"),))] == 0
    assert after[("pendingops_downloaded_bytes_total", ())] == sum(len(data) for data in FILES.values())
    assert after[("pendingops_sync_duration_seconds_count", ())] == 2

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(120) == 0
    stderr = worker.stderr.read()  # type: ignore[union-attr]
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line is one JSON object
    told = [line for line in lines if line["logger"] == "pendingops.worker"]
    assert [(line["task"], line["repository"], line["msg"].split()[0]) for line in told] == [
        (good, "good", "started:"),
        (good, "good", "succeeded"),
        (bad, "bad", "started:"),
        (bad, "bad", "failed"),
    ]
    succeeded, failed = told[1], told[3]
    assert (succeeded["outcome"], succeeded["version"], succeeded["level"]) == ("succeeded", 1, "info")
    assert succeeded["msg"].endswith(f": version 1 (+{len(FILES)} added, -0 removed)")
    assert (failed["outcome"], failed["level"], "version" in failed) == ("failed", "error", False)
    assert "404" in failed["msg"] and failed["msg"].endswith(failed["error"])
    assert "traceback" not in failed and "Traceback" not in stderr
    assert all(line["duration_s"] >= 0 for line in (succeeded, failed))
    assert not [line for line in lines if line["logger"].startswith("procrastinate") and line["level"] == "info"]
    assert "ended with status" not in stderr  # procrastinate's own line of each job is left out
