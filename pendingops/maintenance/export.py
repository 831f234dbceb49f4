"""Export a version as a plain directory tree plus a PULP_MANIFEST, never writing outside DEST."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from pendingops.db.database import Database
from pendingops.db.versions import version_info
from pendingops.maintenance.listing import iter_version_content
from pendingops.paths import unsafe_path_reason
from pendingops.storage.base import ArtifactStorage

MANIFEST_NAME = "PULP_MANIFEST"


class ExportError(RuntimeError):
    """The export cannot be done safely; nothing outside DEST was touched."""


@dataclass(slots=True)
class ExportResult:
    version: int
    files: int = 0
    linked: int = 0
    copied: int = 0
    skipped_not_stored: int = 0


def export_version(
    db: Database, storage: ArtifactStorage, repository: str, dest: Path, number: int | None = None
) -> ExportResult:
    """Write every stored file of the version under ``dest`` at its relative path.

    Hard links are used where the storage is on the same filesystem, copies otherwise. Paths that
    would leave ``dest`` (``..``, absolute, or through a symlink inside ``dest``) are refused.
    Artifacts not downloaded yet (on-demand content) are skipped and counted.
    """
    dest = Path(dest)
    if dest.is_symlink():
        raise ExportError(f"export destination {dest} is a symlink")
    with db.engine.connect() as conn:
        result = ExportResult(version=version_info(conn, repository, number).number)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    manifest_tmp = root / f".{MANIFEST_NAME}.partial"
    with open(manifest_tmp, "w", encoding="utf-8", newline="\n") as manifest:
        for unit in iter_version_content(db, repository, result.version):
            for stored in unit.files:
                if stored.location is None or stored.sha256 is None:
                    result.skipped_not_stored += 1
                    continue
                _place(storage, stored.location, root, stored.relative_path, result)
                manifest.write(f"{stored.relative_path},{stored.sha256},{stored.size}\n")
                result.files += 1
    os.replace(manifest_tmp, root / MANIFEST_NAME)
    return result


def _place(storage: ArtifactStorage, location: str, root: Path, relative_path: str, result: ExportResult) -> None:
    problem = unsafe_path_reason(relative_path)
    if problem or relative_path == MANIFEST_NAME:
        raise ExportError(f"refusing to export {relative_path!r}: {problem or 'clashes with the manifest'}")
    target = root.joinpath(*relative_path.split("/"))
    _make_parents(root, target.parent)
    try:
        if stat.S_ISLNK(os.lstat(target).st_mode) or not stat.S_ISREG(os.lstat(target).st_mode):
            raise ExportError(f"refusing to export {relative_path!r}: {target} exists and is not a regular file")
        target.unlink()
    except FileNotFoundError:
        pass
    source = storage.local_path(location)
    if source is not None:
        try:
            os.link(source, target, follow_symlinks=False)
            result.linked += 1
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
    with storage.open(location) as src, open(target, "xb") as out:
        shutil.copyfileobj(src, out)
    result.copied += 1


def _make_parents(root: Path, folder: Path) -> None:
    """Create ``folder`` under ``root`` one level at a time, refusing any symlink on the way."""
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            current.mkdir()
            continue
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            raise ExportError(f"refusing to export through {current}: not a plain directory")
