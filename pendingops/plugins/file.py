"""The file plugin: plain files listed in a ``PULP_MANIFEST``.

Each manifest line is ``relative_path,sha256,size`` (UTF-8), split on its last two commas so paths
may contain commas; blank lines and lines starting with ``#`` are skipped. Files are fetched from
the manifest's directory joined with the percent-encoded relative path.

The manifest is downloaded to the sync's work directory, checked in a first streaming pass (every
line, no relative path listed twice, none that is also another's folder: the files must fit in one
tree), then streamed again to emit the units: a bad manifest fails the sync before anything is
downloaded or written, and memory stays flat however long it is.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, closing
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pendingops.db.schema import Content
from pendingops.paths import unsafe_path_reason
from pendingops.pending import PendingArtifact, PendingContent, PendingInputError
from pendingops.plugins.protocol import PublishedFile, Source, VersionRef, index_read
from pendingops.remote import RemoteConfig

if TYPE_CHECKING:
    from pendingops.download.fetcher import Fetcher
    from pendingops.operators import Operator

MANIFEST_NAME = "PULP_MANIFEST"
#: sizes above this are refused as absurd (it is also the largest exact integer of a float)
#: a manifest larger than this is refused (a remote streaming forever must not fill the disk)
MAX_MANIFEST_BYTES = 4 * 1024**3
MAX_FILE_SIZE = 2**53
#: longer lines are refused unread: a 4096-byte path, a digest and a size fit with room to spare
MAX_LINE_BYTES = 8192
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
#: the characters ``quote(path, safe="/")`` leaves as they are
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~/-]*")
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")
_BATCH = 1000


class FileContent(Content):
    """A file at a relative path; unique by (relative_path, sha256)."""

    __tablename__ = "file_content"
    type_name = "file"
    natural_key = ("relative_path", "sha256")
    item_key = ("relative_path",)
    relative_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)


class ManifestError(PendingInputError):
    """The manifest is malformed or unsafe; the message names the line and the problem."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        #: the document's first bytes when it is no manifest at all (another plugin's index?)
        self.document_head: bytes | None = None


class ManifestEntry(NamedTuple):
    line: int
    relative_path: str
    sha256: str
    size: int


def parse_manifest_line(raw: bytes, number: int) -> ManifestEntry | None:
    """Parse line ``number`` of a manifest; None for blank and ``#`` lines, ManifestError if bad."""

    def bad(problem: str) -> ManifestError:
        return ManifestError(f"line {number}: {problem}", number)

    if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
        raise bad(f"longer than {MAX_LINE_BYTES} bytes")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    line = line.rstrip("\r\n")
    if number == 1:
        line = line.removeprefix("\ufeff")
    if not line.strip() or line.startswith("#"):
        return None
    parts = line.rsplit(",", 2)
    if len(parts) != 3:
        raise bad(f"expected 'relative_path,sha256,size', got {_show(line)}")
    path, digest, size_text = parts
    problem = unsafe_path_reason(path)
    if problem:
        raise bad(f"{problem}: {_show(path)}")
    if not _SHA256.fullmatch(digest):
        raise bad(f"sha256 must be 64 hex digits, got {_show(digest)}")
    if not size_text.isascii() or not size_text.isdigit():
        raise bad(f"size must be a non-negative whole number of bytes, got {_show(size_text)}")
    if len(size_text) > 20 or int(size_text) > MAX_FILE_SIZE:
        raise bad(f"size {_show(size_text)} is absurdly large (limit {MAX_FILE_SIZE} bytes)")
    return ManifestEntry(number, path, digest.lower(), int(size_text))


def iter_manifest(path: Path) -> Iterator[ManifestEntry]:
    """Yield the file entries of the manifest at ``path``, reading one bounded line at a time."""
    with open(path, "rb") as handle:
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            entry = parse_manifest_line(raw, number)
            if entry is not None:
                yield entry


#: what a failed manifest check keeps of the document, for naming the plugin it may belong to
_HEAD_BYTES = 4096


class HtmlNotManifest(ManifestError):
    """The URL gave an HTML page (a folder listing, a sign-in page) instead of a manifest."""


