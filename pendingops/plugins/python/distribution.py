"""What a distribution's file name says: its version and kind (wheel or sdist), and version order."""

from __future__ import annotations

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from pendingops.plugins.python.index_page import normalize

_SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz")


def parse_filename(filename: str, project: str) -> tuple[str, str] | None:
    """(version, packagetype) of a file of ``project``, or None when the name is not one of its
    wheels or sdists (other kinds, eggs and installers, are skipped)."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            kind = "bdist_wheel"
        elif filename.endswith(".tar.gz") or filename.endswith(".zip"):
            name, version = parse_sdist_filename(filename)
            kind = "sdist"
        elif filename.endswith(_SDIST_SUFFIXES):
            stem = next(filename[: -len(s)] for s in _SDIST_SUFFIXES if filename.endswith(s))
            base, _, text = stem.rpartition("-")
            name, version = base, Version(text)
            kind = "sdist"
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    if normalize(str(name)) != normalize(project):
        return None
    return str(version), kind


def sort_key(version: str) -> Version:
    return Version(version)


def is_prerelease(version: str) -> bool:
    return Version(version).is_prerelease
