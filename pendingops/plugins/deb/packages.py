"""A Packages index, read as a stream: decompressed with a cap, one stanza at a time, each checked.

Every value comes from the remote, so none is trusted: the decompressed size is capped (an xz or
gzip bomb stops at the cap, having used one buffer of memory), stanzas are bounded, and a package's
``Filename`` must be a relative path inside ``pool/``, as the archive lays files out.
"""

from __future__ import annotations

import lzma
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from pendingops.paths import unsafe_path_reason
from pendingops.pending import PendingInputError
from pendingops.plugins.deb.options import PACKAGE_NAME
from pendingops.plugins.deb.stanza import Stanza

#: an index whose Release gives a larger size is refused unread
MAX_INDEX_BYTES = 512 * 1024**2
#: an index larger than this once decompressed is refused as soon as it is (Debian's largest are ~100 MiB)
MAX_UNPACKED_INDEX_BYTES = 2 * 1024**3
_READ = 256 * 1024
#: decompressed bytes produced per step: what a bomb costs in memory
_STEP = 256 * 1024
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~:-]{0,199}")
_ARCHITECTURE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_MAX_SIZE = 2**53
#: the folder every package file of an archive lies in
POOL = "pool/"


class PackagesIndexError(PendingInputError):
    """A Packages index that cannot be used; the message names it and the problem."""


def read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(_READ):
        yield chunk


def unpacked(chunks: Iterable[bytes], compression: str, limit: int, where: str) -> Iterator[bytes]:
    """The decompressed bytes of ``chunks`` (``xz``, ``gzip`` or ``none``), at most ``limit`` of them.

    Raises PackagesIndexError when the data is not of that kind, is cut short, or grows past ``limit``.
    """
    steps = {"xz": _xz, "gzip": _gzip, "none": _plain}[compression]
    total = 0
    try:
        for piece in steps(chunks):
            total += len(piece)
            if total > limit:
                raise PackagesIndexError(f"{where}: larger than {limit} bytes once decompressed")
            yield piece
    except (lzma.LZMAError, zlib.error, EOFError) as exc:
        raise PackagesIndexError(f"{where}: not valid {compression} data ({exc})") from None


def _plain(chunks: Iterable[bytes]) -> Iterator[bytes]:
    yield from chunks


def _xz(chunks: Iterable[bytes]) -> Iterator[bytes]:
    decompressor = lzma.LZMADecompressor()
    for chunk in chunks:
        data = chunk
        while data or not decompressor.needs_input:
            if decompressor.eof:
                if not data.strip(b"\0"):
                    break  # stream padding after the last stream
                decompressor = lzma.LZMADecompressor()  # xz allows concatenated streams
            out = decompressor.decompress(data, _STEP)
            if out:
                yield out
            data = decompressor.unused_data if decompressor.eof else b""
    if not decompressor.eof:
        raise EOFError("the data ends before its compressed stream does")


def _gzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    decompressor = zlib.decompressobj(31)
    for chunk in chunks:
        data = chunk
        while True:
            if decompressor.eof:
                if not data.strip(b"\0"):
                    break  # padding after the last member
                decompressor = zlib.decompressobj(31)  # gzip allows concatenated members
            out = decompressor.decompress(data, _STEP)
            if out:
                yield out
            data = decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
            if not data and not decompressor.eof and len(out) < _STEP:
                break  # all input used and no output held back: the next chunk
    if not decompressor.eof:
        raise EOFError("the data ends before its compressed stream does")


def package_fields(stanza: Stanza, where: str) -> dict[str, Any]:
    """A binary package's unit fields from its stanza; PackagesIndexError naming the stanza if it is unusable."""
    fields = stanza.fields
    name = fields.get("Package", "")

    def bad(problem: str) -> PackagesIndexError:
        return PackagesIndexError(f"{where}: stanza {stanza.number} ({name[:80]!r}): {problem}")

    for required in ("Package", "Version", "Architecture", "Filename", "Size", "SHA256"):
        if not fields.get(required):
            raise bad(f"no {required} field")
    if not PACKAGE_NAME.fullmatch(name):
        raise bad("Package is not a package name")
    if not _VERSION.fullmatch(fields["Version"]):
        raise bad(f"Version is not a version: {fields['Version'][:80]!r}")
    if not _ARCHITECTURE.fullmatch(fields["Architecture"]):
        raise bad(f"Architecture is not an architecture name: {fields['Architecture'][:80]!r}")
    filename = fields["Filename"]
    problem = unsafe_path_reason(filename)
    if problem is None and not filename.startswith(POOL):
        problem = f"Filename must lie under {POOL}"
    if problem:
        raise bad(f"{problem}: {filename[:120]!r}")
    size, digest = fields["Size"], fields["SHA256"]
    if not (size.isascii() and size.isdigit() and len(size) < 17 and int(size) <= _MAX_SIZE):
        raise bad(f"Size is not a number of bytes: {size[:80]!r}")
    if not _SHA256.fullmatch(digest):
        raise bad(f"SHA256 is not 64 hex digits: {digest[:80]!r}")
    installed = fields.get("Installed-Size", "")
    description = fields.get("Description")
    return {
        "package": name,
        "version": fields["Version"],
        "architecture": fields["Architecture"],
        "sha256": digest.lower(),
        "filename": filename,
        "size": int(size),
        "section": fields.get("Section"),
        "priority": fields.get("Priority"),
        "depends": fields.get("Depends"),
        "description": description.split("\n", 1)[0] if description is not None else None,
        "installed_size": int(installed)
        if installed.isascii() and installed.isdigit() and len(installed) < 17
        else None,
        "stanza": stanza.text,
    }
