"""The python plugin: its options, its source of units (pages read as they stream in) and its pipeline."""

from __future__ import annotations

import asyncio
import codecs
import re
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urljoin, urlsplit

from pendingops.paths import unsafe_path_reason
from pendingops.pending import PendingArtifact, PendingContent, PendingInputError
from pendingops.plugins import PublishedPage, Source
from pendingops.plugins.python.content import PythonContent, file_path
from pendingops.plugins.python.core_metadata import METADATA_SUFFIX, read_core_metadata, wants_metadata
from pendingops.plugins.python.distribution import is_prerelease, parse_filename, sort_key
from pendingops.plugins.python.index_page import (
    MAX_REASON,
    FileLink,
    JsonProjectPage,
    JsonRootPage,
    PageReader,
    ProjectPage,
    RootPage,
    normalize,
)
from pendingops.plugins.python.simple import simple_page, static_pages
from pendingops.remote import RemoteConfig

if TYPE_CHECKING:
    from pendingops.download.fetcher import Fetcher
    from pendingops.operators import Operator

T = TypeVar("T")
U = TypeVar("U")
#: project pages fetched at once while the root page streams in
PAGE_CONCURRENCY = 8
#: a project page larger than this is refused (the largest on PyPI are a few MiB)
MAX_PROJECT_PAGE_BYTES = 64 * 1024 * 1024
#: a root page larger than this is refused (PyPI's is a few tens of MiB); it is streamed
MAX_ROOT_BYTES = 2 * 1024**3
#: what the index is asked for: PEP 691 JSON, else HTML (as pip asks)
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
#: characters of a page read before the loop runs other tasks (dense markup costs a few ms per 16 Ki)
_FEED_SLICE = 16 * 1024
_DIGEST = re.compile(r"[0-9a-f]{64}")
#: a valid project name (PEP 508)
_PROJECT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?")
OPTIONS = {
    "projects": "comma-separated project names to sync (default: every project the index lists)",
    "prereleases": "true or false: include pre-release versions (default: true)",
    "latest": "N: keep only the N newest versions of each project (default: all)",
}


class PythonOptionError(PendingInputError):
    """An option value the plugin cannot use."""


@dataclass(frozen=True, slots=True)
class PythonOptions:
    projects: tuple[str, ...] = ()
    prereleases: bool = True
    latest: int | None = None

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> PythonOptions:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise PythonOptionError(f"unknown option {unknown[0]!r} (known: {', '.join(OPTIONS)})")
        listed = [p.strip() for p in options.get("projects", "").split(",") if p.strip()]
        for project in listed:
            if not _PROJECT_NAME.fullmatch(project):
                raise PythonOptionError(f"projects: not a project name: {project[:80]!r}")
        projects = tuple(dict.fromkeys(normalize(p) for p in listed))
        prereleases = options.get("prereleases", "true").lower()
        if prereleases not in ("true", "false"):
            raise PythonOptionError(f"prereleases must be true or false, got {options['prereleases']!r}")
        latest = options.get("latest")
        if latest is not None and not (latest.isascii() and latest.isdigit() and 0 < int(latest) < 10**6):
            raise PythonOptionError(f"latest must be a whole number of versions from 1, got {latest!r}")
        return cls(projects, prereleases == "true", None if latest is None else int(latest))


class PythonPlugin:
    """Syncs distributions from a PEP 503 simple index (or PEP 691 JSON pages); serves one back."""

    name = "python"
    description = "Python distributions from a PEP 503/691 simple index (pip installs from what is served)"
    content_type = PythonContent
    migrations = "pendingops.plugins.migrations.python"
    options = OPTIONS

    def check_options(self, options: Mapping[str, str]) -> None:
        """Raise PythonOptionError for an option value the sync could not use."""
        PythonOptions.parse(options)

    @asynccontextmanager
    async def open_source(self, remote: RemoteConfig, fetcher: Fetcher, workdir: Path) -> AsyncIterator[Source]:
        url = remote.url if remote.url.endswith("/") else remote.url + "/"
        if urlsplit(url).scheme not in ("http", "https", "file"):
            raise PythonOptionError(f"unsupported index URL {remote.url!r}: use http, https or file")
        options = PythonOptions.parse(remote.options)
        yield Source(_units(url, fetcher, options))

    @staticmethod
    def looks_like(head: bytes, url: str) -> bool:
        """Whether a document (its first bytes, its URL) looks like a simple index: named to a user who forgot
        ``--plugin python``."""
        text = head.lower()
        return (
            b"pypi:repository-version" in text
            or b"<title>simple index" in text
            or (b'"meta"' in text and b'"projects"' in text)
            or urlsplit(url).path.rstrip("/").endswith("/simple")
        )

    def pipeline(self) -> list[Operator] | None:
        """The stock operators, and the metadata files read beside the downloads.

        ``unchanged`` comes first: a resync settles in SQL the files the repository holds as the index
        lists them, a distribution with its PEP 658 metadata file too (both artifacts compared), whose
        fields ``core_metadata`` read on the sync that saved it. The others take the whole path.
        """
        from pendingops import operators as ops

        return [
            ops.unchanged(),
            ops.dedup(),
            ops.download(),
            ops.enrich(read_core_metadata, n=8, when=wants_metadata, name="core_metadata"),
            ops.save(),
        ]

    def published_pages(self) -> list[PublishedPage]:
        return [PublishedPage("simple", simple_page, static_pages)]


