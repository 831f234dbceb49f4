"""The content server: an aiohttp application serving every complete repository version.

URLs: ``/`` lists repositories, ``/{repo}/`` its versions, ``/{repo}/{latest|n}/{path}`` a file
(or, ending in ``/``, a folder listing: HTML, or JSON for ``Accept: application/json``). Stored
files go out with aiohttp's FileResponse (sendfile), with a strong ETag (the sha256) and single
byte ranges; index files that plugins publish are generated from the database and streamed.
Database reads run on a small thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote
from wsgiref.handlers import format_date_time

from aiohttp import hdrs, web
from multidict import CIMultiDict

from pendingops.db.database import Database
from pendingops.db.names import RESERVED
from pendingops.plugins import PublishedFile, PublishedPage, VersionRef, available_plugins
from pendingops.plugins.published import Publisher
from pendingops.remote import RemoteConfig
from pendingops.serve.conditional import (
    Unsatisfiable,
    byte_range,
    condition_status,
    media_type,
    range_applies,
)
from pendingops.serve.headers import make_inert
from pendingops.serve.listing import Entry, Listing
from pendingops.serve.on_demand import (
    DEFAULT_CONCURRENCY,
    DEFAULT_COOLDOWN,
    DEFAULT_VERIFY_BEFORE_SEND,
    DEFAULT_WAIT_LIMIT,
    OnDemand,
    Source,
)
from pendingops.serve.operating import Operating
from pendingops.serve.request_path import BadPath, Target, parse_target
from pendingops.serve.resolve import (
    ServedFile,
    ServedVersion,
    find_file,
    find_version,
    list_folder,
    reading,
    repositories,
    version_numbers,
)
from pendingops.serve.stored import DEFAULT_STORAGE_THREADS, StorageReads, send_through_storage
from pendingops.storage.base import ArtifactStorage

T = TypeVar("T")
_ALLOWED = "GET, HEAD"
_REMEMBERED_VERSIONS = 1024
_REMEMBERED_FILES = 65536
#: parsed request targets remembered, each at most _REMEMBERED_TARGET_LENGTH characters (a few MiB)
_REMEMBERED_TARGETS = 4096
_REMEMBERED_TARGET_LENGTH = 512
#: bytes of small stored files kept in memory, all together
_REMEMBERED_BYTES = 64 * 1024 * 1024
#: stored files up to this size are read and sent at once; larger ones go out with sendfile
_SMALL_FILE = 64 * 1024
#: bytes read from an object store per worker-thread call
_CHUNK = 1024 * 1024
#: request headers the file sender must not see: this module has decided them already
_DECIDED = (
    hdrs.IF_NONE_MATCH,
    hdrs.IF_MATCH,
    hdrs.IF_MODIFIED_SINCE,
    hdrs.IF_UNMODIFIED_SINCE,
    hdrs.IF_RANGE,
    hdrs.RANGE,
    hdrs.ACCEPT_ENCODING,
)
#: request headers that make an answer depend on more than the file
_CONDITIONS = tuple(name for name in _DECIDED if name != hdrs.ACCEPT_ENCODING)


class ContentServer:
    """Serves what ``db`` and ``storage`` hold; ``base_url`` is where clients reach it (set on start).

    A version that completes is served as ``latest`` within ``latest_ttl`` seconds (0: at once), and
    a version deleted (with its repository, or by retention) is no longer served within as long.
    With ``accel_redirect`` (a URL path ending in "/"), a stored file of a local storage is answered
    with only its headers and ``X-Accel-Redirect: {accel_redirect}{location}``: a front nginx sends it.
    With ``repositories``, only those are served (the others are not found, nor listed). ``operating``
    holds the access log, metrics, health checks and authentication (by default: access log, no login).
    A storage with no local path (S3) is read on ``storage_threads`` threads of its own, apart from the
    ``db_threads`` of database reads (``stored.py``).
    Files not stored yet are fetched as ``OnDemand`` says: at most ``on_demand_concurrency`` at once
    (a request waits ``on_demand_wait`` seconds at most for its turn), and those up to
    ``verify_before_send`` bytes are checked whole before their first byte goes out.
    """

    def __init__(
        self,
        db: Database,
        storage: ArtifactStorage,
        *,
        plugins: Iterable[object] | None = None,
        db_threads: int = 4,
        storage_threads: int = DEFAULT_STORAGE_THREADS,
        remote_settings: Callable[[Source], RemoteConfig] | None = None,
        cooldown: float = DEFAULT_COOLDOWN,
        latest_ttl: float = 1.0,
        accel_redirect: str | None = None,
        repositories: Collection[str] | None = None,
        operating: Operating | None = None,
        on_demand_concurrency: int = DEFAULT_CONCURRENCY,
        on_demand_wait: float = DEFAULT_WAIT_LIMIT,
        verify_before_send: int = DEFAULT_VERIFY_BEFORE_SEND,
    ) -> None:
        self.db = db
        self.repositories = None if repositories is None else frozenset(repositories)
        self.operating = operating or Operating(db, storage)
        #: seconds a repository's latest version number is reused before it is read again
        self.latest_ttl = latest_ttl
        self.accel_redirect = accel_redirect
        self.storage = storage
        self.base_url = ""
        self.publisher = Publisher(available_plugins().values() if plugins is None else plugins)
        self._pool = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="pendingops-serve")
        self._storage_reads = StorageReads(storage, storage_threads)
        self._published_names = self.publisher.names
        #: (repository, "latest" or number) -> the version and when it was read
        self._version_cache: dict[tuple[str, str], tuple[ServedVersion, float]] = {}
        self._version_reads: dict[tuple[str, str], asyncio.Future[ServedVersion | None]] = {}
        self._file_cache: dict[tuple[ServedVersion, str], ServedFile] = {}
        self._small_files = _SmallFiles()
        self._targets: dict[str, Target] = {}
        self.on_demand = OnDemand(
            db,
            storage,
            self._read,
            settings=remote_settings,
            cooldown=cooldown,
            concurrency=on_demand_concurrency,
            wait_limit=on_demand_wait,
            verify_before_send=verify_before_send,
            observe=self.operating.metrics.fetched,
        )

    def build_app(self) -> web.Application:
        app = web.Application()
        self.operating.install(app)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_response_prepare.append(make_inert)
        app.on_cleanup.append(self._close)
        return app

    def runner(self) -> web.AppRunner:
        """The AppRunner serving ``build_app()``, counting and logging every answered request."""
        return self.operating.runner(self.build_app())

    def serves(self, repository: str) -> bool:
        """Whether ``repository`` is one this server shows (``-`` never is: it holds the server's own pages)."""
        return repository != RESERVED and (self.repositories is None or repository in self.repositories)

    async def _close(self, app: web.Application) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._storage_reads.close()

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on a read connection, on the server's database threads."""

        def call() -> T:
            with reading(self.db) as conn:
                return fn(conn, *args)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    # -- dispatch -----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
            return web.Response(status=405, text="only GET and HEAD\n", headers={hdrs.ALLOW: _ALLOWED})
        try:
            target = self._target(request.raw_path)
        except BadPath as exc:
            return _not_found(str(exc))
        if target.repository is None:
            return await self._repositories(request)
        if not self.serves(target.repository):
            return _not_found(f"no repository {target.repository!r}")
        if target.version is None:
            return await self._versions(request, target)
        version = await self._version(target.repository, target.version)
        if version is None:
            return _not_found(f"no version {target.version} of repository {target.repository!r}")
        page = self.publisher.page_at(target.path)
        if page is not None and await self._read(
            self.publisher.page_published, version.repository_id, version.number, page[0]
        ):
            return await self._page(request, target, version, *page)
        if target.folder:
            published = await self._read(self.publisher.for_version, version.repository_id, version.number)
            return await self._folder(request, target, version, published)
        if target.path == "":
            return _redirect(request, "/")
        if target.path in self._published_names:
            published = await self._read(self.publisher.for_version, version.repository_id, version.number)
            if target.path in published:
                return await self._published(request, version, published[target.path])
        found = await self._file(version, target.path)
        if found is None:
            if not (await self._read(list_folder, version, target.path)).empty:
                return _redirect(request, "/")
            return _not_found(f"no file {target.path!r} in version {version.number} of {version.repository!r}")
        return await self.send_file(request, version, found)

    def _target(self, raw_path: str) -> Target:
        """``parse_target(raw_path)``, remembered for short targets: it depends on nothing else."""
        found = self._targets.get(raw_path)
        if found is None:
            found = parse_target(raw_path)
            if len(raw_path) > _REMEMBERED_TARGET_LENGTH:
                return found
            if len(self._targets) >= _REMEMBERED_TARGETS:
                self._targets.pop(next(iter(self._targets)))
            self._targets[raw_path] = found
        return found

    async def _version(self, repository: str, version: str) -> ServedVersion | None:
        """A complete version, read again once ``latest_ttl`` seconds old: which one is the latest
        changes, and a version can be deleted. Requests arriving during a read share it."""
        key = (repository, version)
        cached = self._version_cache.get(key)
        if cached is not None and time.monotonic() - cached[1] < self.latest_ttl:
            return cached[0]
        reading_now = self._version_reads.get(key)
        if reading_now is None:
            read_at = time.monotonic()
            reading_now = asyncio.ensure_future(self._read(find_version, repository, version))
            if self.latest_ttl > 0:  # with 0, each request must see the database as it arrives
                self._version_reads[key] = reading_now
                reading_now.add_done_callback(lambda _: self._version_reads.pop(key, None))
            reading_now.add_done_callback(functools.partial(self._remember_version, key, read_at))
        return await asyncio.shield(reading_now)

    def _remember_version(
        self, key: tuple[str, str], read_at: float, read: asyncio.Future[ServedVersion | None]
    ) -> None:
        found = None if read.cancelled() or read.exception() else read.result()
        if found is None:
            self._version_cache.pop(key, None)
            return
        if len(self._version_cache) >= _REMEMBERED_VERSIONS and key not in self._version_cache:
            self._version_cache.pop(next(iter(self._version_cache)))
        self._version_cache[key] = (found, read_at)

    async def _file(self, version: ServedVersion, path: str) -> ServedFile | None:
        """The file at ``path``; stored ones are remembered (what a complete version holds never changes,
        and a version deleted and made again has another creation time, so another key)."""
        key = (version, path)
        found = self._file_cache.get(key)
        if found is None:
            found = await self._read(find_file, version, path)
            if found is not None and found.location is not None:
                if len(self._file_cache) >= _REMEMBERED_FILES:
                    self._file_cache.pop(next(iter(self._file_cache)))
                self._file_cache[key] = found
        return found

    # -- listings -----------------------------------------------------------------------------------

    async def _repositories(self, request: web.Request) -> web.StreamResponse:
        names = await self._read(repositories)
        listing = Listing("/", [Entry(name + "/") for name in names if self.serves(name)], parent=False)
        return _listing_response(request, listing)

    async def _versions(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.repository is not None
        numbers = await self._read(version_numbers, target.repository)
        if not numbers:
            return _not_found(f"no repository {target.repository!r}")
        if not target.folder:
            return _redirect(request, "/")
        entries = [Entry("latest/", note=f"version {numbers[-1]}")] + [Entry(f"{n}/") for n in reversed(numbers)]
        listing = Listing(f"/{target.repository}/", entries, extra={"repository": target.repository})
        return _listing_response(request, listing)

    async def _folder(
        self, request: web.Request, target: Target, version: ServedVersion, published: Mapping[str, PublishedFile]
    ) -> web.StreamResponse:
        folder = await self._read(list_folder, version, target.path)
        if folder.empty and target.path:
            return _not_found(f"no folder {target.path!r} in version {version.number} of {version.repository!r}")
        entries = [Entry(name + "/") for name in folder.folders]
        entries += [
            Entry(f.relative_path.rpartition("/")[2], f.size, f.sha256, f.location is not None) for f in folder.files
        ]
        if not target.path:
            names = {e.name for e in entries}
            entries += [Entry(name, note="index") for name in sorted(published) if name not in names]
        title = f"/{target.repository}/{target.version}/" + (target.path + "/" if target.path else "")
        extra = {"repository": version.repository, "version": version.number}
        return _listing_response(request, Listing(title, entries, extra=extra))

    # -- files --------------------------------------------------------------------------------------

    def _ref(self, request: web.Request, version: ServedVersion) -> VersionRef:
        base = f"{self.base_url or _request_base(request)}{quote(version.repository, safe='')}/{version.number}/"
        return VersionRef(self.db, version.repository_id, version.number, base)

    async def _page(
        self, request: web.Request, target: Target, version: ServedVersion, page: PublishedPage, rest: str
    ) -> web.StreamResponse:
        """A page a plugin generates below its folder (a package index's project pages, an archive's indexes)."""
        if target.folder and page.files:
            return _not_found(f"no folder {target.path!r} in version {version.number} of {version.repository!r}")
        if not target.folder and not page.files:
            return _redirect(request, "/")
        accept = request.headers.get(hdrs.ACCEPT, "")
        found = await self._run(page.render, self._ref(request, version), rest, accept)
        if found is None:
            return _not_found(f"no page {target.path!r} in version {version.number} of {version.repository!r}")
        response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: found.media_type, hdrs.VARY: "Accept"})
        return await self._stream(request, version, response, found.body)

    async def _published(
        self, request: web.Request, version: ServedVersion, published: PublishedFile
    ) -> web.StreamResponse:
        ref = self._ref(request, version)
        response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: published.media_type})
        return await self._stream(request, version, response, published.generate(ref))

    async def _stream(
        self, request: web.Request, version: ServedVersion, response: web.StreamResponse, chunks: Iterator[bytes]
    ) -> web.StreamResponse:
        response.last_modified = version.created_at
        if request.method == hdrs.METH_HEAD:
            await self._run(_close_iterator, chunks)
            await response.prepare(request)
            return response
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            while (chunk := await self._run(next, chunks, None)) is not None:
                if chunk:
                    await response.write(chunk)
        finally:
            await self._run(_close_iterator, chunks)
        await response.write_eof()
        return response

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def send_file(self, request: web.Request, version: ServedVersion, found: ServedFile) -> web.StreamResponse:
        """A file of the version: from storage when stored; else what ``fetch_missing`` answers."""
        if found.location is None or found.sha256 is None:
            return await self.fetch_missing(request, version, found)
        return await self._send_stored(request, version, found)

    async def _send_stored(self, request: web.Request, version: ServedVersion, found: ServedFile) -> web.StreamResponse:
        assert found.location is not None
        key = (version, found.relative_path)
        small = self._small_files.get(key)
        if small is not None and not any(name in request.headers for name in _CONDITIONS):
            return web.Response(body=small.body, headers=small.headers)
        path = self.storage.local_path(found.location)
        if path is None:  # an object store (S3): read through the storage, on its own threads
            return await send_through_storage(request, self._storage_reads, version, found)
        if self.accel_redirect is not None:
            return _redirected(self.accel_redirect, found)
        try:
            read = small or _read_if_small(path, found)
        except OSError:
            return _not_found(f"{found.relative_path!r} is missing from storage")
        if isinstance(read, _Small):
            self._small_files.add(key, read)
        return _send_stored(request, path, found, read)

    async def fetch_missing(
        self, request: web.Request, version: ServedVersion, found: ServedFile
    ) -> web.StreamResponse:
        """A file whose artifact is not stored (on-demand content): fetched from its remotes."""

        async def from_storage() -> web.StreamResponse:
            stored = await self._read(find_file, version, found.relative_path)
            if stored is None or stored.location is None:
                return web.Response(status=502, text="the file could not be fetched from its remotes\n")
            return await self._send_stored(request, version, stored)

        return await self.on_demand.respond(request, found, from_storage, version.repository_id)


