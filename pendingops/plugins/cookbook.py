"""The cookbook plugin: Chef cookbooks from a Supermarket-style remote.

The remote's ``{base}/universe`` lists every cookbook version, ``{name: {version: {"download_url",
"dependencies", "location_type", "location_path"}}}``, with no digests; ``{base}/api/v1/cookbooks/
{name}/versions/{version}`` adds per-version metadata (license, tarball size, publication date).

A cookbook version is unique by (name, version, content_id), content_id being the sha256 of its
tarball: a tarball that changes is a new unit, and versions that held the old one keep it. That
digest is known only once the tarball is downloaded, or once this remote served the same url
before, so the plugin's pipeline is the stock one reordered, with two steps of its own::

    query_known_digests -> query_existing_artifacts -> download -> complete_key
      -> query_existing_content -> fetch_metadata -> read_tarball -> save -> keep_base_on_failure

Content lookup runs once the key is complete, before the metadata requests: a version already
saved needs no metadata request, and a unit that fails later still knows whether the base version
had it. A version that fails before its key is complete (its tarball could not be fetched) is
matched to the base version by name and version instead, so a mirror sync does not remove it.

Everything the remote sends is read with limits: the universe is streamed, one bounded entry at a
time, checked in full into an SQLite file (which also finds versions listed twice) before the first
unit is emitted from that file, so memory does not grow with it; a tarball must be gzip, is read
as a stream with a cap on members and bytes, and keeps no member in memory; text going into the
database must be valid (no lone surrogate, no NUL).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import sqlite3
import tarfile
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, closing
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from sqlalchemy import JSON, BigInteger, Connection, String, Text, select, tuple_
from sqlalchemy.orm import Mapped, mapped_column

from pendingops.db.schema import Content, ContentArtifact, RepositoryContent
from pendingops.db.versions import declare_content, membership_filter
from pendingops.paths import MAX_SEGMENT_BYTES
from pendingops.pending import PendingArtifact, PendingContent, PendingInputError, UnitError
from pendingops.plugins.protocol import PublishedFile, Source, VersionRef, index_read
from pendingops.remote import RemoteConfig, strip_credentials

if TYPE_CHECKING:
    from pendingops.context import SyncContext
    from pendingops.download.fetcher import Fetcher
    from pendingops.operators import Operator

#: a universe larger than this is refused (the public Supermarket's is a few tens of MiB); it is
#: streamed, so memory does not grow with it
MAX_UNIVERSE_BYTES = 512 * 1024 * 1024
#: one cookbook version's entry in the universe (its url and dependencies) is small
MAX_ENTRY_BYTES = 64 * 1024
#: per-version metadata documents and a tarball's metadata.json are small
MAX_METADATA_BYTES = 4 * 1024 * 1024
#: a tarball with more members, or more bytes once decompressed, is refused
MAX_TARBALL_MEMBERS = 20_000
MAX_TARBALL_BYTES = 512 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}")
#: ASCII digits without leading zeros: "01.00" is not another spelling of "1.0"
_VERSION = re.compile(r"(?:0|[1-9][0-9]{0,8})(?:\.(?:0|[1-9][0-9]{0,8})){0,3}")
_URL = re.compile(r"(?:https?|file)://", re.IGNORECASE)
#: what a tarball's file name adds to the cookbook's name and version: "-" and ".tar.gz"
_TARBALL_NAME_EXTRA = len("-.tar.gz")
_PUBLISHED_AT_LENGTH = 64
_MAX_BIGINT = 2**63 - 1
_READ = 64 * 1024
_BATCH = 1000
_rc = RepositoryContent.__table__


class CookbookContent(Content):
    """One version of a cookbook; unique by (name, version, content_id = the tarball's sha256)."""

    __tablename__ = "cookbook_content"
    type_name = "cookbook"
    natural_key = ("name", "version", "content_id")
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str] = mapped_column(String(64))
    dependencies: Mapped[dict[str, str] | None] = mapped_column(JSON)
    license: Mapped[str | None] = mapped_column(Text)
    tarball_size: Mapped[int | None] = mapped_column(BigInteger)
    published_at: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    maintainer: Mapped[str | None] = mapped_column(Text)


