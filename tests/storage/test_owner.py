"""A storage folder knows the database that owns it; another database is refused, and never loses files to it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pendingops import Database, LocalStorage, RemoteConfig, open_database, sync_remote
from pendingops.maintenance.orphans import remove_orphans
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.file import FilePlugin
from pendingops.storage.base import StorageError
from pendingops.storage.owner import OWNER_MARKER, StorageOwnedElsewhere, claim_storage, database_id
from tests.conftest import POSTGRES_URL, race
from tests.remote_server import RemoteServer
from tests.server_thread import ServerThread

SCRIPT = str(Path(sys.executable).parent / "pendingops")


def _sync(db: Database, storage: LocalStorage, files: dict[str, bytes], repository: str = "r") -> None:
    async def run() -> None:
        async with RemoteServer(files) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository=repository)

    asyncio.run(run())


def _problems(db: Database, storage: LocalStorage) -> list[StorageProblem]:
    return [item for item in verify_storage(db, storage) if isinstance(item, StorageProblem)]


@pytest.fixture
def other_db(tmp_path: Path):
    other = open_database(f"sqlite:///{tmp_path / 'other.db'}")
    yield other
    other.close()


def test_the_first_database_owns_the_storage_and_another_is_refused(db, other_db, storage) -> None:
    _sync(db, storage, {"a": b"first database's file"})
    assert json.loads((storage.root / OWNER_MARKER).read_text())["database"] == database_id(db)
    assert claim_storage(db, storage).adopted_at is None
    with pytest.raises(StorageOwnedElsewhere, match="belongs to another database"):
        _sync(other_db, storage, {"b": b"second database's file"})
    with pytest.raises(StorageOwnedElsewhere):
        remove_orphans(other_db, storage)
    assert _problems(db, storage) == []
    assert database_id(db) == database_id(db)  # made once, then read back


def test_a_database_that_owns_nothing_yet_refuses_the_storage_another_owns(db, other_db, storage) -> None:
    _sync(other_db, storage, {"b": b"other database's file"})
    with pytest.raises(StorageOwnedElsewhere):
        _sync(db, storage, {"a": b"mine"})
    assert _problems(other_db, storage) == []


def test_the_issue_scenario_a_legacy_shared_storage_keeps_the_other_databases_files(
    db, other_db, storage, tmp_path
) -> None:
    """Two databases synced into one storage before it recorded an owner; orphans on one removes none of the other's."""
    own = {f"mine-{i}": f"mine {i}".encode() for i in range(5)}
    theirs = {f"theirs-{i}": f"theirs {i}".encode() for i in range(7)}
    _sync(db, storage, own)
    elsewhere = LocalStorage(tmp_path / "elsewhere")
    _sync(other_db, elsewhere, theirs)
    for path in (elsewhere.root / "artifacts").rglob("*"):  # as if both had always shared the folder
        if path.is_file():
            target = storage.root / path.relative_to(elsewhere.root)
            target.parent.mkdir(exist_ok=True)
            shutil.copy2(path, target)
    (storage.root / OWNER_MARKER).unlink()  # a storage from before owners were recorded

    report = remove_orphans(db, storage)
    assert (report.stray_files, report.kept_files) == (0, len(theirs))
    assert claim_storage(db, storage).adopted_at is not None
    other_on_shared = LocalStorage(storage.root)
    assert all(other_on_shared.exists(loc) for loc in elsewhere.iter_locations())
    assert _problems(db, storage) == []
    with pytest.raises(StorageOwnedElsewhere):
        remove_orphans(other_db, storage)

    # A stray file written after the adoption is this database's own: removed.
    late = storage.root / storage.location_for("cd" * 32)
    late.parent.mkdir(exist_ok=True)
    late.write_bytes(b"left by a failed sync after the upgrade")
    adopted_at = claim_storage(db, storage).adopted_at
    assert adopted_at is not None
    os.utime(late, (adopted_at + 60, adopted_at + 60))
    report = remove_orphans(db, storage)
    assert (report.stray_files, report.kept_files) == (1, len(theirs))
    assert not late.exists()


