"""What a plugin is and what it may offer: the protocol, its source of units and its published files.

A plugin is an object with a ``name``, its ``content_type`` (a ``Content`` subclass) and
``open_source(remote, fetcher, workdir)``, an async context manager yielding a ``Source``: the
units the remote declares (an async iterable) and, when known, how many there are. It may also
offer ``pipeline()`` to replace the default operators, and ``max_file_size``, the largest file its
remotes may send when the remote sets none. A plugin that ships Alembic revisions for its tables
names their package (or folder) in a ``migrations`` attribute; see ``pendingops.db.migrations``.
A plugin taking options (``sync --option KEY=VALUE``, handed over in ``RemoteConfig.options``)
lists them in an ``options`` mapping (name to help) and may check values in ``check_options()``.

A plugin whose remote is described by one index document (the file plugin's ``PULP_MANIFEST``,
the cookbook plugin's ``universe``) calls ``await index_read(path)`` in ``open_source`` once that
document is fetched, before checking it: when it is byte for byte the one the previous sync read,
with the same settings, and the repository has not changed since, the sync ends there ("remote
unchanged, no new version"). A plugin that reads many documents does not call it.

A plugin may also publish index files for each version (the file plugin's ``PULP_MANIFEST``, the
cookbook plugin's ``universe``) through ``published_files()``: each is generated from the database
when ``pendingops serve`` is asked for it or ``export`` writes it, so another pendingops can sync
from what this one serves or exported. A plugin publishing a folder of pages (the python plugin's
``simple/`` index) declares ``published_pages()``; ``export`` writes their ``static`` form.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pendingops.db.database import Database
from pendingops.db.schema import Content
from pendingops.pending import PendingContent
from pendingops.remote import RemoteConfig

if TYPE_CHECKING:  # only annotations: loading plugins (every command's schema check does) stays light
    from sqlalchemy import ColumnElement, Connection

    from pendingops.download.fetcher import Fetcher
    from pendingops.operators import Operator

#: an index up to this size is hashed on the loop (a few milliseconds), a larger one on a thread
_HASH_INLINE_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class Source:
    """What a remote declares: its units, streamed, and their number when known in advance."""

    units: AsyncIterable[PendingContent]
    total: int | None = None


async def index_read(path: Path) -> None:
    """Say that the source read its remote's whole index from ``path`` (the file as fetched).

    The sync records the index's sha256. When it is the previous sync's, with the same settings,
    and the repository has not changed since, this raises ``RemoteUnchanged``: let it pass (clean
    up in ``finally``, as for any error); the sync ends with no new version and no unit read.
    Call it before parsing or checking the index, so an unchanged remote costs only its fetch.
    Outside a sync (a source opened on its own) it does nothing.
    """
    from pendingops.context import RemoteUnchanged, composing_context

    sync = composing_context()
    if sync is None:
        return
    small = path.stat().st_size <= _HASH_INLINE_BYTES
    digest = _file_sha256(path) if small else await asyncio.to_thread(_file_sha256, path)
    if await sync.index_unchanged(digest):
        raise RemoteUnchanged(f"{path.name} is unchanged since the previous sync")


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@runtime_checkable
class Plugin(Protocol):
    name: str
    description: str
    content_type: type[Content]

    def open_source(
        self, remote: RemoteConfig, fetcher: Fetcher, workdir: Path
    ) -> AbstractAsyncContextManager[Source]: ...

    def pipeline(self) -> Sequence[Operator] | None: ...


@dataclass(frozen=True, slots=True)
class VersionRef:
    """The version a published file describes, and where its files can be fetched from.

    Read it with ``units(ContentType)``. ``base_url`` is what a published file puts before a
    relative path to link to a file of the version: the server's URL of the version's top folder
    when served, a relative one (``./``, or ``../`` per folder the published file is below the top)
    in an export, so the exported tree is servable as it is. ``stored_only`` is true in an export:
    ``units`` then lists only units holding a stored file, the only ones the export copies.
    """

    db: Database
    repository_id: int
    number: int
    #: the URL of the version's top folder, ending in "/": absolute when served, relative in an export
    base_url: str
    #: list only units whose files are stored (an export holds no others); ``units`` applies it
    stored_only: bool = False

    def units(
        self,
        content_type: type[Content],
        *,
        latest_per: Sequence[str] | None = None,
        where: Sequence[ColumnElement[bool]] = (),
        columns: Sequence[Any] = (),
    ) -> Iterator[Any]:
        """The rows of ``content_type`` this version holds (its columns, ``version_added``, then ``columns``).

        In natural-key order, read a page at a time (a blocking generator, as ``generate`` is).
        ``latest_per``: one row per value of these columns, in their order, the unit the latest version
        added (an additive sync may keep an item as it was and as changed). ``where``: more conditions
        on the content type's columns (``artifact_stored`` and ``artifact_size`` in
        ``pendingops.plugins.reading`` test its files). Honours ``stored_only``.
        """
        from pendingops.plugins.reading import version_units

        return version_units(
            self.db,
            self.repository_id,
            self.number,
            self.stored_only,
            content_type,
            latest_per=latest_per,
            where=where,
            columns=columns,
        )


@dataclass(frozen=True, slots=True)
class PublishedFile:
    """An index file a plugin publishes at ``relative_path`` of every version holding its content."""

    relative_path: str
    media_type: str
    #: the file's bytes, generated from the database a piece at a time (it reads in pages, blocking)
    generate: Callable[[VersionRef], Iterator[bytes]]


@dataclass(frozen=True, slots=True)
class PageResponse:
    """A generated page: its media type and its bytes, a piece at a time (read on a worker thread)."""

    media_type: str
    body: Iterator[bytes]


@dataclass(frozen=True, slots=True)
class PublishedPage:
    """Pages a plugin generates below the folder ``prefix`` of every version holding its content."""

    prefix: str
    #: ``render(version, path, accept)``: the page at ``path`` below the prefix ("" for the prefix's own,
    #: else without its trailing "/") for a client sending ``accept``, or None when there is none
    #: (it reads the database, blocking)
    render: Callable[[VersionRef, str, str], PageResponse | None]
    #: the pages as static files an export writes below the prefix: (path below it, bytes), links
    #: relative to the page, so any static web server serves the tree; None when not exported
    static: Callable[[VersionRef], Iterator[tuple[str, Iterable[bytes]]]] | None = None
    #: the pages are files (``dists/bookworm/Release``), not folders; where they apply, they stand in
    #: for every file the version stores below the prefix (served and exported in their place)
    files: bool = False
    #: ``applies(connection, repository_id, number)``: whether the pages apply to that version (it
    #: reads the database, blocking); None: to every version holding the plugin's content
    applies: Callable[[Connection, int, int], bool] | None = None


def published_pages(plugin: object) -> Sequence[PublishedPage]:
    """The page folders ``plugin`` publishes for its versions (none when it has no ``published_pages``)."""
    declared = getattr(plugin, "published_pages", None)
    return tuple(declared()) if callable(declared) else ()


def published_files(plugin: object) -> Sequence[PublishedFile]:
    """The files ``plugin`` publishes for its versions (none when it has no ``published_files``)."""
    declared = getattr(plugin, "published_files", None)
    return tuple(declared()) if callable(declared) else ()
