"""The deb plugin: what it reads, the operators it runs, what it publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pendingops.plugins import PublishedPage, Source
from pendingops.plugins.deb.content import DebPackage
from pendingops.plugins.deb.options import OPTIONS, DebOptionError, DebOptions
from pendingops.plugins.deb.source import Limits, open_archive
from pendingops.remote import RemoteConfig

if TYPE_CHECKING:
    from pendingops.download.fetcher import Fetcher
    from pendingops.operators import Operator


class DebPlugin:
    """Syncs binary packages of a Debian (APT) archive's suites; serves them back to apt.

    ``limits`` bounds the size of each Packages index, as fetched and once decompressed.
    """

    name = "deb"
    description = "Debian (APT) archives: suites' indexes and .deb files (apt-get installs from what is served)"
    content_type = DebPackage
    #: the package holding this plugin's Alembic revisions (branch "deb")
    migrations = "pendingops.plugins.migrations.deb"
    options = OPTIONS

    def __init__(self, *, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def check_options(self, options: Mapping[str, str]) -> None:
        """Raise DebOptionError for an option value the sync could not use."""
        DebOptions.parse(options)

    @asynccontextmanager
    async def open_source(self, remote: RemoteConfig, fetcher: Fetcher, workdir: Path) -> AsyncIterator[Source]:
        """Read the archive root at ``remote.url`` (the folder holding ``dists/`` and ``pool/``)."""
        from pendingops.plugins.deb.signing import check_key

        if urlsplit(remote.url).scheme not in ("http", "https", "file"):
            raise DebOptionError(f"unsupported archive URL {remote.url!r}: use http, https or file")
        key = DebOptions.parse(remote.options).signing_key
        if key is not None:
            await asyncio.to_thread(check_key, key)  # our own indexes will need it: say so now
        yield await open_archive(remote, fetcher, workdir, self.limits)

    @staticmethod
    def looks_like(head: bytes, url: str) -> bool:
        """Whether a document (its first bytes, its URL) looks like a Debian archive (a listing holding
        ``dists/``, a Release file): named to a user who forgot ``--plugin deb``."""
        text = head.lower()
        release = any(text.startswith(field) or b"\n" + field in text for field in (b"suite:", b"codename:"))
        return b'href="dists/' in text or release or "/dists/" in urlsplit(url).path

    def pipeline(self) -> list[Operator]:
        """The stock operators, then the suites' package lists recorded beside their saved units.

        ``unchanged`` comes first: a resync settles in SQL the packages the repository holds as the
        indexes list them. What a suite lists is kept on its suite unit, by package key digest, from
        the sync's catalog, which lists every package read, settled or not; so a package settled there
        needs no step of its own. A suite unit (its Release files and the indexes read) is compared
        like a package, file by file: one the repository holds had its members recorded before any
        version held it, and a new one takes the whole path to ``members``.
        """
        from pendingops import operators as ops
        from pendingops.plugins.deb.members import record_members, wants_members

        return [
            ops.unchanged(),
            ops.dedup(),
            ops.download(),
            ops.save(),
            ops.enrich(record_members, n=1, when=wants_members, name="members"),
        ]

    def published_pages(self) -> list[PublishedPage]:
        """``dists/``: our own indexes, where the version is not the upstream's set (else its stored files)."""
        from pendingops.plugins.deb.publish import own_indexes, render, static

        return [PublishedPage("dists", render, static, files=True, applies=own_indexes)]