class UniverseError(PendingInputError):
    """The universe document is malformed; the message names the cookbook version and the problem."""


class UniverseEntry(NamedTuple):
    name: str
    version: str
    download_url: str
    dependencies: dict[str, str]


# -- urls -------------------------------------------------------------------------------------------


def base_url(url: str) -> str:
    """The remote's base url, accepting the universe's own url too."""
    url = url.rstrip("/")
    return url.removesuffix("/universe")


def universe_url(url: str) -> str:
    return base_url(url) + "/universe"


def metadata_url(url: str, name: str, version: str) -> str:
    """Where the remote at ``url`` describes one cookbook version."""
    return f"{base_url(url)}/api/v1/cookbooks/{quote(name, safe='')}/versions/{quote(version, safe='')}"


def tarball_path(name: str, version: str) -> str:
    """The relative path of a cookbook version's tarball inside its content unit."""
    return f"{name}-{version}.tar.gz"


# -- the universe -----------------------------------------------------------------------------------


def parse_universe(document: Any, where: str = "universe") -> list[UniverseEntry]:
    """Check a decoded universe and return its entries sorted by name and version.

    Raises UniverseError naming the first bad cookbook version.
    """
    if not isinstance(document, dict):
        raise UniverseError(f"bad {where}: expected a JSON object of cookbooks, got {type(document).__name__}")
    entries = []
    for name, versions in document.items():
        _check_name(name, where)
        if not isinstance(versions, dict):
            raise UniverseError(f"bad {where}: cookbook {name!r}: expected an object of versions")
        for version, entry in versions.items():
            entries.append(_parse_entry(name, version, entry, where))
    entries.sort(key=lambda e: (e.name, tuple(int(part) for part in e.version.split("."))))
    return entries


def _check_name(name: str, where: str) -> None:
    if not _NAME.fullmatch(name):
        raise UniverseError(f"bad {where}: invalid cookbook name {_show(name)}")


def _parse_entry(name: str, version: Any, entry: Any, where: str) -> UniverseEntry:
    def bad(problem: str) -> UniverseError:
        return UniverseError(f"bad {where}: cookbook {name!r} version {_show(version)}: {problem}")

    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise bad("invalid version (expected up to four numbers without leading zeros, separated by dots)")
    if len(name) + len(version) + _TARBALL_NAME_EXTRA > MAX_SEGMENT_BYTES:  # both ASCII: characters are bytes
        raise bad(f"its tarball's file name {tarball_path(name, version)!r} is longer than {MAX_SEGMENT_BYTES} bytes")
    if not isinstance(entry, dict):
        raise bad("expected an object")
    url = entry.get("download_url")
    if not isinstance(url, str) or not _URL.match(url) or _text_problem(url):
        raise bad(f"download_url must be an http, https or file url, got {_show(url)}")
    dependencies = entry.get("dependencies") or {}
    if not isinstance(dependencies, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and not _text_problem(k) and not _text_problem(v)
        for k, v in dependencies.items()
    ):
        raise bad("dependencies must map cookbook names to version constraints (valid text)")
    return UniverseEntry(name, version, strip_credentials(url), dict(sorted(dependencies.items())))


