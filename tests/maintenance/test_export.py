"""Export writes a version's files under DEST only, never through or onto symlinks."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from pendingops import RemoteConfig, sync_remote
from pendingops.maintenance.export import ExportError, export_version
from pendingops.plugins.file import FilePlugin
from pendingops.plugins.python import PythonPlugin
from tests.plugins.python_index import index_files, wheel
from tests.remote_server import RemoteServer

FILES = {"a/b/c.txt": b"deep", "top.txt": b"top", "a/other.txt": b"other"}


def _sync(db, storage, files=FILES, policy="immediate") -> None:
    async def run() -> None:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url, policy=policy)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")

    asyncio.run(run())


def test_export_copies_files_and_writes_manifest(db, storage, tmp_path: Path) -> None:
    _sync(db, storage)
    result = export_version(db, storage, "r", tmp_path / "out")
    assert (result.version, result.files, result.linked, result.copied) == (1, 3, 0, 3)
    for path, data in FILES.items():
        exported = tmp_path / "out" / path
        assert exported.read_bytes() == data
        stored = storage.local_path(storage.location_for(hashlib.sha256(data).hexdigest()))
        assert not os.path.samefile(exported, stored)  # a copy by default: editing it cannot reach storage
    lines = (tmp_path / "out" / "PULP_MANIFEST").read_text().splitlines()
    assert sorted(lines) == sorted(f"{p},{hashlib.sha256(d).hexdigest()},{len(d)}" for p, d in FILES.items())


def test_export_refuses_a_symlinked_folder_inside_dest(db, storage, tmp_path: Path) -> None:
    _sync(db, storage)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(outside, dest / "a")
    with pytest.raises(ExportError, match="not a plain directory"):
        export_version(db, storage, "r", dest)
    assert list(outside.iterdir()) == []


def test_export_refuses_to_write_onto_a_symlinked_file(db, storage, tmp_path: Path) -> None:
    _sync(db, storage)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(victim, dest / "top.txt")
    with pytest.raises(ExportError, match="not a regular file"):
        export_version(db, storage, "r", dest)
    assert victim.read_bytes() == b"keep me"


def test_export_refuses_a_symlink_as_dest(db, storage, tmp_path: Path) -> None:
    _sync(db, storage)
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    with pytest.raises(ExportError, match="symlink"):
        export_version(db, storage, "r", tmp_path / "link")
    assert list(real.iterdir()) == []


def test_export_skips_files_not_downloaded(db, storage, tmp_path: Path) -> None:
    _sync(db, storage, policy="on_demand")
    result = export_version(db, storage, "r", tmp_path / "out")
    assert (result.files, result.skipped_not_stored) == (0, 3)
    assert (tmp_path / "out" / "PULP_MANIFEST").read_text() == ""


def _sync_python_and_files(db, storage, files: dict[str, bytes]) -> None:
    """Repository "r": a one-wheel python index, then (additive) the file plugin's ``files``."""

    async def run() -> None:
        async with RemoteServer(index_files({"beta": [wheel("beta", "1.0")]})) as index:
            remote = RemoteConfig(url=index.base_url + "simple/")
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="r")
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")

    asyncio.run(run())


def test_export_refuses_a_file_where_a_plugin_writes_its_pages(db, storage, tmp_path: Path) -> None:
    _sync_python_and_files(db, storage, {"simple/beta/index.html": b"mine"})
    with pytest.raises(ExportError, match=r"refusing 'simple/beta/index.html': a plugin writes its simple/ pages"):
        export_version(db, storage, "r", tmp_path / "out", plugins=[FilePlugin(), PythonPlugin()])
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_export_refuses_a_symlinked_page_folder_before_writing_anything(db, storage, tmp_path: Path) -> None:
    _sync_python_and_files(db, storage, {"top.txt": b"top"})
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(outside, dest / "simple")
    with pytest.raises(ExportError, match="not a plain directory"):
        export_version(db, storage, "r", dest, plugins=[FilePlugin(), PythonPlugin()])
    assert list(outside.iterdir()) == [] and sorted(p.name for p in dest.iterdir()) == ["simple"]
