"""Exports that round-trip (guarantee 4), on SQLite and PostgreSQL.

Everything that could stop an export half way is checked before anything is written; a version
holding two files at one path exports the one the latest version added, once; what is exported
re-syncs with our own sync. Names and versions that cannot round-trip are refused where they enter.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import insert, select, update

from pendingops import Database, LocalStorage, RemoteConfig, SyncResult, declarative_version, sync_remote
from pendingops.db.schema import Artifact, ContentArtifact
from pendingops.maintenance.export import ExportError, export_version
from pendingops.plugins.cookbook import UniverseError, parse_universe
from pendingops.plugins.file import FileContent, FilePlugin, ManifestError
from tests.conftest import file_set, file_units, version_content
from tests.remote_server import RemoteServer


def _sync(db: Database, storage: LocalStorage, files: dict[str, bytes], repository: str = "r") -> SyncResult:
    async def run() -> SyncResult:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            return await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository=repository)

    return asyncio.run(run())


def test_a_file_and_a_folder_of_the_same_name_are_refused_before_anything_is_written(db, storage, tmp_path) -> None:
    _sync(db, storage, {"a": b"a file\n", "z.txt": b"last\n"})
    _sync(db, storage, {"a/b": b"in a folder named like the file\n"})  # additive: the version holds both
    dest = tmp_path / "out"
    with pytest.raises(ExportError, match=r"cannot export version 2 as a tree: line 2: relative path 'a' \(line 1\)"):
        export_version(db, storage, "r", dest)
    assert not dest.exists()


def test_a_manifest_listing_a_file_and_its_folder_is_refused(db, storage) -> None:
    problem = r"line 2: relative path 'a' \(line 1\) is also the folder of 'a/b' \(line 2\)"
    with pytest.raises(ManifestError, match=problem):
        _sync(db, storage, {"a/b": b"inside\n", "a": b"a file\n"})


def test_a_path_too_long_to_write_is_refused_before_anything_is_written(db, storage, tmp_path) -> None:
    # Stored before names were checked where they enter: a 256-byte file name.
    files = {"fine.txt": b"fine\n", "x" * 256: b"too long a name\n"}

    async def run() -> None:
        remote = RemoteConfig(url="http://127.0.0.1:9/PULP_MANIFEST", policy="on_demand")
        units = file_units(remote.url, files)
        await declarative_version(units, db=db, storage=storage, remote=remote, repository="r")

    asyncio.run(run())
    for data in files.values():  # as if downloaded: the bytes are in storage
        temp = storage.new_temp_path()
        temp.write_bytes(data)
        storage.put(temp, hashlib.sha256(data).hexdigest())
    _link_stored(db, storage)
    dest = tmp_path / "out"
    with pytest.raises(ExportError, match=r"refusing 'x{256}': relative path has a segment longer than 255 bytes"):
        export_version(db, storage, "r", dest)
    assert not dest.exists()


def _link_stored(db: Database, storage: LocalStorage) -> None:
    """Give on-demand content its artifacts, as a later download would."""
    ca, files, artifact = ContentArtifact.__table__, FileContent.__table__, Artifact.__table__
    with db.engine.begin() as conn:
        for ca_id, sha256, size in conn.execute(
            select(ca.c.id, files.c.sha256, files.c.size).join(files, files.c.id == ca.c.content_id)
        ):
            artifact_id = conn.execute(
                insert(artifact)
                .values(sha256=sha256, size=size, location=storage.location_for(sha256))
                .returning(artifact.c.id)
            ).scalar_one()
            conn.execute(update(ca).where(ca.c.id == ca_id).values(artifact_id=artifact_id))


def test_a_path_two_versions_gave_different_files_exports_the_latest_once_and_resyncs(db, storage, tmp_path) -> None:
    _sync(db, storage, {"a.txt": b"old\n", "b.txt": b"kept\n"})
    _sync(db, storage, {"a.txt": b"new\n"})  # additive: version 2 holds both a.txt files
    assert version_content(db, "r") == file_set({"a.txt": b"old\n", "b.txt": b"kept\n"}) | file_set({"a.txt": b"new\n"})
    dest = tmp_path / "out"
    result = export_version(db, storage, "r", dest)
    assert (result.files, result.superseded) == (2, 1)
    assert (dest / "a.txt").read_bytes() == b"new\n"
    assert [line.split(",")[0] for line in (dest / "PULP_MANIFEST").read_text().splitlines()] == ["a.txt", "b.txt"]

    async def resync() -> SyncResult:
        remote = RemoteConfig(url=(dest / "PULP_MANIFEST").as_uri())
        return await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="copy")

    assert asyncio.run(resync()).added == 2
    assert version_content(db, "copy") == file_set({"a.txt": b"new\n", "b.txt": b"kept\n"})


@pytest.mark.parametrize(
    ("name", "version", "problem"),
    [
        ("a" * 250, "1.0.0", r"tarball's file name .* is longer than 255 bytes"),
        ("apt", "\u0661.\u0660", "invalid version"),  # Arabic-Indic digits: \d would take them
        ("apt", "01.00", "invalid version"),  # would be a second spelling of 1.0
        ("apt", "1.00", "invalid version"),
    ],
    ids=["name too long for a file name", "non-ASCII digits", "leading zeros", "leading zero in a part"],
)
def test_names_and_versions_that_cannot_round_trip_are_refused(name: str, version: str, problem: str) -> None:
    with pytest.raises(UniverseError, match=problem):
        parse_universe({name: {version: {"download_url": "https://supermarket.example/x"}}})


def test_canonical_versions_are_accepted() -> None:
    versions = ("0.1", "1.0", "10.20.30", "1.0.0.1")
    entries = parse_universe({"apt": {v: {"download_url": "https://s/x"} for v in versions}})
    assert [e.version for e in entries] == ["0.1", "1.0", "1.0.0.1", "10.20.30"]