def _manifest_hint(url: str) -> str:
    """For a URL naming a folder rather than its manifest: the manifest's URL to try."""
    parts = urlsplit(url)
    if parts.path.rsplit("/", 1)[-1] == MANIFEST_NAME:
        return ""
    folder = parts.path if parts.path.endswith("/") else parts.path + "/"
    manifest = urlunsplit(parts._replace(path=folder + MANIFEST_NAME, query="", fragment=""))
    return f" (for a folder, sync its manifest: {manifest})"


def check_manifest(path: Path, scratch: Path) -> int:
    """Check every line of the manifest at ``path`` and return how many files it lists.

    Raises ManifestError for the first bad line, for an HTML page, for a relative path listed
    twice, and for one that is also the folder of another (naming both lines: such files cannot
    be written out as one tree). Paths are indexed in an SQLite file at ``scratch``, not in memory:
    memory stays flat (SQLite's page cache, a few MiB), the file takes about 1.5 times the
    manifest's size on disk, and a million lines take a few seconds (on a worker thread).
    The checked entries stay in ``scratch`` (``read_checked`` pages through them): the manifest is
    parsed once. The caller removes ``scratch``.
    """
    try:
        return _count_unique(iter_manifest(path), scratch)
    except ManifestError as exc:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
        if any(marker in head.lower() for marker in _HTML_MARKERS):
            page = HtmlNotManifest(f"line {exc.line}: this is an HTML page, not a PULP_MANIFEST", exc.line)
            page.document_head = head
            raise page from None
        if exc.line == 1:  # not a manifest at all: maybe another plugin's index (the sync's error says which)
            exc.document_head = head
        raise


def _count_unique(entries: Iterable[ManifestEntry], scratch: Path) -> int:
    with closing(sqlite3.connect(scratch)) as conn:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(
            "CREATE TABLE entry"
            " (line INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL)"
        )
        # Every folder some path lies in, with the first line (and path) that puts something in it.
        conn.execute("CREATE TABLE folder (path TEXT PRIMARY KEY, line INTEGER NOT NULL, inner TEXT NOT NULL)")
        count = 0
        entries = iter(entries)
        while batch := list(islice(entries, _BATCH)):
            conn.executemany("INSERT INTO entry VALUES (?, ?, ?, ?)", batch)
            folders: dict[str, tuple[str, int, str]] = {}  # each folder once per batch, with its first line
            for line, path, _, _ in batch:
                for folder in _folders(path):
                    folders.setdefault(folder, (folder, line, path))
            conn.executemany("INSERT OR IGNORE INTO folder VALUES (?, ?, ?)", folders.values())
            count += len(batch)
        conn.execute("CREATE INDEX entry_path ON entry (path, line)")
        repeat = conn.execute(
            "SELECT b.line, b.path, b.sha256, a.line, a.sha256 FROM entry b"
            " JOIN entry a ON a.path = b.path AND a.line < b.line ORDER BY b.line, a.line LIMIT 1"
        ).fetchone()
        clash = conn.execute(
            "SELECT e.line, e.path, f.line, f.inner FROM entry e JOIN folder f ON f.path = e.path"
            " ORDER BY max(e.line, f.line) LIMIT 1"
        ).fetchone()
        conn.commit()  # the entries stay for read_checked
    if repeat is not None:
        line, path, digest, first_line, first_digest = repeat
        if digest == first_digest:
            problem = f"relative path {_show(path)} is listed twice (also on line {first_line})"
        else:
            problem = (
                f"relative path {_show(path)} is listed twice with different sha256"
                f" (line {first_line}: {first_digest}, line {line}: {digest})"
            )
        raise ManifestError(f"line {line}: {problem}", line)
    if clash is not None:
        line, path, folder_line, inner = clash
        where = max(line, folder_line)
        problem = f"relative path {_show(path)} (line {line}) is also the folder of {_show(inner)} (line {folder_line})"
        raise ManifestError(f"line {where}: {problem}", where)
    return count


def read_checked(scratch: Path, after: int = 0, limit: int = _BATCH) -> list[ManifestEntry]:
    """Up to ``limit`` entries ``check_manifest`` recorded in ``scratch``, in line order, after line ``after``."""
    with closing(sqlite3.connect(scratch)) as conn:
        query = "SELECT line, path, sha256, size FROM entry WHERE line > ? ORDER BY line LIMIT ?"
        return [ManifestEntry._make(row) for row in conn.execute(query, (after, limit))]


