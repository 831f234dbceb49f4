"""Exports do not share inodes with storage by default (guarantee 2), on SQLite and PostgreSQL.

``export`` copies (reflinks where the filesystem can), so editing an exported file cannot change a
stored artifact; ``--hardlink`` shares them, on request only, with a warning.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from pendingops import LocalStorage, RemoteConfig, sync_remote
from pendingops.maintenance.export import export_version
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.file import FilePlugin
from tests.cli.test_hostile_input import Env, env  # noqa: F401 (the fixture)
from tests.remote_server import RemoteServer

FILES = {"a.txt": b"alpha\n", "dir/b.txt": b"beta\n"}


def _problems(db, storage) -> list[StorageProblem]:
    return [item for item in verify_storage(db, storage) if isinstance(item, StorageProblem)]


def _sync(db, storage) -> None:
    async def run() -> None:
        async with RemoteServer(dict(FILES)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")

    asyncio.run(run())


def test_editing_an_exported_file_leaves_storage_intact(db, storage, tmp_path: Path) -> None:
    _sync(db, storage)
    first = tmp_path / "first"
    result = export_version(db, storage, "r", first)
    assert (result.copied, result.linked) == (2, 0)
    with open(first / "a.txt", "r+b") as exported:  # edited in place, as an editor or a script would
        exported.write(b"ALPHA")
    assert _problems(db, storage) == []
    second = tmp_path / "second"
    export_version(db, storage, "r", second)
    assert (second / "a.txt").read_bytes() == FILES["a.txt"]


def test_hard_links_are_explicit_and_warned(env: Env, tmp_path: Path) -> None:  # noqa: F811
    _sync(env.db, LocalStorage(env.storage))
    linked = env.run("export", "r", str(tmp_path / "linked"), "--hardlink")
    assert linked.returncode == 0
    assert "2 files (2 hard-linked, 0 copied)" in linked.stdout
    [warning] = linked.stderr.splitlines()
    assert warning.startswith("pendingops: warning: --hardlink: exported files share their bytes with storage")
    stored = env.storage / "artifacts"
    for path, data in FILES.items():
        digest = hashlib.sha256(data).hexdigest()
        assert os.path.samefile(tmp_path / "linked" / path, stored / digest[:2] / digest[2:])
