"""Lifecycle operations on synced repositories: changed items, and safety beside a running sync and orphans."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from pendingops import RemoteConfig, VersionError, sync_remote
from pendingops.db.lifecycle import delete_repository
from pendingops.db.locks import RepositoryLock
from pendingops.db.schema import Remote
from pendingops.db.versions import find_repository
from pendingops.maintenance import lifecycle
from pendingops.maintenance.orphans import remove_orphans
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.file import FilePlugin
from tests.conftest import file_set, second_database, version_content, version_numbers
from tests.remote_server import RemoteServer
from tests.server_thread import ServerThread

V1 = {"a.txt": b"a1", "b.txt": b"b1", "c.txt": b"c1"}
V2 = {"a.txt": b"a1", "b.txt": b"b2", "d.txt": b"d1"}
V3 = {"a.txt": b"a1", "e.txt": b"e1"}


@dataclass
class GatedServer(RemoteServer):
    """Holds the response for ``held`` until ``gate`` is set; ``arrived`` is set when it is asked for."""

    held: str = ""
    gate: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def _respond(self, request: web.Request, path: str, data: bytes) -> web.StreamResponse:
        if path == self.held:
            self.arrived.set()
            while not self.gate.is_set():
                await asyncio.sleep(0.01)
        return await super()._respond(request, path, data)


def _sync(db: Any, storage: Any, server: RemoteServer, repository: str = "r") -> Any:
    remote = RemoteConfig(url=server.manifest_url, retries=0)
    return asyncio.run(
        sync_remote(FilePlugin(), remote, db=db, storage=storage, repository=repository, mirror=True, batch_wait=0.005)
    )


def _history(db: Any, storage: Any) -> None:
    with ServerThread() as server:
        for files in (V1, V2, V3):
            server.files = dict(files)
            _sync(db, storage, server)


def test_diff_reports_added_removed_and_changed_items(db, storage):
    _history(db, storage)
    diff = lifecycle.diff_versions(db, "r", 1, 2)
    assert [u.fields["relative_path"] for u in diff.added] == ["d.txt"]
    assert [u.fields["relative_path"] for u in diff.removed] == ["c.txt"]
    [(before, after)] = diff.changed
    assert (before.fields["relative_path"], after.fields["relative_path"]) == ("b.txt", "b.txt")
    assert before.fields["sha256"] != after.fields["sha256"]
    shown = diff.as_json()
    assert shown["changed"][0]["previous"]["natural_key"] == before.natural_key
    assert set(shown["added"][0]) == {"type", "natural_key", "fields", "artifacts"}
    same = lifecycle.diff_versions(db, "r", 2, 2)
    assert (same.added, same.removed, same.changed) == ([], [], [])
    with pytest.raises(VersionError, match="no version 9"):
        lifecycle.diff_versions(db, "r", 1, 9)


def test_rollback_retain_and_removal_then_orphans_frees_the_rest(db, storage):
    _history(db, storage)
    outcome = lifecycle.rollback(db, "r", 1)
    assert (outcome.number, outcome.added, outcome.removed) == (4, 2, 1)
    assert version_content(db, "r", 4) == file_set(V1)
    assert lifecycle.rollback(db, "r", 4).number is None  # already the latest's content
    assert lifecycle.rollback(db, "r", 1).number is None  # equal content, other number: nothing to do
    assert lifecycle.retain(db, "r", 2) == [0, 1, 2]
    assert version_numbers(db, "r") == [3, 4]
    assert version_content(db, "r", 3) == file_set(V3)
    report = remove_orphans(db, storage)
    assert (report.content, report.artifacts) == (2, 2)  # b2 and d1: only the removed version 2 had them
    assert version_content(db, "r", 4) == file_set(V1)
    lifecycle.delete_version(db, "r", 3)
    with pytest.raises(VersionError, match="latest"):
        lifecycle.delete_version(db, "r", 4)
    assert lifecycle.delete_repository(db, "r").versions == 1
    assert remove_orphans(db, storage).content == 4
    assert not [p for p in verify_storage(db, storage) if isinstance(p, StorageProblem)]


@pytest.mark.parametrize("action", ["retain", "rollback", "delete_version", "delete_repository"])
def test_an_operation_waits_for_a_running_sync_and_orphans_never_takes_what_remains(db, storage, action):
    """A sync is held mid-download; the operation (from another engine, as another process) and an
    orphan cleanup started meanwhile both wait for it, and the end state is the one of running
    them after the sync."""
    _history(db, storage)
    v4 = {**V3, "f.txt": b"f1", "held.bin": b"h" * 100}
    server = GatedServer(dict(v4), held="held.bin")
    other = second_database(db)
    outcome: dict[str, Any] = {}
    operations = {
        "retain": lambda: lifecycle.retain(other, "r", 1),
        "rollback": lambda: lifecycle.rollback(other, "r", 1),
        "delete_version": lambda: lifecycle.delete_version(other, "r", 3),
        "delete_repository": lambda: lifecycle.delete_repository(other, "r"),
    }

    def run(name: str, call: Any) -> None:
        try:
            outcome[name] = call()
        except Exception as exc:  # reported by the assertions below
            outcome[name] = exc

    with ServerThread(server=server):
        syncing = threading.Thread(target=run, args=("sync", lambda: _sync(db, storage, server)))
        syncing.start()
        assert server.arrived.wait(120), "the sync never asked for the held file"
        workers = [
            threading.Thread(target=run, args=("operation", operations[action])),
            threading.Thread(target=run, args=("orphans", lambda: remove_orphans(other, storage))),
        ]
        for worker in workers:
            worker.start()
        assert "operation" not in outcome and "orphans" not in outcome, "neither may run beside the sync"
        server.gate.set()
        for thread in [syncing, *workers]:
            thread.join(180)
    other.close()
    assert not isinstance(outcome["sync"], Exception), outcome["sync"]
    assert outcome["sync"].version.number == 4
    assert not isinstance(outcome["operation"], Exception), outcome["operation"]
    if action == "delete_repository":
        assert outcome["operation"].versions == 5
        with pytest.raises(VersionError):
            version_numbers(db, "r")
    else:
        expected = {
            "retain": ([4], {4: v4}),
            "rollback": ([0, 1, 2, 3, 4, 5], {4: v4, 5: V1, 1: V1}),
            "delete_version": ([0, 1, 2, 4], {4: v4, 2: V2}),
        }[action]
        assert version_numbers(db, "r") == expected[0]
        for number, files in expected[1].items():
            assert version_content(db, "r", number) == file_set(files)
    remove_orphans(db, storage)
    assert not [p for p in verify_storage(db, storage) if isinstance(p, StorageProblem)]
    if action != "delete_repository":
        latest = version_numbers(db, "r")[-1]
        assert version_content(db, "r", latest) == file_set(expected[1][latest])


def test_a_sync_waiting_for_a_removed_repository_fails_cleanly(db, storage):
    """The repository is removed while a sync waits for its lock: the sync says so, and creates nothing."""
    _history(db, storage)
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, "r")
        remotes = conn.execute(select(func.count()).select_from(Remote.__table__)).scalar_one()
    other = second_database(db)
    outcome: dict[str, Any] = {}
    with ServerThread(dict(V1)) as server, RepositoryLock(other, repo_id):

        def run() -> None:
            try:
                outcome["sync"] = _sync(db, storage, server)
            except Exception as exc:  # examined below
                outcome["sync"] = exc

        syncing = threading.Thread(target=run)
        syncing.start()
        # the sync registers its remote (a new row: this server's URL), then waits for the repository lock
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with db.engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(Remote.__table__)).scalar_one() > remotes:
                    break
            time.sleep(0.01)
        other.transact(delete_repository, repo_id)
    syncing.join(180)
    other.close()
    assert isinstance(outcome["sync"], VersionError), outcome["sync"]
    assert "removed while this sync waited" in str(outcome["sync"])
    with pytest.raises(VersionError, match="no repository"):
        version_numbers(db, "r")
