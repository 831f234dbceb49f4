"""write_manifest: a local folder becomes a PULP_MANIFEST the file plugin syncs."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from pendingops import RemoteConfig, sync_remote
from pendingops.maintenance.manifest import ManifestWriteError, write_manifest
from pendingops.plugins.file import FilePlugin
from tests.conftest import version_content

TREE = {
    "a.txt": b"first",
    "sub/b.bin": b"\x00\x01" * 100,
    "sub/deeper/odd, name with comma.txt": b"comma",
    "ünïcode.txt": b"unicode",
    ".hidden": b"hidden files are files too",
}


def _make(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def test_the_manifest_lists_every_regular_file_and_syncs(db, storage, tmp_path) -> None:
    tree = _make(tmp_path / "tree", TREE)
    os.symlink("a.txt", tree / "link-to-a")
    report = write_manifest(tree)
    assert (report.files, report.bytes, report.skipped) == (len(TREE), sum(map(len, TREE.values())), 1)
    lines = (tree / "PULP_MANIFEST").read_text(encoding="utf-8").splitlines()
    expected = sorted(f"{p},{hashlib.sha256(d).hexdigest()},{len(d)}" for p, d in TREE.items())
    assert lines == expected
    again = write_manifest(tree)  # the manifest does not list itself
    assert again.files == len(TREE)
    assert [p.name for p in tree.iterdir() if p.name.startswith(".PULP_MANIFEST")] == []

    remote = RemoteConfig(url=(tree / "PULP_MANIFEST").as_uri())
    result = asyncio.run(sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="local"))
    assert result.added == len(TREE)
    assert version_content(db, "local") == {(p, hashlib.sha256(d).hexdigest()) for p, d in TREE.items()}


def test_a_name_no_manifest_line_can_hold_is_refused(tmp_path) -> None:
    tree = _make(tmp_path / "tree", {"good.txt": b"ok", "bad\nname.txt": b"newline"})
    with pytest.raises(ManifestWriteError, match="control character"):
        write_manifest(tree)
    assert not (tree / "PULP_MANIFEST").exists()


def test_not_a_folder(tmp_path) -> None:
    with pytest.raises(ManifestWriteError, match="not a folder"):
        write_manifest(tmp_path / "missing")
