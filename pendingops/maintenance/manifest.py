"""Write a PULP_MANIFEST for a local folder, so the file plugin can sync it (from file:// or a web server)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pendingops.paths import unsafe_path_reason

MANIFEST_NAME = "PULP_MANIFEST"
_CHUNK = 1024 * 1024


class ManifestWriteError(ValueError):
    """The folder cannot be described by a manifest (not a folder, a file name no manifest line can hold)."""


@dataclass(frozen=True, slots=True)
class ManifestReport:
    path: Path
    files: int
    bytes: int
    #: symbolic links and special files left out (a manifest lists regular files only)
    skipped: int


def write_manifest(folder: Path) -> ManifestReport:
    """List every regular file under ``folder`` (sorted, ``relative_path,sha256,size``) in ``folder/PULP_MANIFEST``.

    Symbolic links and special files are left out; the manifest itself too. The file is written
    under a temporary name and renamed into place, so a reader never sees half of it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestWriteError(f"{folder}: not a folder")
    lines: list[str] = []
    total = skipped = 0
    for relative, path in _regular_files(folder):
        if relative == MANIFEST_NAME:
            continue
        if path is None:
            skipped += 1
            continue
        problem = unsafe_path_reason(relative)
        if problem:
            raise ManifestWriteError(f"{folder}: cannot list {relative!r}: {problem}")
        sha256, size = _digest(path)
        lines.append(f"{relative},{sha256},{size}\n")
        total += size
    target = folder / MANIFEST_NAME
    temp = folder / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    try:
        with open(temp, "w", encoding="utf-8", newline="\n") as out:
            out.writelines(lines)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return ManifestReport(target, len(lines), total, skipped)


def _regular_files(folder: Path) -> list[tuple[str, Path | None]]:
    """(relative path, path) of every entry under ``folder`` in sorted order; path None for what is left out."""
    found: list[tuple[str, Path | None]] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        dirs.sort()
        for name in dirs:
            if (base / name).is_symlink():
                found.append(((base / name).relative_to(folder).as_posix(), None))
        for name in sorted(files):
            if name.startswith(f".{MANIFEST_NAME}."):
                continue  # a manifest being written
            path = base / name
            regular = path.is_file() and not path.is_symlink()
            found.append((path.relative_to(folder).as_posix(), path if regular else None))
    found.sort(key=lambda item: item[0])
    return found


def _digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
