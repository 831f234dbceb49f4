"""Export never writes outside DEST (guarantee 4), on SQLite and PostgreSQL.

Temporary files get random names, created exclusively without following symlinks; our own
temporary names are refused as content paths; every folder is opened relative to its parent's
descriptor without following symlinks, so a symlink planted in DEST, before or during the export,
is refused and never followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.maintenance.export import TEMP_PREFIX, ExportError, export_version
from pendingops.plugins.file import FilePlugin
from tests.conftest import fresh_database
from tests.remote_server import RemoteServer


def _sync(db: Database, storage: LocalStorage, files: dict[str, bytes]) -> None:
    async def run() -> None:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")

    asyncio.run(run())


def _manifest_lines(files: dict[str, bytes]) -> list[str]:
    return sorted(f"{path},{hashlib.sha256(data).hexdigest()},{len(data)}" for path, data in files.items())


def test_a_symlink_in_dest_named_like_a_temporary_manifest_is_never_followed(db, storage, tmp_path: Path) -> None:
    files = {"a.txt": b"alpha\n"}
    _sync(db, storage, files)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me\n")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / ".PULP_MANIFEST.partial").symlink_to(victim)
    export_version(db, storage, "r", dest)
    assert victim.read_bytes() == b"keep me\n"
    assert sorted((dest / "PULP_MANIFEST").read_text().splitlines()) == _manifest_lines(files)


def test_a_remote_file_named_like_a_temporary_manifest_is_only_a_file(db, storage, tmp_path: Path) -> None:
    files = {"a.txt": b"alpha\n", ".PULP_MANIFEST.partial": b"evil.txt,0000,1\n"}
    _sync(db, storage, files)
    dest = tmp_path / "out"
    export_version(db, storage, "r", dest)
    assert sorted((dest / "PULP_MANIFEST").read_text().splitlines()) == _manifest_lines(files)
    assert (dest / ".PULP_MANIFEST.partial").read_bytes() == files[".PULP_MANIFEST.partial"]


@pytest.mark.parametrize("path", [f"{TEMP_PREFIX}0123.tmp", f"sub/{TEMP_PREFIX}x"])
def test_the_exports_own_temporary_names_are_refused_as_content_paths(db, storage, tmp_path: Path, path: str) -> None:
    _sync(db, storage, {"a.txt": b"alpha\n", path: b"squatting\n"})
    dest = tmp_path / "out"
    with pytest.raises(ExportError, match=rf"refusing '{path}': names starting with '{TEMP_PREFIX}' are the export's"):
        export_version(db, storage, "r", dest)
    assert not dest.exists()  # refused while planning, before DEST is even created


#: run as its own process (truly alongside the export, not taking turns with it for the GIL): turns
#: DEST/a into a symlink to OUTSIDE and back until killed; the export may recreate ``a`` while it is
#: away, so each step just tries
SWAPPER = """
import os, sys
from contextlib import suppress
dest, outside = sys.argv[1:]
count = 0
while True:
    count += 1
    aside = os.path.join(dest, f"a.{count}")
    with suppress(OSError):
        os.rename(os.path.join(dest, "a"), aside)
    with suppress(OSError):
        os.symlink(outside, os.path.join(dest, "a"))
    with suppress(OSError):
        os.unlink(os.path.join(dest, "a"))
    with suppress(OSError):
        os.rename(aside, os.path.join(dest, "a"))
"""


def test_a_folder_swapped_for_a_symlink_during_the_export_gets_nothing_outside_dest(storage, tmp_path: Path):
    db = fresh_database("sqlite", tmp_path)  # a race on the filesystem: one database is enough
    files = {f"a/{i:02d}.txt": f"file {i}\n".encode() for i in range(20)}
    _sync(db, storage, files)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    export_version(db, storage, "r", dest)  # DEST/a exists from now on
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(dest), str(outside)])
    outcomes = []
    try:
        for _ in range(100):  # many are refused early on; each is a fresh chance for the race
            try:
                outcomes.append(export_version(db, storage, "r", dest).files)
            except (ExportError, OSError) as exc:  # refused mid-way: fine, as long as nothing went outside
                outcomes.append(type(exc).__name__)
    finally:
        swapper.kill()
        swapper.wait()
        db.close()
    assert list(outside.iterdir()) == [], outcomes