class _ArtifactResponse(web.FileResponse):
    """A FileResponse whose ETag is the artifact's sha256 and whose Last-Modified is decided here."""

    def __init__(
        self, path: Any, etag: str, last_modified: datetime, headers: Mapping[str, str], view: web.BaseRequest
    ) -> None:
        super().__init__(path, headers=headers)
        self._fixed_etag = etag
        self._fixed_last_modified = last_modified
        #: the request as the file sender must see it: conditions removed, the range normalised
        self._view = view

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self.prepared:
            return None
        return await super().prepare(self._view)

    @property  # type: ignore[override]
    def etag(self) -> Any:
        return super().etag

    @etag.setter
    def etag(self, value: Any) -> None:
        self._headers[hdrs.ETAG] = self._fixed_etag

    @property  # type: ignore[override]
    def last_modified(self) -> Any:
        return super().last_modified

    @last_modified.setter
    def last_modified(self, value: Any) -> None:
        web.StreamResponse.last_modified.fset(self, self._fixed_last_modified)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _Small:
    """A stored file small enough to be sent at once: its bytes and its response headers."""

    body: bytes
    last_modified: datetime
    headers: Mapping[str, str]


class _SmallFiles:
    """Small stored files by (version, relative path), at most ``_REMEMBERED_BYTES`` in all, the oldest
    dropped first: a stored artifact never changes, and the version is part of the key."""

    def __init__(self) -> None:
        self._files: dict[tuple[ServedVersion, str], _Small] = {}
        self._bytes = 0

    def get(self, key: tuple[ServedVersion, str]) -> _Small | None:
        return self._files.get(key)

    def add(self, key: tuple[ServedVersion, str], small: _Small) -> None:
        if key in self._files or len(small.body) > _REMEMBERED_BYTES:
            return
        while self._files and (
            self._bytes + len(small.body) > _REMEMBERED_BYTES or len(self._files) >= _REMEMBERED_FILES
        ):
            self._bytes -= len(self._files.pop(next(iter(self._files))).body)
        self._files[key] = small
        self._bytes += len(small.body)