def iter_universe(path: Path, where: str = "universe") -> Iterator[UniverseEntry]:
    """Yield the entries of the universe saved at ``path``, in its order, checking each.

    The document is streamed: only the entry being read (at most ``MAX_ENTRY_BYTES``) is held, so
    neither its size nor its nesting can exhaust memory or the stack. Raises UniverseError (one line)
    for anything malformed. Duplicates are not checked here (``check_universe`` does).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:  # as json.load: a BOM is allowed
            yield from _UniverseReader(handle, where).entries()
    except UnicodeDecodeError as exc:
        raise UniverseError(f"bad {where}: not UTF-8 ({exc.reason} at byte {exc.start} of a chunk)") from None


def index_universe(path: Path, scratch: Path, where: str = "universe") -> int:
    """Check every entry of the universe at ``path``, store them in an SQLite file at ``scratch``
    (for ``indexed_entries``) and return how many there are.

    Raises UniverseError for the first bad entry and for a version listed twice (JSON would keep
    the last silently). Memory stays flat: the entries are on disk, not in a list.
    """
    with closing(sqlite3.connect(scratch)) as conn:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(
            "CREATE TABLE entry (id INTEGER PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,"
            " url TEXT NOT NULL, dependencies TEXT NOT NULL, UNIQUE (name, version))"
        )
        count = 0
        entries = iter_universe(path, where)
        while batch := [(e.name, e.version, e.download_url, json.dumps(e[3])) for e in islice(entries, _BATCH)]:
            try:
                conn.executemany("INSERT INTO entry (name, version, url, dependencies) VALUES (?, ?, ?, ?)", batch)
            except sqlite3.IntegrityError:
                name, version = _first_repeat(conn, batch)
                raise UniverseError(f"bad {where}: cookbook {name!r} version {version!r} is listed twice") from None
            count += len(batch)
        conn.commit()
    return count


def indexed_entries(scratch: Path) -> Iterator[UniverseEntry]:
    """The entries ``index_universe`` stored, in the universe's order, a batch at a time."""
    with closing(sqlite3.connect(scratch)) as conn:
        last = 0
        query = "SELECT id, name, version, url, dependencies FROM entry WHERE id > ? ORDER BY id LIMIT ?"
        while rows := conn.execute(query, (last, _BATCH)).fetchall():
            for _, name, version, url, dependencies in rows:
                yield UniverseEntry(name, version, url, json.loads(dependencies))
            last = rows[-1][0]


def _first_repeat(conn: sqlite3.Connection, batch: list[tuple[str, str, str, str]]) -> tuple[str, str]:
    """The first (name, version) of ``batch`` (whose insert failed as a whole) already stored or earlier in it."""
    seen: set[tuple[str, str]] = set()
    for name, version, _, _ in batch:
        query = "SELECT 1 FROM entry WHERE name = ? AND version = ?"
        if (name, version) in seen or conn.execute(query, (name, version)).fetchone():
            return name, version
        seen.add((name, version))
    raise AssertionError("an insert failed without a repeated version")


