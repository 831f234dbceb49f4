"""Reading a request target as (repository, version, relative path), refusing every hostile form.

The raw target is split on ``/`` before any segment is percent-decoded, so an encoded ``%2f`` can
never make a separator and an encoded ``%2e%2e`` is a segment like any other; a decoded segment
that is empty (``//``), ``.`` or ``..``, or holds a ``/``, a backslash or a control character
(NUL included) is refused. What is left is only a key looked up among the version's own paths:
nothing is ever joined to a filesystem path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadPath(ValueError):
    """The request target is not a path this server can answer."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a request names: ``/`` (no repository), a repository's version, a file or folder in it."""

    repository: str | None = None
    #: "latest" or a version number
    version: str | None = None
    #: the relative path inside the version ("" for its top folder), without a trailing "/"
    path: str = ""
    #: the target ended with "/" (a folder listing)
    folder: bool = True


def parse_target(raw_target: str) -> Target:
    """The Target named by a raw request target (path and query, as sent); raise BadPath if none."""
    path = raw_target.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise BadPath("not an origin-form request target")
    if path == "/":
        return Target()
    raw_segments = path[1:].split("/")
    folder = raw_segments[-1] == ""
    if folder:
        raw_segments.pop()
    segments = [_segment(raw) for raw in raw_segments]
    if len(segments) == 1:
        return Target(segments[0], None, "", folder)
    version = segments[1]
    if version != "latest" and not (version.isascii() and version.isdigit() and len(version) < 10):
        raise BadPath(f"not a version: {version!r}")
    return Target(segments[0], version, "/".join(segments[2:]), folder)


def _segment(raw: str) -> str:
    try:
        text = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadPath("a path segment is not UTF-8") from None
    if text in ("", ".", ".."):
        raise BadPath("empty, '.' or '..' path segment")
    if "/" in text or "\\" in text or _CONTROL.search(text):
        raise BadPath("a path segment holds '/', '\\' or a control character")
    return text