def test_a_legacy_storage_with_files_is_refused_to_a_database_without_artifacts(db, storage) -> None:
    stray = storage.root / storage.location_for("ab" * 32)
    stray.parent.mkdir()
    stray.write_bytes(b"someone's file")
    with pytest.raises(StorageOwnedElsewhere, match="records no owning database"):
        claim_storage(db, storage)
    assert stray.exists() and not (storage.root / OWNER_MARKER).exists()


def test_concurrent_first_uses_agree_on_one_owner(db, other_db, storage) -> None:
    outcome = race(lambda: claim_storage(db, storage), lambda: claim_storage(other_db, storage))
    refused = [o for o in outcome if isinstance(o, StorageOwnedElsewhere)]
    assert len(refused) == 1, outcome
    owner = json.loads((storage.root / OWNER_MARKER).read_text())["database"]
    assert owner in (database_id(db), database_id(other_db))
    same = race(lambda: database_id(db), lambda: database_id(db))
    assert same[0] == same[1] == database_id(db)


class _ClaimedMeanwhile(LocalStorage):
    """A storage that another database claims, and records itself the owner of, in the moment between
    this database's claim (its transaction committed) and its own record: the interleaving a race of
    threads reaches only by luck, forced."""

    def __init__(self, root: Path, other: Database) -> None:
        super().__init__(root)
        self._other: Database | None = other

    def create_marker(self, name: str, text: str) -> bool:
        if self._other is not None:
            other, self._other = self._other, None
            claim_storage(other, LocalStorage(self.root))  # claims and settles, whole
        return super().create_marker(name, text)


def test_a_first_use_whose_record_another_database_wrote_first_is_refused(db, other_db, tmp_path) -> None:
    """Both databases found the storage unowned; the other one recorded itself first: this one's sync
    is refused before it writes anything, and the other one keeps the storage."""
    storage = _ClaimedMeanwhile(tmp_path / "storage", other_db)
    with pytest.raises(StorageOwnedElsewhere, match="belongs to another database"):
        _sync(db, storage, {"a": b"this database's file"})
    assert json.loads((storage.root / OWNER_MARKER).read_text())["database"] == database_id(other_db)
    assert list(storage.iter_locations()) == []
    with pytest.raises(StorageOwnedElsewhere):
        claim_storage(db, storage)
    _sync(other_db, LocalStorage(storage.root), {"b": b"the owner's file"})
    assert _problems(other_db, LocalStorage(storage.root)) == []


def test_an_unreadable_owner_record_is_one_clear_error(db, storage) -> None:
    (storage.root / OWNER_MARKER).write_text("not json")
    with pytest.raises(StorageError, match=f"unreadable {OWNER_MARKER}"):
        claim_storage(db, storage)


def test_every_storage_command_refuses_another_database_in_one_line(db_kind, tmp_path) -> None:
    first = f"sqlite:///{tmp_path / 'first.db'}"
    second = POSTGRES_URL if db_kind == "postgresql" else f"sqlite:///{tmp_path / 'second.db'}"
    if db_kind == "postgresql":
        from tests.conftest import fresh_database

        fresh_database("postgresql", tmp_path).close()
    storage = str(tmp_path / "storage")

    def run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [SCRIPT, "--db", db_url, "--storage", storage, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    with ServerThread({"a": b"one", "b": b"two"}) as server:
        assert run(first, "sync", server.manifest_url, "--repo", "r", "--quiet").returncode == 0
        for args in (
            ("sync", server.manifest_url, "--repo", "r", "--quiet"),
            ("orphans",),
            ("verify",),
            ("export", "r", str(tmp_path / "out")),
        ):
            done = run(second, *args)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert "belongs to another database" in done.stderr and "Traceback" not in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1
    done = run(first, "verify")
    assert done.returncode == 0 and "0 problem(s)" in done.stdout
