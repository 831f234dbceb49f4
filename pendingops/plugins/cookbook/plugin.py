"""The cookbook plugin: its source, its own pipeline steps, and the universe it publishes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from sqlalchemy import Connection, select, tuple_

from pendingops.db.schema import RepositoryContent
from pendingops.db.versions import declare_content
from pendingops.pending import PendingArtifact, PendingContent, UnitError
from pendingops.plugins.cookbook.content import CookbookContent, metadata_url, tarball_path, universe_url
from pendingops.plugins.cookbook.pages import metadata_pages
from pendingops.plugins.cookbook.tarball import MAX_METADATA_BYTES, _text, read_metadata_json
from pendingops.plugins.cookbook.universe import MAX_UNIVERSE_BYTES, UniverseEntry, index_universe, indexed_entries
from pendingops.plugins.protocol import PublishedFile, PublishedPage, Source, VersionRef, index_read
from pendingops.remote import RemoteConfig

if TYPE_CHECKING:
    from pendingops.context import SyncContext
    from pendingops.download.fetcher import Fetcher
    from pendingops.operators import Operator


_PUBLISHED_AT_LENGTH = 64
_BATCH = 1000
_MAX_BIGINT = 2**63 - 1
_rc = RepositoryContent.__table__


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

    @staticmethod
    def looks_like(head: bytes, url: str) -> bool:
        """Whether a document (its first bytes, its URL) looks like a universe: named to a user who forgot
        ``--plugin cookbook``."""
        return b'"download_url"' in head or urlsplit(url).path.rstrip("/").endswith("/universe")

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

    def published_pages(self) -> list[PublishedPage]:
        """Every version publishes each cookbook version's metadata document below ``api/``."""
        return [metadata_pages()]


def universe_document(version: VersionRef) -> Iterator[bytes]:
    """The universe of a version, streamed a page of cookbook versions at a time.

    Download URLs are ``version.base_url`` plus each tarball's relative path (relative to the
    universe itself in an export). A name and version held twice (an additive sync of a replaced
    tarball) lists the one the latest version added.
    """
    current_name: str | None = None
    parts: list[str] = ["{"]
    for row in version.units(CookbookContent, latest_per=("name", "version")):
        if row.name != current_name:
            parts.append(("}," if current_name is not None else "") + json.dumps(row.name) + ":{")
        else:
            parts.append(",")
        entry = {
            "location_type": "uri",
            "location_path": version.base_url,
            "download_url": version.base_url + quote(tarball_path(row.name, row.version)),
            "dependencies": row.dependencies or {},
        }
        parts.append(json.dumps(row.version) + ":" + json.dumps(entry))
        current_name = row.name
        if len(parts) >= _BATCH:
            yield "".join(parts).encode()
            parts = []
    parts.append("}}" if current_name is not None else "}")
    yield "".join(parts).encode()


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
