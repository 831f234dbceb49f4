"""Syncs in separate processes at the same time: overlapping content, one repository, orphan cleanup."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from pendingops.db.schema import Artifact, Content
from tests.conftest import POSTGRES_URL, assert_no_duplicate_rows, count_rows, fresh_database
from tests.remote_server import Fault
from tests.server_thread import ServerThread

SCRIPT = str(Path(sys.executable).parent / "pendingops")


def _files(tag: str, count: int) -> dict[str, bytes]:
    return {f"{tag}/f{i:03d}": hashlib.sha256(f"{tag}{i}".encode()).digest() * 4 for i in range(count)}


def _digests(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


class Store:
    def __init__(self, db_kind: str, tmp_path: Path) -> None:
        self.db = fresh_database(db_kind, tmp_path)
        self.url = POSTGRES_URL if db_kind == "postgresql" else self.db.engine.url.render_as_string(False)
        self.storage = tmp_path / "storage"

    def command(self, *args: str) -> list[str]:
        return [SCRIPT, "--db", self.url, "--storage", str(self.storage), *args]

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def json(self, *args: str) -> object:
        return json.loads(
            subprocess.run(self.command(*args, "--json"), capture_output=True, text=True, check=True).stdout
        )

    def files(self, repo: str, version: int) -> dict[str, str]:
        units = self.json("content", repo, "--version", str(version))
        assert isinstance(units, list)
        return {u["natural_key"]["relative_path"]: u["natural_key"]["sha256"] for u in units}


def _finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def test_overlapping_syncs_into_two_repositories(db_kind: str, tmp_path: Path) -> None:
    store = Store(db_kind, tmp_path)
    shared = _files("shared", 150)
    first, second = shared | _files("one", 40), shared | _files("two", 40)
    with ServerThread(first) as server1, ServerThread(second) as server2:
        server1.delay = server2.delay = 0.002
        runs = [
            store.start("sync", server.manifest_url, "--repo", repo, "--quiet", "--batch-size", "25")
            for server, repo in ((server1, "one"), (server2, "two"))
        ]
        for run in runs:
            _finish(run)
    assert store.files("one", 1) == _digests(first)
    assert store.files("two", 1) == _digests(second)
    assert_no_duplicate_rows(store.db)
    assert count_rows(store.db, Artifact) == len(shared) + 80
    assert count_rows(store.db, Content) == len(shared) + 80
    store.db.close()


def test_two_syncs_of_one_repository_never_interleave(db_kind: str, tmp_path: Path) -> None:
    store = Store(db_kind, tmp_path)
    set_a, set_b = _files("a", 120), _files("b", 120)
    with ServerThread(set_a) as server_a, ServerThread(set_b) as server_b:
        server_a.delay = server_b.delay = 0.003
        runs = [
            store.start("sync", server.manifest_url, "--repo", "r", "--mirror", "--quiet", "--batch-size", "10")
            for server in (server_a, server_b)
        ]
        for run in runs:
            _finish(run)
    versions = store.json("versions", "r")
    assert [v["number"] for v in versions] == [0, 1, 2]
    # Each version is exactly one remote's set: the second sync waited for the first to finish.
    assert {frozenset(store.files("r", 1).items()), frozenset(store.files("r", 2).items())} == {
        frozenset(_digests(set_a).items()),
        frozenset(_digests(set_b).items()),
    }
    assert [(v["added"], v["removed"]) for v in versions[1:]] == [(120, 0), (120, 120)]
    store.db.close()


def test_orphan_cleanup_during_a_sync_waits_for_it(db_kind: str, tmp_path: Path) -> None:
    store = Store(db_kind, tmp_path)
    files = _files("x", 150)
    with ServerThread(files) as server:
        # Leave orphans behind: content saved by a sync whose version was discarded.
        server.faults["x/f149"] = Fault(status=404)
        failed = subprocess.run(
            store.command(
                "sync", server.manifest_url, "--repo", "r", "--quiet", "--batch-size", "10", "--retries", "0"
            ),
            capture_output=True,
            text=True,
        )
        assert failed.returncode == 1
        del server.faults["x/f149"]
        server.delay = 0.01
        sync = store.start("sync", server.manifest_url, "--repo", "r", "--quiet", "--batch-size", "10")
        deadline = time.monotonic() + 30
        while count_rows(store.db, Content) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        cleanup = store.start("orphans")
        _finish(sync)
        _finish(cleanup)
    # The orphans the sync reused are in the version now, so nothing it needed was removed.
    assert store.files("r", 1) == _digests(files)
    audit = subprocess.run(store.command("verify"), capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout
    store.db.close()
