"""``pendingops demo`` starts from a clean folder of its own, so every run says the same true things."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(sys.executable).parent / "pendingops")


def _demo(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, "demo", "--files", "10", "--data", str(data)], capture_output=True, text=True, timeout=300
    )


def _stable(output: str) -> str:
    output = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", output)
    return re.sub(r" in \d[\d.]* (s|min)\b.*", " in TIME", output)


def test_every_run_starts_clean_and_counts_what_it_did(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    first, second = _demo(data), _demo(data)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert _stable(first.stdout) == _stable(second.stdout)
    initial = second.stdout.split("2. the remote changed")[0]
    assert "new version 1: 10 units" in initial
    assert "downloaded 10" in initial and "saved 10 new" in initial and "linked to stored content 0" in initial
    assert (data / "demo.db").exists() and (data / "storage").is_dir()


def test_a_folder_that_is_not_the_demos_is_never_emptied(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    done = _demo(tmp_path)
    assert done.returncode == 2 and "not a demo folder" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "mine.txt").read_text() == "keep me"
