"""SIGKILL the sync process at many points; the store must stay consistent and a rerun finish the job."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pendingops.db.database import Database
from pendingops.db.schema import Content, RepositoryContent
from tests.conftest import POSTGRES_URL, fresh_database
from tests.server_thread import ServerThread

SCRIPT = str(Path(sys.executable).parent / "pendingops")
FILES_PER_RUN = 240
# (what to watch, threshold): kill once the watched count reaches the threshold
KILL_POINTS = [
    ("time", 0.0),
    ("stored_files", 1),
    ("stored_files", FILES_PER_RUN // 3),
    ("stored_files", 2 * FILES_PER_RUN // 3),
    ("content_rows", 1),
    ("content_rows", FILES_PER_RUN // 2),
    ("new_members", 1),
    ("new_members", FILES_PER_RUN // 2),
    ("new_members", FILES_PER_RUN),
]


def _files(tag: str) -> dict[str, bytes]:
    return {f"{tag}/f{i:03d}.bin": hashlib.sha256(f"{tag}{i}".encode()).digest() * 8 for i in range(FILES_PER_RUN)}


def _watch(db: Database, storage: Path, what: str, repo: str) -> float:
    if what == "time":
        return float("inf")
    if what == "stored_files":
        return sum(1 for p in (storage / "artifacts").rglob("*") if p.is_file())
    with db.engine.connect() as conn:
        if what == "content_rows":
            return conn.execute(select(func.count()).select_from(Content.__table__)).scalar_one()
        rc = RepositoryContent.__table__
        return conn.execute(select(func.count()).select_from(rc).where(rc.c.version_added >= 2)).scalar_one()


def _cli(db_url: str, storage: Path, *args: str) -> list[str]:
    return [SCRIPT, "--db", db_url, "--storage", str(storage), *args]


@pytest.mark.timeout(600)
def test_sigkill_at_many_points(db_kind: str, tmp_path: Path) -> None:
    db = fresh_database(db_kind, tmp_path)
    db_url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    storage = tmp_path / "storage"
    killed = 0
    for index, (what, threshold) in enumerate(KILL_POINTS):
        repo = f"repo{index}"
        base_files, new_files = _files(f"base{index}"), _files(f"new{index}")
        with ServerThread(base_files) as server:
            server.delay = 0.004
            sync = _cli(db_url, storage, "sync", server.manifest_url, "--repo", repo, "--quiet")
            done = subprocess.run([*sync, "--mirror"], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr

            server.files = dict(new_files)
            args = [*sync, "--mirror", "--concurrency", "3", "--batch-size", "20"]
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                if _watch(db, storage, what, repo) >= threshold:
                    break
                time.sleep(0.002)
            process.kill()
            if process.wait() == -9:
                killed += 1

            # Nothing half-done is visible: the latest version is still the first one.
            versions = json.loads(
                subprocess.run(
                    _cli(db_url, storage, "versions", repo, "--json"), capture_output=True, text=True, check=True
                ).stdout
            )
            if versions[-1]["number"] == 1:
                assert [v["number"] for v in versions] == [0, 1]
            else:  # the kill came after the sync had finished
                assert [v["number"] for v in versions] == [0, 1, 2]
            audit = subprocess.run(_cli(db_url, storage, "verify"), capture_output=True, text=True)
            assert audit.returncode == 0, audit.stdout + audit.stderr

            # The rerun fetches only what is not in storage yet, and completes the version.
            already = {p.parent.name + p.name for p in (storage / "artifacts").rglob("*") if p.is_file()}
            missing = sum(1 for data in new_files.values() if hashlib.sha256(data).hexdigest() not in already)
            before = server.file_requests()
            rerun = subprocess.run([*sync, "--mirror"], capture_output=True, text=True, timeout=120)
            assert rerun.returncode == 0, rerun.stderr
            assert server.file_requests() - before == missing
        content = json.loads(
            subprocess.run(
                _cli(db_url, storage, "content", repo, "--json"), capture_output=True, text=True, check=True
            ).stdout
        )
        assert {u["natural_key"]["relative_path"] for u in content} == set(new_files)
    db.close()
    assert killed >= len(KILL_POINTS) - 2, f"only {killed} of {len(KILL_POINTS)} kill points hit a running sync"
