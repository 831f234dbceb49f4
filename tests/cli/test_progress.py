"""The live progress panel as a person sees it: a sync run in tmux, its screen read with ``capture-pane``;
plain log lines off a terminal; the summary and ``--json`` counting adopted leftovers apart."""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from pendingops import LocalStorage
from pendingops.cli import _progress as cli_progress
from pendingops.cli import main
from pendingops.cli._progress import ProgressPrinter
from pendingops.progress import Progress, ProgressSnapshot
from tests.cli import test_cli
from tests.cli.test_cli import Cli
from tests.maintenance.test_lifecycle import GatedServer
from tests.remote_server import Fault, RemoteServer
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder

SCRIPT = str(Path(sys.executable).parent / "pendingops")
FILES = {f"pkg/file-{i:03d}.bin": bytes([i % 256]) * 20_000 for i in range(60)}
HELD = "pkg/file-059.bin"


def _screen(socket: str) -> str:
    done = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-t", "sync"], capture_output=True, text=True)
    return done.stdout


def _wait_for(socket: str, *needles: str, seconds: float = 120) -> str:
    """The screen once it shows every needle (the panel redraws every 0.2 s; the deadline is only a backstop)."""
    deadline = time.monotonic() + seconds
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(socket)
        if all(needle in screen for needle in needles):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"the screen never showed {needles}:\n{screen}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.timeout(300)
def test_the_live_panel_shows_counts_totals_bars_rates_and_one_eta(tmp_path: Path) -> None:
    server = GatedServer(dict(FILES), held=HELD)
    socket = f"pendingops-test-{uuid.uuid4().hex[:8]}"
    with ServerThread(server=server):
        database, storage = f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "storage")
        sync = [SCRIPT, "--db", database, "--storage", storage, "sync", server.manifest_url, "--repo", "r"]
        command = shlex.join([*sync, "--concurrency", "1"]) + "; echo EXIT=$?; sleep 600"
        tmux = ["tmux", "-L", socket, "new-session", "-d", "-s", "sync", "-x", "150", "-y", "30", command]
        subprocess.run(tmux, check=True)
        try:
            assert server.arrived.wait(120), "the sync never asked for the last file"
            # every other file is stored: the download row counts 59 of 60, with a bar and rates; the
            # elapsed row gives the one estimate of the time left
            screen = _wait_for(socket, "59 / 60", "units seen", "60 / 60", " left")
            (row,) = [line for line in screen.splitlines() if "downloaded" in line]
            assert "59 / 60" in row and "MiB" in row and "/s" in row, row
            assert "ETA" not in screen and screen.count(" left") == 1, screen
            (elapsed,) = [line for line in screen.splitlines() if "elapsed" in line]
            assert "about " in elapsed and elapsed.endswith("left"), elapsed
            assert "━" in row, "a bar is drawn where the total is known"
            (seen,) = [line for line in screen.splitlines() if "units seen" in line]
            assert "60 / 60" in seen
            assert "elapsed" in screen
            (adopted,) = [line for line in screen.splitlines() if "adopted" in line]
            assert adopted.split() == ["adopted", "0"], adopted  # nothing was left in storage: no file adopted
            server.gate.set()
            final = _wait_for(socket, "EXIT=")
            assert "EXIT=0" in final and "new version 1: 60 units" in final, final
            assert "60 / 60" in next(line for line in final.splitlines() if "downloaded" in line)
            print(screen)  # shown with -s: what a person sees mid-sync
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)


