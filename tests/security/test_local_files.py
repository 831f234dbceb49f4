"""A remote's data never makes pendingops read local files (guarantee 4), on SQLite and PostgreSQL.

An http(s) remote may only name http(s) URLs; a ``file://`` remote only regular files under its own
folder, symlinks resolved. Stored files are never more readable than the storage folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.context import SyncResult
from pendingops.plugins.cookbook import CookbookPlugin, metadata_url
from pendingops.plugins.file import FilePlugin
from tests.conftest import file_set, version_content
from tests.plugins.cookbook_server import CookbookServer, cookbook, make_tarball
from tests.remote_server import Fault, RemoteServer

REFUSED_SCHEME = "refused: the remote is http://, so the URLs it names must be http(s)"
#: a private tarball of the user's, without metadata.json: any cookbook version could claim it
SECRET = make_tarball("secret", "1.0.0", metadata={}, files={"id_rsa": b"-----BEGIN PRIVATE KEY-----\n"})


def _secret_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder / "secret.tar.gz"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    return secret


def _stored_digests(storage: LocalStorage) -> set[str]:
    return {p.parent.name + p.name for p in (storage.root / "artifacts").rglob("*") if p.is_file()}


def _failures(result: SyncResult) -> dict[str, str]:
    """Reasons by cookbook name, from reports such as "cookbook (name=x, version=1.0.0, ...)"."""
    return {f.unit.split("name=", 1)[1].split(",", 1)[0]: f.reason for f in result.failures}


async def _sync(url: str, db: Database, storage: LocalStorage) -> SyncResult:
    remote = RemoteConfig(url=url, retries=0)
    return await sync_remote(CookbookPlugin(), remote, db=db, storage=storage, repository="r", on_error="skip")


@pytest.mark.parametrize(
    ("name", "download_url"),
    [
        ("plain", lambda secret: secret.as_uri()),
        ("anyhost", lambda secret: f"file://anyhost{secret}"),
        ("localhost", lambda secret: f"file://localhost{secret}"),
        ("device", lambda secret: "file:///dev/zero"),
    ],
)
def test_an_http_remote_cannot_name_a_local_file(db, storage, tmp_path, name, download_url) -> None:
    secret = _secret_file(tmp_path / "home")
    offered = dict([cookbook("good", "1.0.0"), cookbook(name, "1.0.0")])
    offered[(name, "1.0.0")].download_url = download_url(secret)

    async def scenario() -> SyncResult:
        async with CookbookServer(offered) as server:
            return await _sync(server.base_url, db, storage)

    result = asyncio.run(scenario())
    assert _failures(result) == {name: f"{download_url(secret)}: {REFUSED_SCHEME}"}
    assert hashlib.sha256(SECRET).hexdigest() not in _stored_digests(storage)
    assert _stored_digests(storage) == {hashlib.sha256(offered[("good", "1.0.0")].tarball).hexdigest()}


def _file_remote(root: Path, offered: dict[str, str]) -> None:
    """A Supermarket laid out as files under ``root``: name -> download_url."""
    universe = {}
    for name, url in offered.items():
        universe[name] = {"1.0.0": {"download_url": url, "dependencies": {}}}
        metadata = Path(metadata_url(str(root), name, "1.0.0"))
        metadata.parent.mkdir(parents=True, exist_ok=True)
        metadata.write_text(json.dumps({"license": "MIT"}))
    (root / "universe").write_text(json.dumps(universe))


def test_a_file_remote_reads_only_regular_files_under_its_folder(db, storage, tmp_path) -> None:
    secret = _secret_file(tmp_path / "home")
    root = tmp_path / "remote"
    root.mkdir()
    good = root / "good.tar.gz"
    good.write_bytes(make_tarball("good", "1.0.0"))
    (root / "link.tar.gz").symlink_to(secret)
    os.mkfifo(root / "fifo.tar.gz")  # opening it for reading would wait for a writer forever
    offered = {
        "good": good.as_uri(),
        "outside": secret.as_uri(),
        "dotdot": f"{root.as_uri()}/../home/secret.tar.gz",
        "symlink": (root / "link.tar.gz").as_uri(),
        "fifo": (root / "fifo.tar.gz").as_uri(),
        "host": f"file://otherhost{good}",
    }
    _file_remote(root, offered)
    result = asyncio.run(_sync(root.as_uri() + "/", db, storage))
    refused_outside = f"refused: outside the remote's folder {root}"
    assert _failures(result) == {
        "outside": f"{offered['outside']}: {refused_outside}",
        "dotdot": f"{offered['dotdot']}: {refused_outside}",
        "symlink": f"{offered['symlink']}: {refused_outside}",
        "fifo": f"{offered['fifo']}: refused: not a regular file",
        "host": f"{offered['host']}: refused: a file URL must not name a host",
    }
    assert _stored_digests(storage) == {hashlib.sha256(good.read_bytes()).hexdigest()}
    assert result.added == 1


def test_a_redirect_to_a_local_file_is_refused(db, storage, tmp_path) -> None:
    secret = _secret_file(tmp_path / "home")
    files = {"a.txt": SECRET}  # what the redirect would fetch, were it followed

    async def scenario() -> tuple[SyncResult, RemoteServer]:
        async with RemoteServer(dict(files), faults={"a.txt": Fault(redirect_to=secret.as_uri())}) as server:
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            result = await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", on_error="skip")
            return result, server

    result, server = asyncio.run(scenario())
    assert [f.reason for f in result.failures] == [f"{server.base_url}a.txt: refused a redirect to a 'file' URL"]
    assert _stored_digests(storage) == set()


@pytest.mark.parametrize(("folder_mode", "file_mode"), [(0o700, 0o600), (0o750, 0o640), (0o755, 0o644)])
def test_stored_files_are_no_more_readable_than_the_storage_folder(db, tmp_path, folder_mode, file_mode) -> None:
    root = tmp_path / "private-storage"
    root.mkdir()
    root.chmod(folder_mode)
    storage = LocalStorage(root)
    files = {"kept.txt": b"downloaded bytes\n"}

    async def scenario() -> None:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")

    asyncio.run(scenario())
    assert version_content(db, "r") == file_set(files)
    [stored] = [p for p in (root / "artifacts").rglob("*") if p.is_file()]
    assert stat.S_IMODE(stored.stat().st_mode) == file_mode