async def _units(root: str, fetcher: Fetcher, options: PythonOptions) -> AsyncIterator[PendingContent]:
    names: AsyncIterable[str] = _aiter(options.projects) if options.projects else _root_names(root, fetcher)

    async def page(project: str) -> tuple[str, list[FileLink]]:
        return project, await _project_page(root, project, fetcher)

    async for project, links in _bounded_map(names, page, PAGE_CONCURRENCY):
        for unit in select_units(project, links, options):
            yield unit


def select_units(project: str, links: Iterable[FileLink], options: PythonOptions) -> list[PendingContent]:
    """The units of one project page: its wheels and sdists with a sha256, as the options select."""
    name = normalize(project)
    chosen: list[tuple[FileLink, str, str]] = []
    seen: set[str] = set()
    for link in links:
        parsed = parse_filename(link.filename, name)
        if parsed is None or link.sha256 is None or link.filename in seen:
            continue
        if unsafe_path_reason(link.filename) or "/" in link.filename:
            continue
        version, kind = parsed
        if not options.prereleases and is_prerelease(version):
            continue
        seen.add(link.filename)
        chosen.append((link, version, kind))
    if options.latest is not None:
        newest = sorted({v for _, v, _ in chosen}, key=sort_key, reverse=True)[: options.latest]
        chosen = [c for c in chosen if c[1] in newest]
    return [_unit(name, link, version, kind) for link, version, kind in chosen]


def _unit(name: str, link: FileLink, version: str, kind: str) -> PendingContent:
    fields = {
        "filename": link.filename,
        "sha256": link.sha256,
        "name": name,
        "version": version,
        "packagetype": kind,
        "requires_python": link.requires_python,
        "yanked": link.yanked is not None,
        "yanked_reason": (link.yanked or "")[:MAX_REASON],
        "core_metadata": link.core_metadata,
        "upload_time": link.upload_time,
    }
    path = file_path(name, link.filename)
    artifacts = [PendingArtifact(url=link.url, relative_path=path, size=link.size, sha256=link.sha256)]
    if link.core_metadata is not None and _DIGEST.fullmatch(link.core_metadata):
        # PEP 658: the file's core metadata, next to it; checked against the digest the page gives
        url, relative = link.url + METADATA_SUFFIX, path + METADATA_SUFFIX
        artifacts.append(PendingArtifact(url=url, relative_path=relative, sha256=link.core_metadata))
    return PendingContent(PythonContent, fields, artifacts)


async def _project_page(root: str, project: str, fetcher: Fetcher) -> list[FileLink]:
    url = urljoin(root, quote(normalize(project), safe="") + "/")
    pages = (lambda: JsonProjectPage(url), lambda: ProjectPage(url))
    return [link async for link in _read_page(url, "project page", MAX_PROJECT_PAGE_BYTES, fetcher, *pages)]


async def _root_names(root: str, fetcher: Fetcher) -> AsyncIterator[str]:
    """The project names of the root page, as it streams in (a name repeated next to itself once)."""
    last: str | None = None
    async for name in _read_page(root, "index root", MAX_ROOT_BYTES, fetcher, JsonRootPage, RootPage):
        if name != last and _PROJECT_NAME.fullmatch(name):
            last = name
            yield name


async def _read_page(
    url: str,
    what: str,
    max_bytes: int,
    fetcher: Fetcher,
    json_page: Callable[[], PageReader[T]],
    html_page: Callable[[], PageReader[T]],
) -> AsyncIterator[T]:
    """What the page at ``url`` lists, as it streams in: PEP 691 JSON when the index answers with
    it (its first character tells), else PEP 503 HTML. The page is never held whole."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    page: PageReader[T] | None = None
    received = 0
    async for chunk in fetcher.stream(url, accept=ACCEPT):
        received += len(chunk)
        if received > max_bytes:
            raise PythonOptionError(f"{what} {url} is larger than {max_bytes} bytes")
        text = decoder.decode(chunk)
        if page is None:
            text = text.lstrip(" \t\r\n\ufeff")
            if not text:
                continue
            page = json_page() if text.startswith("{") else html_page()
        for start in range(0, len(text), _FEED_SLICE):
            if start:
                await asyncio.sleep(0)  # a large chunk of dense markup does not hold the loop all at once
            for item in _read(url, what, page.feed, text[start : start + _FEED_SLICE]):
                yield item
    if page is not None:
        for item in _read(url, what, page.feed, decoder.decode(b"", final=True)):
            yield item
        for item in _read(url, what, lambda _: page.close(), ""):
            yield item


def _read(url: str, what: str, read: Callable[[str], Iterator[T]], text: str) -> list[T]:
    try:
        return list(read(text))
    except ValueError as exc:
        raise PythonOptionError(f"bad {what} {url}: {exc}") from None


async def _aiter(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


async def _bounded_map(items: AsyncIterable[T], fn: Callable[[T], Awaitable[U]], limit: int) -> AsyncIterator[U]:
    """``fn`` over ``items``, at most ``limit`` calls running at once, results in order."""
    running: deque[asyncio.Future[U]] = deque()
    try:
        async for item in items:
            running.append(asyncio.ensure_future(fn(item)))
            if len(running) >= limit:
                yield await running.popleft()
        while running:
            yield await running.popleft()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
