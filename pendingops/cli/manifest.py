"""``pendingops manifest DIR``: write the PULP_MANIFEST that publishes a local folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_manifest_commands(commands: Any) -> None:
    """Register ``manifest DIR`` on the CLI's sub-command parsers."""
    manifest = commands.add_parser("manifest", help="write a PULP_MANIFEST listing every file under a folder")
    manifest.add_argument("dir", type=Path, help="the folder to publish (its PULP_MANIFEST is written there)")


def cmd_manifest(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.maintenance.manifest import write_manifest

    report = write_manifest(args.dir)
    skipped = f"; {report.skipped} link(s) or special file(s) left out" if report.skipped else ""
    print(f"wrote {report.path}: {report.files} files ({report.bytes} bytes){skipped}")
    return 0
