"""HTTP conditions and ranges for a stored file (RFC 9110), as pure functions of the headers.

Only single byte ranges are served: a header asking for several, or one that does not parse, is
ignored (the whole file is sent), as RFC 9110 allows. A range whose end lies past the file is
clamped to it; a range starting at or past the end, or an empty suffix, is unsatisfiable (416).
"""

from __future__ import annotations

import mimetypes
import re
from datetime import datetime
from email.utils import parsedate_to_datetime

_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)
_ENCODED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}
#: any longer number of bytes is not a range of a file we could hold
_MAX_DIGITS = 19


class Unsatisfiable(Exception):
    """The range lies wholly past the end of the file."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) byte positions a ``Range`` header asks of a ``size``-byte file.

    None means "send the whole file"; raises Unsatisfiable for a 416.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header)
    if match is None or len(match[1]) > _MAX_DIGITS or len(match[2]) > _MAX_DIGITS:
        return None
    first, last = match[1], match[2]
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise Unsatisfiable
    return start, min(int(last), size - 1) if last else size - 1


def etag_matches(header: str, etag: str, *, weak: bool = True) -> bool:
    """Whether an ``If-None-Match`` (weak comparison) or ``If-Match`` list names ``etag`` ("quoted")."""
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            if not weak:
                continue
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def http_date(header: str | None) -> datetime | None:
    """An HTTP date header's value, or None when absent or malformed."""
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else None


def not_modified(headers: dict[str, str] | object, etag: str, last_modified: datetime) -> bool:
    """Whether a GET or HEAD with these request headers gets a 304 (If-None-Match first, RFC 9110 13.2.2)."""
    get = headers.get  # type: ignore[attr-defined]
    none_match = get("If-None-Match")
    if none_match is not None:
        return etag_matches(none_match, etag)
    since = http_date(get("If-Modified-Since"))
    return since is not None and int(last_modified.timestamp()) <= since.timestamp()


def range_applies(headers: dict[str, str] | object, etag: str, last_modified: datetime) -> bool:
    """Whether ``Range`` is honoured: no ``If-Range``, or one naming this very file (RFC 9110 13.1.5)."""
    condition = headers.get("If-Range")  # type: ignore[attr-defined]
    if condition is None:
        return True
    condition = condition.strip()
    if condition.startswith('"'):
        return condition == etag
    moment = http_date(condition)
    return moment is not None and int(last_modified.timestamp()) == int(moment.timestamp())


def media_type(name: str) -> str:
    """The Content-Type a file name suggests; a compressed file is that compressed type, never an encoding."""
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    return guessed or "application/octet-stream"
