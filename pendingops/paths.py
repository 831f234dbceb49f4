"""Relative paths inside a repository: what is safe to write under an export directory."""

from __future__ import annotations

import re

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_path_reason(path: str) -> str | None:
    """Why ``path`` could escape or corrupt a directory it is written under; None when it is safe."""
    if not path:
        return "empty relative path"
    if _CONTROL.search(path):
        return "relative path contains a NUL or control character"
    if path.startswith("/") or _DRIVE.match(path):
        return "relative path must not be absolute"
    if "\\" in path:
        return "relative path must not contain a backslash"
    if len(path.encode()) > MAX_PATH_BYTES:
        return f"relative path is longer than {MAX_PATH_BYTES} bytes"
    for segment in path.split("/"):
        if segment == "":
            return "relative path has an empty segment"
        if segment in (".", ".."):
            return f"relative path has a {segment!r} segment"
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            return f"relative path has a segment longer than {MAX_SEGMENT_BYTES} bytes"
    return None
