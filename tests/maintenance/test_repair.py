"""verify --repair fetches bad or missing artifacts again, quarantines the rest; a sync never takes a missing file."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.db.schema import Artifact, ContentArtifact
from pendingops.maintenance.export import export_version
from pendingops.maintenance.repair import QUARANTINE, repair_artifacts
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.file import FilePlugin
from tests.conftest import POSTGRES_URL, assert_artifacts_intact, count_rows, fresh_database
from tests.remote_server import Fault, RemoteServer
from tests.server_thread import ServerThread

SCRIPT = str(Path(sys.executable).parent / "pendingops")
FILES = {f"f{i}.txt": f"file number {i}\n".encode() * 50 for i in range(5)}


def _location(storage: LocalStorage, path: str) -> Path:
    return storage.root / storage.location_for(hashlib.sha256(FILES[path]).hexdigest())


def _problems(db: Database, storage: LocalStorage) -> list[StorageProblem]:
    return [item for item in verify_storage(db, storage) if isinstance(item, StorageProblem)]


def _sync(db: Database, storage: LocalStorage, server: RemoteServer, **options: object):
    remote = RemoteConfig(url=server.manifest_url, retries=0)
    return sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", **options)


def test_bad_and_missing_artifacts_are_fetched_again(db, storage) -> None:
    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:
            await _sync(db, storage, server)
            _location(storage, "f1.txt").write_bytes(b"damaged through a hard-linked export")
            _location(storage, "f2.txt").unlink()
            problems = _problems(db, storage)
            assert {p.problem.split()[0] for p in problems} == {"size", "missing"}
            report = await asyncio.to_thread(repair_artifacts, db, storage, problems)
            wanted = sorted(hashlib.sha256(FILES[p]).hexdigest() for p in ("f1.txt", "f2.txt"))
            assert (sorted(report.repaired), report.quarantined) == (wanted, [])
            assert (server.requests["f1.txt"], server.requests["f2.txt"], server.requests["f0.txt"]) == (2, 2, 1)

    asyncio.run(scenario())
    assert _problems(db, storage) == []
    assert_artifacts_intact(db, storage)


def test_what_no_remote_gives_back_is_quarantined_and_the_next_sync_fetches_it(db, storage, tmp_path) -> None:
    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:
            await _sync(db, storage, server)
            damaged = _location(storage, "f3.txt")
            damaged.write_bytes(b"bad bytes")
            server.faults["f3.txt"] = Fault(status=404)
            report = await asyncio.to_thread(repair_artifacts, db, storage, _problems(db, storage), retries=0)
            assert report.repaired == []
            [item] = report.quarantined
            assert item.sha256 == hashlib.sha256(FILES["f3.txt"]).hexdigest()
            assert "404" in item.reason
            assert item.moved_to == str(storage.root / QUARANTINE / item.sha256)
            assert Path(item.moved_to).read_bytes() == b"bad bytes" and not damaged.exists()
            assert _problems(db, storage) == []
            assert count_rows(db, Artifact) == len(FILES) - 1
            exported = export_version(db, storage, "r", tmp_path / "out")
            assert exported.skipped_not_stored == 1 and not (tmp_path / "out" / "f3.txt").exists()

            server.faults.clear()
            result = await _sync(db, storage, server)
            assert not result.created  # the same content: only its file came back
            assert server.requests["f3.txt"] == 3  # the sync, the refused repair, the resync

    asyncio.run(scenario())
    assert _problems(db, storage) == []
    with db.engine.connect() as conn:
        unlinked = conn.execute(select(ContentArtifact.__table__.c.id).where(ContentArtifact.artifact_id.is_(None)))
        assert unlinked.all() == []
    assert_artifacts_intact(db, storage)


def test_a_resync_fetches_a_missing_file_instead_of_calling_it_present(db, storage, tmp_path) -> None:
    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:
            await _sync(db, storage, server)
            _location(storage, "f0.txt").unlink()
            _location(storage, "f4.txt").unlink()
            result = await _sync(db, storage, server, mirror=True)
            assert not result.created
            assert server.requests["f0.txt"] == 2 and server.requests["f4.txt"] == 2
            assert server.requests["f1.txt"] == 1  # present files are not fetched again

    asyncio.run(scenario())
    assert _problems(db, storage) == []
    assert_artifacts_intact(db, storage)
    exported = export_version(db, storage, "r", tmp_path / "out")
    assert exported.files == len(FILES)


def test_a_new_repository_sharing_bytes_fetches_a_missing_file(db, storage) -> None:
    """query_existing_artifacts finds the row by sha256; its file is gone, so it is downloaded."""

    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:
            await _sync(db, storage, server)
            _location(storage, "f2.txt").unlink()
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="other")
            assert server.requests["f2.txt"] == 2

    asyncio.run(scenario())
    assert _problems(db, storage) == []


def test_verify_repair_on_the_command_line(db_kind, tmp_path) -> None:
    db = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    db.close()
    storage = LocalStorage(tmp_path / "storage")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        line = [SCRIPT, "--db", url, "--storage", str(storage.root), *args]
        return subprocess.run(line, capture_output=True, text=True, timeout=120)

    with ServerThread(dict(FILES)) as server:
        assert run("sync", server.manifest_url, "--repo", "r", "--quiet").returncode == 0
        _location(storage, "f1.txt").write_bytes(b"x")
        _location(storage, "f2.txt").unlink()
        checked = run("verify")
        assert checked.returncode == 1 and "2 problem(s)" in checked.stdout
        repaired = run("verify", "--repair")
        assert repaired.returncode == 0, repaired.stderr
        assert repaired.stdout.count("REPAIRED ") == 2 and "repaired 2, quarantined 0" in repaired.stdout
        assert run("verify").returncode == 0

        _location(storage, "f0.txt").unlink()
        server.faults["f0.txt"] = Fault(status=404)
        quarantined = run("verify", "--repair")
        assert quarantined.returncode == 1
        assert "QUARANTINED " in quarantined.stdout and "repaired 0, quarantined 1" in quarantined.stdout
        assert run("verify").returncode == 0


def test_a_private_destination_is_reached_only_if_a_repository_holding_the_file_allows_it(db, storage) -> None:
    """The remote redirects f0.txt to another loopback server, which only an allowed fetch may reach."""

    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server, RemoteServer(dict(FILES)) as elsewhere:
            server.faults["f0.txt"] = Fault(redirect_to=elsewhere.base_url + "f0.txt")
            remote = RemoteConfig(url=server.manifest_url, retries=0, allow_private_destinations=True)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")
            _location(storage, "f0.txt").unlink()
            report = await asyncio.to_thread(repair_artifacts, db, storage, _problems(db, storage))
            assert report.repaired == [hashlib.sha256(FILES["f0.txt"]).hexdigest()]
            assert elsewhere.requests["f0.txt"] == 2

            del server.faults["f0.txt"]
            await _sync(db, storage, server, force=True)  # succeeds without the leave: it is remembered so
            server.faults["f0.txt"] = Fault(redirect_to=elsewhere.base_url + "f0.txt")
            _location(storage, "f0.txt").unlink()
            report = await asyncio.to_thread(repair_artifacts, db, storage, _problems(db, storage))
            [quarantined] = report.quarantined
            assert "refused: 127.0.0.1 is a loopback address" in quarantined.reason
            assert elsewhere.requests["f0.txt"] == 2

    asyncio.run(scenario())