class _UniverseReader:
    """A reader of ``{name: {version: entry}}`` JSON that decodes one entry at a time."""

    def __init__(self, handle: IO[str], where: str) -> None:
        self.handle = handle
        self.where = where
        self.text = ""
        self.at = 0
        self.eof = False

    def entries(self) -> Iterator[UniverseEntry]:
        self.expect("{", "expected a JSON object of cookbooks")
        if self.next_is("}"):
            return self.end()
        while True:
            name = self.value("a cookbook name")
            if not isinstance(name, str):
                raise self.bad("expected a cookbook name")
            _check_name(name, self.where)
            self.expect(":", "expected ':' after a cookbook name")
            self.expect("{", f"cookbook {name!r}: expected an object of versions")
            if not self.next_is("}"):
                while True:
                    version = self.value(f"cookbook {name!r}: a version")
                    self.expect(":", f"cookbook {name!r}: expected ':' after a version")
                    yield _parse_entry(name, version, self.value(f"cookbook {name!r} version {version!r}"), self.where)
                    if self.next_is("}"):
                        break
                    self.expect(",", f"cookbook {name!r}: expected ',' or '}}' after a version")
            if self.next_is("}"):
                return self.end()
            self.expect(",", "expected ',' or '}' after a cookbook")

    def bad(self, problem: str) -> UniverseError:
        return UniverseError(f"bad {self.where}: not a JSON universe ({problem})")

    def fill(self) -> bool:
        """Read more text; False at the end of the file."""
        if self.eof:
            return False
        chunk = self.handle.read(_READ)
        if not chunk:
            self.eof = True
            return False
        self.text = self.text[self.at :] + chunk
        self.at = 0
        return True

    def skip_space(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
                self.at += 1
            if self.at < len(self.text) or not self.fill():
                return self.text[self.at : self.at + 1]

    def next_is(self, char: str) -> bool:
        if self.skip_space() == char:
            self.at += 1
            return True
        return False

    def expect(self, char: str, problem: str) -> None:
        if not self.next_is(char):
            raise self.bad(problem)

    def value(self, what: str) -> Any:
        """Decode the JSON value at the current place, reading on until it is whole (within limits)."""
        self.skip_space()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.at)
            except json.JSONDecodeError as exc:
                # Cut by the end of the text read so far, or malformed: read on while the window allows.
                if len(self.text) - self.at <= MAX_ENTRY_BYTES and self.fill():
                    continue
                if not self.eof and (exc.msg.startswith("Unterminated") or exc.pos >= len(self.text) - 1):
                    raise self.bad(f"{what}: longer than {MAX_ENTRY_BYTES} bytes") from None
                raise self.bad(f"{what}: {exc.msg}") from None
            except RecursionError:
                raise self.bad(f"{what}: nested too deeply") from None
            if end == len(self.text) and isinstance(value, int | float) and self.fill():
                continue  # a number may go on in the next chunk
            self.at = end
            return value

    def end(self) -> None:
        if self.skip_space():
            raise self.bad("extra data after the universe")


_DECODER = json.JSONDecoder()


def cookbook_unit(entry: UniverseEntry) -> PendingContent:
    """The unit of one universe entry: its key still lacks content_id, its tarball's digest."""
    artifact = PendingArtifact(url=entry.download_url, relative_path=tarball_path(entry.name, entry.version))
    fields = {
        "name": entry.name,
        "version": entry.version,
        "content_id": None,
        "dependencies": entry.dependencies,
    }
    return PendingContent(CookbookContent, fields, [artifact])


# -- the plugin's own steps -------------------------------------------------------------------------


def _tarball(unit: PendingContent) -> PendingArtifact:
    return unit.artifacts[0]


def _key_incomplete(unit: PendingContent) -> bool:
    return unit.fields.get("content_id") is None


async def _complete_key(unit: PendingContent) -> None:
    tarball = _tarball(unit)
    digest = tarball.stored_sha256 or tarball.sha256
    if digest is None:
        raise UnitError(
            f"{tarball.relative_path}: digest unknown: this remote never served it and it was not downloaded"
            " (the on_demand policy only works for tarballs already known)"
        )
    tarball.sha256 = digest
    if tarball.size is None:
        tarball.size = tarball.stored_size
    unit.fields["content_id"] = digest


def complete_key() -> Operator:
    """Set content_id to the tarball's sha256, from the download or from a known digest."""
    from pendingops import operators as ops

    return ops.enrich(_complete_key, n=100, when=_key_incomplete, name="complete_key")


async def _fetch_json(ctx: SyncContext, url: str) -> Any:
    """GET a small JSON document with the remote's settings (auth, TLS, timeouts, retries)."""
    path = ctx.storage.new_temp_path()
    try:
        await ctx.fetcher.fetch_file(url, path, max_size=MAX_METADATA_BYTES)
        data = await asyncio.to_thread(path.read_bytes)
    finally:
        path.unlink(missing_ok=True)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnitError(f"{url}: not JSON ({exc})") from None
    except RecursionError:
        raise UnitError(f"{url}: not JSON (nested too deeply)") from None


