"""The file plugin: plain files listed in a ``PULP_MANIFEST``.

Each manifest line is ``relative_path,sha256,size`` (UTF-8), split on its last two commas so paths
may contain commas; blank lines and ``#`` lines are skipped. Files are fetched from the manifest's
directory joined with the percent-encoded relative path.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pendingops.db.schema import Content
from pendingops.download.fetcher import Fetcher
from pendingops.operators import Operator
from pendingops.pending import PendingArtifact, PendingContent, PendingInputError
from pendingops.plugins import Source
from pendingops.remote import RemoteConfig

MANIFEST_NAME = "PULP_MANIFEST"
#: sizes above this are refused as absurd (it is also the largest exact integer of a float)
MAX_FILE_SIZE = 2**53
MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FileContent(Content):
    """A file at a relative path; unique by (relative_path, sha256)."""

    __tablename__ = "file_content"
    type_name = "file"
    natural_key = ("relative_path", "sha256")
    relative_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)


class ManifestError(PendingInputError):
    """A manifest line is malformed or unsafe; the message names the line and the problem."""


def check_relative_path(path: str) -> str | None:
    """Why ``path`` is unsafe as a relative path inside a repository, or None when it is fine."""
    if not path:
        return "empty relative path"
    if _CONTROL.search(path):
        return "relative path contains a NUL or control character"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
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


def parse_manifest_line(raw: bytes, number: int) -> tuple[str, str, int] | None:
    """Parse one manifest line into (relative_path, sha256, size); None for blank and # lines."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"line {number}: not valid UTF-8") from None
    line = line.rstrip("\r\n")
    if not line.strip() or line.startswith("#"):
        return None
    parts = line.rsplit(",", 2)
    if len(parts) != 3:
        raise ManifestError(f"line {number}: expected 'relative_path,sha256,size', got {line[:80]!r}")
    path, digest, size_text = parts
    problem = check_relative_path(path)
    if problem:
        raise ManifestError(f"line {number}: {problem}: {path[:80]!r}")
    if not _SHA256.fullmatch(digest):
        raise ManifestError(f"line {number}: sha256 must be 64 hex digits, got {digest[:80]!r}")
    if not size_text.isascii() or not size_text.isdigit():
        raise ManifestError(f"line {number}: size must be a non-negative whole number, got {size_text[:40]!r}")
    size = int(size_text)
    if size > MAX_FILE_SIZE:
        raise ManifestError(f"line {number}: size {size} is absurdly large")
    return path, digest.lower(), size


def iter_manifest(path: Path) -> Iterator[tuple[int, tuple[str, str, int]]]:
    """Yield (line number, entry) for each file line of a manifest, reading it line by line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            entry = parse_manifest_line(raw, number)
            if entry is not None:
                yield number, entry


def file_url(manifest_url: str, relative_path: str) -> str:
    """The URL of a file listed in the manifest at ``manifest_url``."""
    return urljoin(manifest_url, quote(relative_path, safe="/"))


def file_unit(manifest_url: str, relative_path: str, sha256: str, size: int) -> PendingContent:
    artifact = PendingArtifact(
        url=file_url(manifest_url, relative_path), relative_path=relative_path, size=size, sha256=sha256
    )
    return PendingContent(FileContent, {"relative_path": relative_path, "sha256": sha256, "size": size}, [artifact])


class FilePlugin:
    """Syncs a directory of files described by a PULP_MANIFEST (http, https or file URL)."""

    name = "file"
    description = "plain files listed in a PULP_MANIFEST (relative_path,sha256,size per line)"
    content_type = FileContent

    @asynccontextmanager
    async def open_source(self, remote: RemoteConfig, fetcher: Fetcher, workdir: Path) -> AsyncIterator[Source]:
        """Fetch the manifest to ``workdir``, check every line, then stream the units.

        The whole manifest is validated before the first unit is emitted, so a bad line fails the
        sync before anything is written.
        """
        url = remote.url
        if urlsplit(url).scheme not in ("http", "https", "file"):
            raise ManifestError(f"unsupported manifest URL {url!r}: use http, https or file")
        local = workdir / f"manifest-{id(self)}.txt"
        try:
            await fetcher.fetch_file(url, local)
            total = _validate(local)

            async def units() -> AsyncIterator[PendingContent]:
                for _number, (path, digest, size) in iter_manifest(local):
                    yield file_unit(url, path, digest, size)

            yield Source(units(), total)
        finally:
            local.unlink(missing_ok=True)

    def pipeline(self) -> list[Operator] | None:
        return None


def _validate(manifest: Path) -> int:
    count = 0
    with open(manifest, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise ManifestError("the remote returned an HTML page, not a PULP_MANIFEST")
    for _ in iter_manifest(manifest):
        count += 1
    return count