def _send_stored(
    request: web.Request, path: Any, found: ServedFile, read: _Small | os.stat_result
) -> web.StreamResponse:
    """A stored file: a small one from its bytes, a larger one with sendfile."""
    etag = f'"{found.sha256}"'
    small = read if isinstance(read, _Small) else None
    if small is not None:
        last_modified, size = small.last_modified, len(small.body)
    else:
        assert isinstance(read, os.stat_result)
        last_modified, size = datetime.fromtimestamp(int(read.st_mtime), UTC), read.st_size
    common = {hdrs.ETAG: etag, hdrs.ACCEPT_RANGES: "bytes"}
    status = condition_status(request, etag, last_modified)
    if status is not None:  # 412 or 304: the headers only
        response = web.Response(status=status, headers=common)
        response.last_modified = last_modified
        return response
    wanted = None
    if range_applies(request, etag, last_modified):
        try:
            wanted = byte_range(request, size)
        except Unsatisfiable:
            return web.Response(status=416, headers={**common, hdrs.CONTENT_RANGE: f"bytes */{size}"})
    content_type = media_type(found.relative_path.rpartition("/")[2])
    if small is not None:
        if wanted is None:
            return web.Response(body=small.body, headers=small.headers)
        headers = {**small.headers, hdrs.CONTENT_RANGE: f"bytes {wanted[0]}-{wanted[1]}/{size}"}
        return web.Response(status=206, body=small.body[wanted[0] : wanted[1] + 1], headers=headers)
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k not in _DECIDED)
    if wanted is not None:
        headers[hdrs.RANGE] = f"bytes={wanted[0]}-{wanted[1]}"
    view = request.clone(headers=headers)
    return _ArtifactResponse(path, etag, last_modified, {hdrs.CONTENT_TYPE: content_type}, view)