async def fetch_version_metadata(unit: PendingContent) -> None:
    """Fill license, tarball_size and published_at from the remote's per-version document."""
    from pendingops.context import current_context

    ctx = current_context()
    url = metadata_url(ctx.remote.url, unit.fields["name"], unit.fields["version"])
    document = await _fetch_json(ctx, url)
    if not isinstance(document, dict):
        raise UnitError(f"{url}: expected a JSON object")
    size = document.get("tarball_file_size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_BIGINT:
        size = None
    unit.fields["license"] = _text(document, "license", url)
    unit.fields["tarball_size"] = size
    unit.fields["published_at"] = _text(document, "published_at", url, _PUBLISHED_AT_LENGTH)


def read_metadata_json(handle: IO[bytes], where: str) -> dict[str, Any] | None:
    """The ``<cookbook>/metadata.json`` of a gzipped cookbook tarball, or None if it has none.

    Read as a stream, gzip only, at most ``MAX_TARBALL_MEMBERS`` members and ``MAX_TARBALL_BYTES``
    decompressed bytes, forgetting each member once passed: a bomb costs bounded time and memory.
    """
    if handle.read(2) != b"\x1f\x8b":
        raise UnitError(f"{where}: not a gzip-compressed tarball")
    handle.seek(0)
    try:
        with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped, tarfile.open(
            fileobj=_Capped(unzipped, where), mode="r|"
        ) as tar:
            for count in range(1, MAX_TARBALL_MEMBERS + 2):
                member = tar.next()
                tar.members.clear()  # a stream keeps every header it read otherwise
                if member is None:
                    return None
                if count > MAX_TARBALL_MEMBERS:
                    raise UnitError(f"{where}: more than {MAX_TARBALL_MEMBERS} members")
                parts = member.name.strip("/").split("/")
                if len(parts) == 2 and parts[1] == "metadata.json" and member.isfile():
                    return _metadata_document(tar, member, where)
    except (tarfile.TarError, OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnitError(f"{where}: not a readable cookbook tarball ({type(exc).__name__}: {exc})") from None
    except RecursionError:
        raise UnitError(f"{where}: metadata.json is nested too deeply") from None
    return None


def _metadata_document(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> dict[str, Any]:
    if member.size > MAX_METADATA_BYTES:
        raise UnitError(f"{where}: metadata.json is larger than {MAX_METADATA_BYTES} bytes")
    extracted = tar.extractfile(member)
    assert extracted is not None
    document = json.load(extracted)
    if not isinstance(document, dict):
        raise UnitError(f"{where}: metadata.json is not a JSON object")
    return document


class _Capped:
    """A reader that refuses to go past ``MAX_TARBALL_BYTES`` (a decompression bomb)."""

    def __init__(self, raw: IO[bytes], where: str) -> None:
        self.raw = raw
        self.where = where
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.read_bytes += len(data)
        if self.read_bytes > MAX_TARBALL_BYTES:
            raise UnitError(f"{self.where}: more than {MAX_TARBALL_BYTES} bytes once decompressed")
        return data


def _read_stored_metadata(ctx: SyncContext, digest: str, where: str) -> dict[str, Any] | None:
    with ctx.storage.open(ctx.storage.location_for(digest)) as handle:
        return read_metadata_json(handle, where)


async def read_tarball(unit: PendingContent) -> None:
    """Check the tarball's metadata.json names this cookbook version; keep its description and maintainer."""
    from pendingops.context import current_context

    ctx = current_context()
    tarball = _tarball(unit)
    assert tarball.sha256 is not None
    document = await asyncio.to_thread(_read_stored_metadata, ctx, tarball.sha256, tarball.relative_path)
    if document is None:
        return  # old cookbooks ship only metadata.rb
    for key in ("name", "version"):
        found = document.get(key)
        if found is not None and found != unit.fields[key]:
            where = tarball.relative_path
            raise UnitError(f"{where}: metadata.json says {key} {found!r}, the universe {unit.fields[key]!r}")
    unit.fields["description"] = _text(document, "description", tarball.relative_path)
    unit.fields["maintainer"] = _text(document, "maintainer", tarball.relative_path)


def _base_versions_of(conn: Connection, ctx: SyncContext, units: list[PendingContent]) -> list[int]:
    assert ctx.version is not None
    table = CookbookContent.__table__
    pairs = sorted({(u.fields["name"], u.fields["version"]) for u in units})
    found: list[int] = []
    for chunk in ctx.db.chunks(pairs, 2, other_params=2):  # repository_id, base_number
        query = (
            select(table.c.id)
            .join(_rc, _rc.c.content_id == table.c.id)
            .where(
                _rc.c.repository_id == ctx.repository_id,
                _rc.c.version_removed.is_(None),
                _rc.c.version_added <= ctx.version.base_number,
                tuple_(table.c.name, table.c.version).in_(list(chunk)),
            )
        )
        found.extend(conn.execute(query).scalars())
    if found:
        declare_content(conn, ctx.db, ctx.version, found)
    return found


def keep_base_on_failure() -> Operator:
    """In mirror mode, keep the base version's copy of every cookbook version that failed.

    The core keeps a failed unit the base version had when its key matched; this also covers
    units whose key never completed, and versions whose tarball changed, by name and version.
    """
    from pendingops.operators._stage import batch_stage


    def wants(ctx: SyncContext, unit: PendingContent) -> bool:
        return ctx.mirror and unit.failed and not unit.in_base and unit.content_type is CookbookContent

    async def work(ctx: SyncContext, units: list[PendingContent]) -> None:
        kept = await ctx.transact(_base_versions_of, ctx, units, what="keeping the base version of failed cookbooks")
        if kept:
            ctx.progress.add("kept", len(kept))

    return batch_stage(wants, work, include_failed=True)


def _text(document: dict[str, Any], field: str, where: str, max_length: int | None = None) -> str | None:
    """``document[field]`` if it is a string the database can store (None if absent or not a string).

    Raises UnitError otherwise: bad text from a remote fails its unit, never the batch it is saved in.
    """
    value = document.get(field)
    if not isinstance(value, str):
        return None
    problem = _text_problem(value)
    if problem is None and max_length is not None and len(value) > max_length:
        problem = f"longer than {max_length} characters"
    if problem:
        raise UnitError(f"{where}: {field} is not valid text ({problem})")
    return value


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "it holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate {value[exc.start]!r} at {exc.start}"
    return None


def _show(value: Any, limit: int = 80) -> str:
    """``value`` quoted for an error message, cut at ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- the plugin -------------------------------------------------------------------------------------


class CookbookPlugin:
    """Syncs Chef cookbooks from a Supermarket-style remote (its base url, or its ``/universe``).

    ``metadata_concurrency`` bounds the per-version metadata requests in flight.
    ``refresh_metadata`` asks for every version's metadata, not only new ones', so versions the
    remote no longer describes are reported (and kept, in mirror mode, if the base version had them).
    ``trust_known_digests=False`` downloads every tarball to learn its digest, to notice a tarball
    replaced at the same url (the universe publishes no digests).
    """

    name = "cookbook"
    description = "Chef cookbooks from a Supermarket-style remote (/universe)"
    content_type = CookbookContent
    #: the package holding this plugin's Alembic revisions (branch "cookbook")
    migrations = "pendingops.plugins.migrations.cookbook"
    #: the universe declares no tarball sizes: larger ones are cut off (the largest published are a few MiB)
    max_file_size = 256 * 1024**2

    def __init__(
        self, *, metadata_concurrency: int = 10, refresh_metadata: bool = False, trust_known_digests: bool = True
    ) -> None:
        if metadata_concurrency < 1:
            raise ValueError("metadata_concurrency must be at least 1")
        self.metadata_concurrency = metadata_concurrency
        self.refresh_metadata = refresh_metadata
        self.trust_known_digests = trust_known_digests

    @asynccontextmanager
    async def open_source(self, remote: RemoteConfig, fetcher: Fetcher, workdir: Path) -> AsyncIterator[Source]:
        """Fetch the universe into ``workdir``, check all of it, then stream its units."""
        url = universe_url(remote.url)
        local, scratch = workdir / "universe.json", workdir / "universe-versions.sqlite"
        try:
            await fetcher.fetch_file(url, local, max_size=MAX_UNIVERSE_BYTES)
            if self.trust_known_digests and not self.refresh_metadata:  # else every sync looks beyond the universe
                await index_read(local)
            total = await asyncio.to_thread(index_universe, local, scratch, url)
            local.unlink()
            yield Source(_units(scratch), total)
        finally:
            local.unlink(missing_ok=True)
            scratch.unlink(missing_ok=True)

    def pipeline(self) -> Sequence[Operator]:
        """The operators of a cookbook sync, in order (see the module docstring)."""
        from pendingops import operators as ops

        wants_metadata = _always if self.refresh_metadata else _unsaved
        steps = [ops.query_known_digests()] if self.trust_known_digests else []
        return [
            *steps,
            ops.query_existing_artifacts(),
            ops.download(),
            complete_key(),
            ops.query_existing_content(),
            ops.enrich(fetch_version_metadata, n=self.metadata_concurrency, when=wants_metadata, name="metadata"),
            ops.enrich(read_tarball, n=4, when=_unsaved_and_stored, name="read_tarball"),
            ops.save(),
            keep_base_on_failure(),
        ]


    def published_files(self) -> list[PublishedFile]:
        """Every version publishes a ``universe`` whose download URLs point at the version's own tarballs."""
        return [PublishedFile("universe", "application/json", universe_document)]


def universe_document(version: VersionRef) -> Iterator[bytes]:
    """The universe of a version, streamed a page of cookbook versions at a time.

    Download URLs are ``version.base_url`` plus each tarball's relative path. A name and version
    held twice (an additive sync of a replaced tarball) lists the one the latest version added.
    """
    books, rc, ca = CookbookContent.__table__, _rc, ContentArtifact.__table__
    query = (
        select(books.c.name, books.c.version, books.c.dependencies)
        .join(rc, rc.c.content_id == books.c.id)
        .where(membership_filter(version.repository_id, version.number))
        .order_by(books.c.name, books.c.version, rc.c.version_added.desc(), books.c.id.desc())
        .limit(_BATCH)
    )
    if version.stored_only:
        stored = select(ca.c.id).where(ca.c.content_id == books.c.id, ca.c.artifact_id.is_not(None))
        query = query.where(stored.exists())
    last: tuple[str, str] | None = None
    current_name: str | None = None
    yield b"{"
    while True:
        page = query if last is None else query.where(tuple_(books.c.name, books.c.version) > tuple_(*last))
        with version.db.engine.connect() as conn:
            rows = conn.execution_options(isolation_level="AUTOCOMMIT").execute(page).all()
        if not rows:
            break
        parts = []
        for name, number, dependencies in rows:
            if (name, number) == last:
                continue
            if name != current_name:
                parts.append(("}," if current_name is not None else "") + json.dumps(name) + ":{")
            else:
                parts.append(",")
            entry = {
                "location_type": "uri",
                "location_path": version.base_url,
                "download_url": version.base_url + quote(tarball_path(name, number)),
                "dependencies": dependencies or {},
            }
            parts.append(json.dumps(number) + ":" + json.dumps(entry))
            current_name, last = name, (name, number)
        yield "".join(parts).encode()
    yield b"}}" if current_name is not None else b"}"


def _always(unit: PendingContent) -> bool:
    return True


def _unsaved(unit: PendingContent) -> bool:
    return unit.content_id is None


def _unsaved_and_stored(unit: PendingContent) -> bool:
    return unit.content_id is None and _tarball(unit).is_stored


async def _units(scratch: Path) -> AsyncIterator[PendingContent]:
    for count, entry in enumerate(indexed_entries(scratch), start=1):
        yield cookbook_unit(entry)
        if count % 256 == 0:
            await asyncio.sleep(0)  # let downloads and saves run while a long universe is read