def test_off_a_terminal_progress_is_plain_log_lines(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    with log.open("w") as stream:
        printer = ProgressPrinter(stream, log_every=0)
        progress = Progress()
        progress.set_total(3)
        progress.add("seen", 2)
        progress.add_total("downloaded", 2)
        progress.add("downloaded", 1, 1024)
        printer(progress.snapshot())
        printer(progress.snapshot(finished=True))
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("progress t=")
    assert "seen=2" in lines[0] and "downloaded=1" in lines[0] and "\x1b" not in lines[0]
    assert "adopted=0" in lines[0]


def test_a_plain_line_comes_only_once_each_interval_of_the_sync_has_passed(tmp_path: Path) -> None:
    """Never at the start: the first line once ``log_every`` seconds of the sync have passed (by the
    snapshots' clock), the next one ``log_every`` seconds after it; the final snapshot is not logged."""
    log = tmp_path / "log.txt"
    start = Progress().snapshot()
    with log.open("w") as stream:
        printer = ProgressPrinter(stream, log_every=5)
        for elapsed in (0.0, 0.2, 4.9, 5.0, 6.0, 9.9, 10.0, 10.1):
            printer(replace(start, elapsed=elapsed))
        printer(replace(start, elapsed=30.0, finished=True))
    assert [line.split()[1] for line in log.read_text().splitlines()] == ["t=5.0s", "t=10.0s"]


def test_a_sync_failing_before_the_first_interval_prints_only_its_error(
    cli: Cli, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line's plain printer has been handed a progress snapshot (the remote answers the
    manifest only then, with a 500), yet the failed sync's stderr is its one error line."""
    monkeypatch.setattr(cli_progress, "_LOG_EVERY", 3600.0)  # an interval no run of this test reaches
    reported = threading.Event()
    show = ProgressPrinter.__call__

    def shown(printer: ProgressPrinter, snapshot: ProgressSnapshot) -> None:
        show(printer, snapshot)
        reported.set()

    monkeypatch.setattr(ProgressPrinter, "__call__", shown)
    held = Fault(status=500, stall=120, until=reported)  # the stall is only a backstop
    server = RemoteServer({"a.bin": b"a"}, faults={"PULP_MANIFEST": held})
    with ServerThread(server=server) as origin:
        line = ["--db", cli.db_url, "--storage", str(cli.storage), "sync", origin.manifest_url]
        code = main([*line, "--repo", "r", "--retries", "0"])
    assert reported.is_set(), "the printer was never handed a snapshot before the sync failed"
    lines = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(lines) == 1, lines
    assert lines[0].startswith("pendingops: sync failed: ") and "HTTP 500" in lines[0], lines


def leave_in_storage(folder: Path, files: dict[str, bytes]) -> None:
    """Store ``files`` with no row recording them, as a sync interrupted before its save leaves them."""
    storage = LocalStorage(folder)
    for data in files.values():
        temp = storage.new_temp_path()
        temp.write_bytes(data)
        storage.put(temp, hashlib.sha256(data).hexdigest())


def test_the_summary_and_json_count_adopted_leftovers_apart_from_downloads(cli: Cli) -> None:
    files = {f"pkg/file-{i}.bin": bytes([i]) * (1000 + i) for i in range(6)}
    leftovers = {path: files[path] for path in ("pkg/file-1.bin", "pkg/file-4.bin")}
    fetched = sum(len(data) for path, data in files.items() if path not in leftovers)
    assert cli.run("verify").returncode == 0  # the storage is this database's from now on
    leave_in_storage(cli.storage, leftovers)
    with ServerThread(files) as origin:
        report = cli.json("sync", origin.manifest_url, "--repo", "r")
        assert origin.file_requests() == 4
    assert (report["downloaded"], report["downloaded_bytes"], report["adopted"]) == (4, fetched, 2)

    more = {f"pkg/more-{i}.bin": bytes([i]) * (2000 + i) for i in range(3)}
    leave_in_storage(cli.storage, {"pkg/more-0.bin": more["pkg/more-0.bin"]})
    with ServerThread(more) as origin:
        done = cli.run("sync", origin.manifest_url, "--repo", "more")
        assert origin.file_requests() == 2
    assert done.returncode == 0, done.stderr
    assert "downloaded 2 (3.9 KiB), adopted 1 (already stored, checked), saved 3 new" in done.stdout, done.stdout