def _redirected(prefix: str, found: ServedFile) -> web.Response:
    """Headers only: the front server sends the stored file named by ``X-Accel-Redirect`` (its own
    conditions and ranges apply). The location comes from the database, never from the request."""
    assert found.location is not None
    headers = {
        "X-Accel-Redirect": prefix + quote(found.location),
        hdrs.ETAG: f'"{found.sha256}"',
        hdrs.CONTENT_TYPE: media_type(found.relative_path.rpartition("/")[2]),
    }
    return web.Response(headers=headers)


def _read_if_small(path: Any, found: ServedFile) -> _Small | os.stat_result:
    """The file at ``path`` with its response headers if it is at most ``_SMALL_FILE`` bytes, else its stat.

    Read in place (from the page cache, cheaper than a hop to a worker thread).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        stat = os.fstat(fd)
        if stat.st_size > _SMALL_FILE:
            return stat
        body = os.read(fd, _SMALL_FILE + 1)
    finally:
        os.close(fd)
    last_modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
    headers = {
        hdrs.ETAG: f'"{found.sha256}"',
        hdrs.ACCEPT_RANGES: "bytes",
        hdrs.CONTENT_TYPE: media_type(found.relative_path.rpartition("/")[2]),
        hdrs.LAST_MODIFIED: format_date_time(last_modified.timestamp()),
    }
    return _Small(body, last_modified, headers)


def _close_iterator(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get(hdrs.ACCEPT, "")
    return "application/json" in accept and "text/html" not in accept


def _listing_response(request: web.Request, listing: Listing) -> web.Response:
    if _wants_json(request):
        return web.Response(body=listing.as_json(), content_type="application/json", charset="utf-8")
    return web.Response(body=listing.as_html(), content_type="text/html", charset="utf-8")


def _not_found(reason: str) -> web.Response:
    return web.Response(status=404, text=f"not found: {reason}\n")


def _redirect(request: web.Request, suffix: str) -> web.Response:
    """A redirect to the same path plus ``suffix`` (a folder's URL ends with "/"), query dropped."""
    location = request.raw_path.split("?", 1)[0] + suffix
    return web.Response(status=301, headers={hdrs.LOCATION: location})


def _request_base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}/"
