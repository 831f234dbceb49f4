"""``pendingops demo``: a generated file repository served on 127.0.0.1, synced, changed, resynced."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from pendingops.cli._progress import ProgressPrinter
from pendingops.db.versions import list_versions
from pendingops.declarative import sync_remote
from pendingops.maintenance.lifecycle import diff_versions
from pendingops.plugins.file import MANIFEST_NAME, FilePlugin
from pendingops.remote import RemoteConfig

REPOSITORY = "demo"


def write_repository(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``root`` with a matching PULP_MANIFEST (any previous tree is replaced)."""
    for old in sorted(root.rglob("*"), reverse=True):
        old.unlink() if old.is_file() else old.rmdir()
    lines = []
    for relative_path, data in sorted(files.items()):
        target = root / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        lines.append(f"{relative_path},{hashlib.sha256(data).hexdigest()},{len(data)}")
    (root / MANIFEST_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


def demo_files(count: int) -> dict[str, bytes]:
    """Deterministic files, some with names that need percent-encoding."""
    names = ["notes/read me.txt", "odd/100% pure.txt", "odd/hash#tag.txt", "odd/ünïcode.txt"]
    files = {name: f"{name}\n".encode() * 8 for name in names}
    for index in range(max(0, count - len(names))):
        files[f"packages/group-{index % 4}/package-{index:03d}.bin"] = hashlib.sha256(str(index).encode()).digest() * 32
    return files


def changed_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """The remote after an update: a few files removed, a few rewritten, a few added."""
    names = sorted(files)
    changed = {name: data for name, data in files.items() if name not in names[:3]}
    for name in names[3:5]:
        changed[name] = files[name] + b"updated\n"
    for index in range(4):
        changed[f"new/release-{index}.txt"] = f"new release {index}\n".encode()
    return changed


async def _serve(root: Path) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_static("/", root)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/{MANIFEST_NAME}"


#: the file that marks a folder as the demo's own, so a run may empty it
MARKER = ".pendingops-demo"


def prepare_folder(folder: Path) -> None:
    """Empty the demo's folder (only one it created: marked, or a new or empty one) and mark it."""
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise ValueError(f"{folder} is not empty and not a demo folder; choose another with --data")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("pendingops demo data: emptied by every 'pendingops demo' run\n")


async def _demo(settings: Any, count: int) -> int:
    from pendingops.cli.sync import SnapshotRecorder, print_summary

    with tempfile.TemporaryDirectory(prefix="pendingops-demo-") as tmp:
        root = Path(tmp) / "remote"
        root.mkdir()
        files = demo_files(count)
        write_repository(root, files)
        runner, url = await _serve(root)
        print(f"Serving a demo file repository of {len(files)} files at {url}\n")
        try:
            steps = [("1. initial sync", files), ("2. the remote changed: mirror resync", changed_files(files))]
            for title, state in steps:
                write_repository(root, state)
                print(title)
                recorder = SnapshotRecorder(ProgressPrinter())
                result = await sync_remote(
                    FilePlugin(),
                    RemoteConfig(url=url),
                    db=settings.db,
                    storage=settings.storage,
                    repository=REPOSITORY,
                    mirror=True,
                    on_progress=recorder,
                    progress_interval=0.2,
                )
                print_summary(result, url, "file", True, recorder.last)
                print()
        finally:
            await runner.cleanup()
    with settings.db.engine.connect() as conn:
        versions = list_versions(conn, REPOSITORY)
    print(f"Versions of '{REPOSITORY}':")
    print(f"{'version':>9} {'units':>7} {'added':>7} {'removed':>8}")
    for v in versions:
        print(f"{v.number:>9} {v.content_count:>7} {v.added:>7} {v.removed:>8}")
    if len(versions) >= 2:
        before, after = versions[-2].number, versions[-1].number
        diff = diff_versions(settings.db, REPOSITORY, before, after)
        print(f"\nWhat changed from version {before} to {after} (pendingops diff {REPOSITORY} {before} {after}):")
        lines = [f"  + {unit.fields['relative_path']}" for unit in diff.added]
        lines += [f"  - {unit.fields['relative_path']}" for unit in diff.removed]
        replaced = "(new content: a new unit replaces the old one)"
        lines += [f"  ~ {new.fields['relative_path']} {replaced}" for _, new in diff.changed]
        print("\n".join(sorted(lines, key=lambda line: line[4:])))
    print(f"\nDatabase: {settings.db_url}\nStorage:  {settings.storage_dir}")
    command = f"{_command_name()} --db {settings.db_url} --storage {settings.storage_dir}"
    print(f"Try: {command} versions demo")
    print(f"     {command} content demo --json")
    print(f"     {command} export demo /tmp/demo-export")
    return 0


def _command_name() -> str:
    """How to call this program again: its bare name when it is on PATH, else the path it ran from."""
    invoked = Path(sys.argv[0])
    return invoked.name if shutil.which(invoked.name) == str(invoked.absolute()) else str(invoked)


def run_demo(folder: Path, count: int) -> int:
    """Run the demo in ``folder`` (its database and storage), emptied first so every run starts the same."""
    from pendingops.cli._app import Settings

    folder = folder.absolute()
    prepare_folder(folder)
    settings = Settings(f"sqlite:///{folder / 'demo.db'}", str(folder / "storage"))
    try:
        return asyncio.run(_demo(settings, count))
    finally:
        settings.close()


def cmd_demo(args: argparse.Namespace, settings: Any) -> int:
    """``pendingops demo``: uses its own folder, not the ``--db`` and ``--storage`` settings."""
    return run_demo(args.data, args.files)
