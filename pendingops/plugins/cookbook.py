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
"""

from __future__ import annotations

import asyncio
import json
import re
import tarfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import quote, urlsplit

from sqlalchemy import JSON, BigInteger, Connection, String, Text, select, tuple_
from sqlalchemy.orm import Mapped, mapped_column

from pendingops import operators as ops
from pendingops.context import SyncContext, current_context
from pendingops.db.schema import Content, RepositoryContent
from pendingops.db.versions import declare_content
from pendingops.download.fetcher import Fetcher
from pendingops.operators._stage import batch_stage
from pendingops.pending import PendingArtifact, PendingContent, PendingInputError, UnitError
from pendingops.plugins import Source
from pendingops.remote import RemoteConfig

#: a universe larger than this is refused (the public Supermarket's is a few tens of MiB)
MAX_UNIVERSE_BYTES = 512 * 1024 * 1024
#: per-version metadata documents and a tarball's metadata.json are small
MAX_METADATA_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}")
_VERSION = re.compile(r"\d{1,9}(?:\.\d{1,9}){0,3}")
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
        if not _NAME.fullmatch(name):
            raise UniverseError(f"bad {where}: invalid cookbook name {name!r}")
        if not isinstance(versions, dict):
            raise UniverseError(f"bad {where}: cookbook {name!r}: expected an object of versions")
        for version, entry in versions.items():
            entries.append(_parse_entry(name, version, entry, where))
    entries.sort(key=lambda e: (e.name, tuple(int(part) for part in e.version.split("."))))
    return entries


def _parse_entry(name: str, version: str, entry: Any, where: str) -> UniverseEntry:
    def bad(problem: str) -> UniverseError:
        return UniverseError(f"bad {where}: cookbook {name!r} version {version!r}: {problem}")

    if not _VERSION.fullmatch(version):
        raise bad("invalid version (expected numbers separated by dots)")
    if not isinstance(entry, dict):
        raise bad("expected an object")
    url = entry.get("download_url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https", "file"):
        raise bad(f"download_url must be an http, https or file url, got {url!r}")
    dependencies = entry.get("dependencies") or {}
    if not isinstance(dependencies, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in dependencies.items()
    ):
        raise bad("dependencies must map cookbook names to version constraints")
    return UniverseEntry(name, version, url, dict(sorted(dependencies.items())))


def read_universe(path: Path, where: str = "universe") -> list[UniverseEntry]:
    """Parse and check the universe saved at ``path``."""
    try:
        with open(path, "rb") as handle:
            document = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UniverseError(f"bad {where}: not JSON ({exc})") from None
    return parse_universe(document, where)


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


def complete_key() -> ops.Operator:
    """Set content_id to the tarball's sha256, from the download or from a known digest."""
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


async def fetch_version_metadata(unit: PendingContent) -> None:
    """Fill license, tarball_size and published_at from the remote's per-version document."""
    ctx = current_context()
    url = metadata_url(ctx.remote.url, unit.fields["name"], unit.fields["version"])
    document = await _fetch_json(ctx, url)
    if not isinstance(document, dict):
        raise UnitError(f"{url}: expected a JSON object")
    size = document.get("tarball_file_size")
    unit.fields["license"] = _text(document.get("license"))
    unit.fields["tarball_size"] = size if isinstance(size, int) and not isinstance(size, bool) else None
    unit.fields["published_at"] = _text(document.get("published_at"))


def read_metadata_json(handle: IO[bytes], where: str) -> dict[str, Any] | None:
    """The ``<cookbook>/metadata.json`` of a gzipped cookbook tarball, or None if it has none."""
    try:
        with tarfile.open(fileobj=handle, mode="r|*") as tar:
            for member in tar:
                parts = member.name.strip("/").split("/")
                if len(parts) != 2 or parts[1] != "metadata.json" or not member.isfile():
                    continue
                if member.size > MAX_METADATA_BYTES:
                    raise UnitError(f"{where}: metadata.json is larger than {MAX_METADATA_BYTES} bytes")
                extracted = tar.extractfile(member)
                assert extracted is not None
                document = json.load(extracted)
                if not isinstance(document, dict):
                    raise UnitError(f"{where}: metadata.json is not a JSON object")
                return document
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnitError(f"{where}: not a readable cookbook tarball ({type(exc).__name__}: {exc})") from None
    return None


def _read_stored_metadata(ctx: SyncContext, digest: str, where: str) -> dict[str, Any] | None:
    with ctx.storage.open(ctx.storage.location_for(digest)) as handle:
        return read_metadata_json(handle, where)


async def read_tarball(unit: PendingContent) -> None:
    """Check the tarball's metadata.json names this cookbook version; keep its description and maintainer."""
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
    unit.fields["description"] = _text(document.get("description"))
    unit.fields["maintainer"] = _text(document.get("maintainer"))


def _base_versions_of(conn: Connection, ctx: SyncContext, units: list[PendingContent]) -> list[int]:
    assert ctx.version is not None
    table = CookbookContent.__table__
    pairs = sorted({(u.fields["name"], u.fields["version"]) for u in units})
    found: list[int] = []
    for chunk in ctx.db.chunks(pairs, 2):
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


def keep_base_on_failure() -> ops.Operator:
    """In mirror mode, keep the base version's copy of every cookbook version that failed.

    The core keeps a failed unit the base version had when its key matched; this also covers
    units whose key never completed, and versions whose tarball changed, by name and version.
    """

    def wants(ctx: SyncContext, unit: PendingContent) -> bool:
        return ctx.mirror and unit.failed and not unit.in_base and unit.content_type is CookbookContent

    async def work(ctx: SyncContext, units: list[PendingContent]) -> None:
        kept = await ctx.db.run(_base_versions_of, ctx, units)
        if kept:
            ctx.progress.add("kept", len(kept))

    return batch_stage(wants, work, include_failed=True)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
        local = workdir / "universe.json"
        try:
            await fetcher.fetch_file(url, local, max_size=MAX_UNIVERSE_BYTES)
            entries = await asyncio.to_thread(read_universe, local, url)
            yield Source(_units(entries), len(entries))
        finally:
            local.unlink(missing_ok=True)

    def pipeline(self) -> Sequence[ops.Operator]:
        """The operators of a cookbook sync, in order (see the module docstring)."""
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


def _always(unit: PendingContent) -> bool:
    return True


def _unsaved(unit: PendingContent) -> bool:
    return unit.content_id is None


def _unsaved_and_stored(unit: PendingContent) -> bool:
    return unit.content_id is None and _tarball(unit).is_stored


async def _units(entries: list[UniverseEntry]) -> AsyncIterator[PendingContent]:
    for count, entry in enumerate(entries, start=1):
        yield cookbook_unit(entry)
        if count % 256 == 0:
            await asyncio.sleep(0)  # let downloads and saves run while a long universe is read