def _folders(path: str) -> Iterator[str]:
    """The folders ``path`` lies in: "a/b/c" lies in "a" and "a/b"."""
    end = path.find("/")
    while end >= 0:
        yield path[:end]
        end = path.find("/", end + 1)


def file_url(manifest_url: str, relative_path: str) -> str:
    """The URL of a file listed in the manifest at ``manifest_url``."""
    # A checked relative path, quoted, has no scheme, leading slash or dot segment: plain appending
    # to the manifest's folder is what urljoin would give, without its cost per line. A path of
    # characters quote() leaves alone (most are) is used as it is, without its cost either.
    if _UNQUOTED.fullmatch(relative_path) is None:
        relative_path = quote(relative_path, safe="/")
    return _folder_of(manifest_url) + relative_path


@functools.lru_cache(maxsize=16)
def _folder_of(manifest_url: str) -> str:
    return urljoin(manifest_url, ".")


def file_unit(manifest_url: str, entry: ManifestEntry) -> PendingContent:
    """The content unit of one manifest entry, with its one artifact."""
    path, digest, size = entry.relative_path, entry.sha256, entry.size
    artifact = PendingArtifact(url=file_url(manifest_url, path), relative_path=path, size=size, sha256=digest)
    return PendingContent(FileContent, {"relative_path": path, "sha256": digest, "size": size}, [artifact])


class FilePlugin:
    """Syncs a directory of files described by a PULP_MANIFEST (http, https or file URL)."""

    name = "file"
    description = "plain files listed in a PULP_MANIFEST (relative_path,sha256,size per line)"
    content_type = FileContent
    #: the package holding this plugin's Alembic revisions (branch "file")
    migrations = "pendingops.plugins.migrations.file"

    @asynccontextmanager
    async def open_source(self, remote: RemoteConfig, fetcher: Fetcher, workdir: Path) -> AsyncIterator[Source]:
        """Fetch the manifest into ``workdir``, check all of it, then stream the units the check recorded.

        A ``file://`` remote is only read: the manifest is copied into ``workdir`` first.
        """
        url = remote.url
        if urlsplit(url).scheme not in ("http", "https", "file"):
            raise ManifestError(f"unsupported manifest URL {url!r}: use http, https or file")
        local, scratch = workdir / MANIFEST_NAME, workdir / "manifest-paths.sqlite"
        try:
            await fetcher.fetch_file(url, local, max_size=MAX_MANIFEST_BYTES)
            await index_read(local)  # an unchanged manifest may end the sync here, unchecked
            try:
                total = await asyncio.to_thread(check_manifest, local, scratch)
            except ManifestError as exc:
                hint = _manifest_hint(url) if isinstance(exc, HtmlNotManifest) else ""
                named = ManifestError(f"bad manifest {url}: {exc}{hint}", exc.line)
                named.document_head = exc.document_head
                raise named from None
            yield Source(_units(url, scratch), total)
        finally:
            local.unlink(missing_ok=True)
            scratch.unlink(missing_ok=True)

    def pipeline(self) -> list[Operator] | None:
        return None

    def published_files(self) -> list[PublishedFile]:
        """Every version publishes its PULP_MANIFEST, so another pendingops (or Pulp) can sync from it."""
        return [PublishedFile(MANIFEST_NAME, "text/plain; charset=utf-8", manifest_lines)]


def manifest_lines(version: VersionRef) -> Iterator[bytes]:
    """The PULP_MANIFEST of a version, a page of lines at a time, in path order.

    A path held by two files (an additive sync of a changed file) lists the one the latest version
    added, once, as ``export`` writes it. Paths are relative to the manifest: it is servable anywhere.
    """
    lines: list[str] = []
    for row in version.units(FileContent, latest_per=("relative_path",)):
        lines.append(f"{row.relative_path},{row.sha256},{row.size}\n")
        if len(lines) >= _BATCH:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


async def _units(url: str, scratch: Path) -> AsyncIterator[PendingContent]:
    """The units of the entries ``check_manifest`` recorded in ``scratch``: the manifest is not parsed again."""
    last = 0
    while page := await asyncio.to_thread(read_checked, scratch, last):
        for count, entry in enumerate(page, start=1):
            yield file_unit(url, entry)
            if count % 256 == 0:
                await asyncio.sleep(0)  # let downloads and saves run while a long manifest is read
        last = page[-1].line


def _show(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error message, cut at ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."
