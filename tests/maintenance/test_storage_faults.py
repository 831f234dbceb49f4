"""Maintenance commands meeting a broken storage or destination: one line, exit 1, DEST left as it was.

Local storage: a stored file replaced by a folder, a full export destination (a small tmpfs). S3: an
outage mid-run, behind the fault-injecting proxy in front of moto.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.maintenance.export import ExportFailed, export_version
from pendingops.maintenance.repair import QUARANTINE, repair_artifacts
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.file import FilePlugin
from pendingops.storage.s3 import S3Storage
from tests.cli.test_cli import Cli
from tests.conftest import POSTGRES_URL, fresh_database
from tests.cutting_proxy import FaultProxy
from tests.remote_server import RemoteServer
from tests.s3_server import client
from tests.server_thread import ServerThread
from tests.test_disk_full import small_disk  # noqa: F401 - the tmpfs fixture

FILES = {f"d/f{i:02}.txt": f"file {i}\n".encode() * 400 for i in range(12)}


def _sync(db: Database, storage: LocalStorage, files: dict[str, bytes] = FILES) -> None:
    async def run() -> None:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")

    asyncio.run(run())


def _stored(storage: LocalStorage, data: bytes) -> Path:
    return storage.root / storage.location_for(hashlib.sha256(data).hexdigest())


def test_a_stored_file_replaced_by_a_folder_fails_the_export_cleanly_and_repair_puts_it_back(
    db: Database, storage: LocalStorage, tmp_path: Path
) -> None:
    """Finding 9: the export names the path and removes what it wrote (DEST did not exist: it is gone
    again); verify reports the file missing; --repair moves the folder to quarantine (no remote has the
    file any more: the unit becomes "not downloaded") instead of aborting on it."""
    _sync(db, storage)
    victim = _stored(storage, FILES["d/f05.txt"])
    victim.unlink()
    victim.mkdir()
    (victim / "inside").write_bytes(b"a folder where a file belongs")
    dest = tmp_path / "out"

    with pytest.raises(ExportFailed) as failed:
        export_version(db, storage, "r", dest)
    message = str(failed.value)
    assert f"export to {dest} failed at 'd/f05.txt'" in message and str(victim) in message, message
    assert not dest.exists()

    problems = [item for item in verify_storage(db, storage) if isinstance(item, StorageProblem)]
    assert [p.problem for p in problems] == ["missing from storage"]

    async def repair() -> object:
        async with RemoteServer(dict(FILES)):  # the remote is gone: the sync's one is on another port
            return await asyncio.to_thread(repair_artifacts, db, storage, problems, retries=0)

    report = asyncio.run(repair())
    assert len(report.quarantined) == 1 and report.repaired == []  # type: ignore[attr-defined]
    moved = Path(report.quarantined[0].moved_to)  # type: ignore[attr-defined]
    assert moved.parent == storage.root / QUARANTINE and (moved / "inside").exists()
    assert not victim.exists()
    assert export_version(db, storage, "r", dest).files == len(FILES) - 1  # the unit is not downloaded now


def test_a_full_destination_is_named_and_left_as_it_was(
    db: Database,
    storage: LocalStorage,
    small_disk: Path,  # noqa: F811
) -> None:
    """Finding 10: 12 files of 2.4 MiB do not fit a 2 MiB tmpfs: the export says where, and leaves the
    destination as it found it (one file of its own there, nothing of the export)."""
    files = {f"big/f{i:02}.bin": bytes([i]) * (200 * 1024) + b"%d" % i for i in range(12)}
    _sync(db, storage, files)
    (small_disk / "kept.txt").write_bytes(b"was here before")

    with pytest.raises(ExportFailed) as failed:
        export_version(db, storage, "r", small_disk)
    assert f"export to {small_disk} failed at 'big/f" in str(failed.value)
    assert "No space left on device" in str(failed.value)
    assert sorted(p.name for p in small_disk.iterdir()) == ["kept.txt"]


@pytest.fixture
def s3_cli(db_kind: str, tmp_path: Path, s3_url: str, faulty_s3: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Cli:
    database = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else database.engine.url.render_as_string(hide_password=False)
    database.close()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return Cli(url, s3_url)  # type: ignore[arg-type]


@pytest.mark.s3
@pytest.mark.parametrize("command", ["verify", "verify --repair", "export"])
def test_an_s3_outage_mid_run_is_exit_1_in_one_line(
    s3_cli: Cli, faulty_s3: FaultProxy, s3_url: str, tmp_path: Path, command: str
) -> None:
    """Finding 7: S3 refuses from a few requests into the command on (ridden out for the default 30 s)."""
    with ServerThread(dict(FILES)) as server:
        assert s3_cli.run("sync", server.manifest_url, "--repo", "r", "--quiet").returncode == 0
        dest = tmp_path / "exported"
        args = [*command.split(), *(["r", str(dest)] if command == "export" else [])]
        faulty_s3.refuse_after(4)
        done = s3_cli.run(*args)
        faulty_s3.heal()
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"storage {s3_url} unreachable" in lines[0], done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    if command == "export":
        assert not dest.exists()


@pytest.mark.s3
def test_repair_on_s3_replaces_a_damaged_object(db: Database, s3_storage: S3Storage, s3_endpoint: str) -> None:
    """A stored object is only ever written when absent (If-None-Match: *): repair removes a damaged
    one before fetching it again, so the repaired object holds the recorded bytes."""
    data = FILES["d/f03.txt"]
    location = s3_storage.location_for(hashlib.sha256(data).hexdigest())

    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=s3_storage, repository="r")
            client(s3_endpoint).put_object(Bucket=s3_storage.bucket, Key=s3_storage.prefix + location, Body=b"bad")
            problems = [item for item in verify_storage(db, s3_storage) if isinstance(item, StorageProblem)]
            assert [p.location for p in problems] == [location]
            report = await asyncio.to_thread(repair_artifacts, db, s3_storage, problems)
            assert len(report.repaired) == 1 and report.quarantined == []

    asyncio.run(scenario())
    with s3_storage.open(location) as handle:
        assert handle.read() == data
    assert [item for item in verify_storage(db, s3_storage) if isinstance(item, StorageProblem)] == []
