"""HTTP conditions and ranges for a stored artifact: only what aiohttp's FileResponse lacks.

aiohttp parses the headers (``request.if_none_match``, ``if_modified_since``, ``if_range``,
``http_range``) and this module uses those parsers. Its FileResponse also evaluates the conditions,
but we cannot hand them to it:

- its ETag is the file's mtime and size; ours is the artifact's sha256 (strong, the same on every
  storage and after a restore), so every tag comparison is made here against ours;
- it serves a local path only: a file sent from memory or read from an object store has no path,
  and must answer the same conditions and ranges;
- its If-Range knows dates only, compared as "not modified since": an entity tag there is skipped
  (the range is sent anyway) and a later date honours the range. RFC 9110 13.1.5 honours it only
  for this very file: its strong tag, or exactly its Last-Modified;
- it answers several ranges, or one it cannot parse, with 416; we ignore such a header and send the
  whole file (RFC 9110 14.2 allows it), and an empty suffix (``bytes=-0``), which its parser reads
  as "from byte 0", is unsatisfiable here.

So FileResponse only sends the bytes: serve/app.py hands it the request with these headers decided,
in RFC 9110 13.2.2's order: If-Match (else If-Unmodified-Since) for a 412, then If-None-Match (else
If-Modified-Since) for a 304, then If-Range and Range.
A range whose end lies past the file is clamped to it; one starting at or past the end is a 416.
"""

from __future__ import annotations

import mimetypes
from datetime import datetime

from aiohttp import hdrs, web

_ENCODED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}
#: an If-Match or If-None-Match naming any current file
_ANY = "*"


class Unsatisfiable(Exception):
    """The range lies wholly past the end of the file."""


def byte_range(request: web.BaseRequest, size: int) -> tuple[int, int] | None:
    """The (first, last) byte positions the request's ``Range`` asks of a ``size``-byte file.

    None means "send the whole file"; raises Unsatisfiable for a 416.
    """
    try:
        asked = request.http_range
    except ValueError:  # several ranges, another unit, last before first, a number too long: ignored
        return None
    start, stop = asked.start, asked.stop
    if start is None:
        return None
    if start < 0 or (start == 0 and request.headers[hdrs.RANGE].partition("=")[2].startswith("-")):
        if start == 0 or size == 0:  # "bytes=-0", or any suffix of an empty file
            raise Unsatisfiable
        return max(0, size + start), size - 1
    if start >= size:
        raise Unsatisfiable
    return start, size - 1 if stop is None else min(stop - 1, size - 1)


def precondition_failed(request: web.BaseRequest, etag: str, last_modified: datetime) -> bool:
    """Whether a GET or HEAD of this (existing) file gets a 412, asked before ``not_modified`` (RFC 9110 13.2.2).

    If-Match, when sent, alone decides: it holds for ``*`` or our tag compared strongly (a ``W/`` tag
    never matches). Without it, If-Unmodified-Since fails for a date before Last-Modified; a date
    that cannot be parsed is ignored (13.1.4).
    """
    match = request.if_match
    if match is not None:
        return not any(not tag.is_weak and tag.value in (_ANY, etag[1:-1]) for tag in match)
    since = request.if_unmodified_since
    return since is not None and int(last_modified.timestamp()) > since.timestamp()


def condition_status(request: web.BaseRequest, etag: str, last_modified: datetime) -> int | None:
    """The status a GET or HEAD's conditions answer with: 412, 304, or None to send the file (or its range).

    RFC 9110 13.2.2's order: the preconditions that fail (412) first, then those that find the
    client's copy current (304); If-Range is looked at only after both (``range_applies``).
    """
    if precondition_failed(request, etag, last_modified):
        return 412
    if not_modified(request, etag, last_modified):
        return 304
    return None


def not_modified(request: web.BaseRequest, etag: str, last_modified: datetime) -> bool:
    """Whether a GET or HEAD gets a 304: If-None-Match, when sent, alone decides (RFC 9110 13.2.2).

    ``etag`` is ours, quoted; the comparison is weak (``W/`` tags match too).
    """
    none_match = request.if_none_match
    if none_match is not None:
        return any(tag.value in (_ANY, etag[1:-1]) for tag in none_match)
    since = request.if_modified_since
    return since is not None and int(last_modified.timestamp()) <= since.timestamp()


def range_applies(request: web.BaseRequest, etag: str, last_modified: datetime) -> bool:
    """Whether ``Range`` is honoured: no ``If-Range``, or one naming this very file (RFC 9110 13.1.5)."""
    condition = request.headers.get(hdrs.IF_RANGE)
    if condition is None:
        return True
    if condition.startswith('"'):  # a strong entity tag: aiohttp reads If-Range as a date only
        return condition == etag
    moment = request.if_range  # a weak tag or anything else that is not a date: None
    return moment is not None and int(last_modified.timestamp()) == int(moment.timestamp())


def media_type(name: str) -> str:
    """The Content-Type a file name suggests; a compressed file is that compressed type, never an encoding.

    From the served name: FileResponse would guess from the stored file's path, which has none.
    """
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    return guessed or "application/octet-stream"
