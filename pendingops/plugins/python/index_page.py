"""What PEP 503 (HTML) and PEP 691 (JSON) simple index pages list, read as they stream in.

The root page lists projects, one anchor or JSON entry each; a project page lists files: in HTML
with the ``#sha256=`` fragment and the ``data-requires-python``, ``data-yanked`` and
``data-dist-info-metadata``/``data-core-metadata`` attributes, in JSON with the same fields and
PEP 700's ``size`` and ``upload-time``. Every page is fed a chunk at a time and gives what it lists
as each entry completes: the page itself is never held, only one anchor (``html_anchors``) or one
JSON entry (``json_stream``) at a time, and what the caller keeps (a project page's file links).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urldefrag, urljoin

from pendingops.plugins.python.html_anchors import MAX_TEXT, AnchorReader, Attributes
from pendingops.plugins.python.json_stream import JsonObjectStream

#: longest yank reason kept (it is part of the natural key, so of a unique index: PostgreSQL caps an
#: index entry at about 2.7 KB, and a file name may take 1 KiB of it)
MAX_REASON = 256
_NON_NAME = re.compile(r"[-_.]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: PEP 700's upload time: UTC, to the second or a fraction of it
_UPLOAD_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z")
_MAX_SIZE = 2**63 - 1
T_co = TypeVar("T_co", covariant=True)


def normalize(name: str) -> str:
    """A project name as PEP 503 normalises it: lower case, runs of ``-_.`` made one ``-``."""
    return _NON_NAME.sub("-", name).lower()


@dataclass(frozen=True, slots=True)
class FileLink:
    """One file a project page lists."""

    filename: str
    url: str
    sha256: str | None
    requires_python: str | None
    #: None when not yanked, else the reason ("" when none is given)
    yanked: str | None
    #: the metadata file's digest as the page gives it ("true" when present without one), or None
    core_metadata: str | None
    #: the file's size in bytes, when the page gives it (PEP 700, JSON pages only)
    size: int | None = None
    #: when the file was uploaded, as the page gives it (PEP 700: ``2023-01-31T12:34:56.123456Z``)
    upload_time: str | None = None


class PageReader(Protocol[T_co]):
    """A page fed a chunk at a time: ``feed`` yields what it lists as each entry completes."""

    def feed(self, chunk: str) -> Iterator[T_co]: ...

    def close(self) -> Iterator[T_co]: ...


class RootPage:
    """Project names from a PEP 503 root page (the text of each anchor)."""

    def __init__(self) -> None:
        self._anchors = AnchorReader()

    def feed(self, chunk: str) -> Iterator[str]:
        return (text for _, text in self._anchors.feed(chunk) if text)

    def close(self) -> Iterator[str]:
        return (text for _, text in self._anchors.close() if text)


class ProjectPage:
    """The file links of a PEP 503 project page at ``page_url``."""

    def __init__(self, page_url: str) -> None:
        self._url = page_url
        self._anchors = AnchorReader()

    def feed(self, chunk: str) -> Iterator[FileLink]:
        return self._links(self._anchors.feed(chunk))

    def close(self) -> Iterator[FileLink]:
        return self._links(self._anchors.close())

    def _links(self, anchors: Iterable[tuple[Attributes, str]]) -> Iterator[FileLink]:
        for attrs, text in anchors:
            if attrs.get("href"):
                yield _html_link(attrs, text, self._url)


class JsonRootPage:
    """Project names from a PEP 691 JSON root page (``{"meta": ..., "projects": [{"name": ...}]}``).

    One project entry (or other top-level value) is held at a time, each at most ``MAX_ENTRY``
    characters; ``ValueError`` beyond, and for anything that is not such a page.
    """

    def __init__(self) -> None:
        self._stream = JsonObjectStream("the JSON root page")

    def feed(self, chunk: str) -> Iterator[str]:
        return self._names(self._stream.feed(chunk))

    def close(self) -> Iterator[str]:
        yield from self._names(self._stream.close())
        if "projects" not in self._stream.lists:
            raise ValueError("a PEP 691 root page must hold a 'projects' list")

    def _names(self, values: Iterable[tuple[str, Any, bool]]) -> Iterator[str]:
        for key, value, in_list in values:
            if key == "meta":
                _check_api_version(value)
            elif key == "projects":
                if not in_list:
                    raise ValueError("'projects' must be a list")
                name = value.get("name") if isinstance(value, dict) else None
                if not isinstance(name, str):
                    raise ValueError("each project must be an object with a 'name'")
                if name.strip():
                    yield name.strip()[:MAX_TEXT]


class JsonProjectPage:
    """The file links of a PEP 691 JSON project page at ``page_url``, one ``files`` entry at a time
    (each at most ``MAX_ENTRY`` characters, as every other top-level value)."""

    def __init__(self, page_url: str) -> None:
        self._url = page_url
        self._stream = JsonObjectStream("the JSON project page")

    def feed(self, chunk: str) -> Iterator[FileLink]:
        return self._links(self._stream.feed(chunk))

    def close(self) -> Iterator[FileLink]:
        yield from self._links(self._stream.close())
        if "files" not in self._stream.lists:
            raise ValueError("a PEP 691 project page must hold a 'files' list")

    def _links(self, values: Iterable[tuple[str, Any, bool]]) -> Iterator[FileLink]:
        for key, value, in_list in values:
            if key == "meta":
                _check_api_version(value)
            elif key == "files":
                if not in_list:
                    raise ValueError("a PEP 691 project page must hold a 'files' list")
                link = _json_link(value, self._url)
                if link is not None:
                    yield link


def read_whole(page: PageReader[T_co], text: str) -> list[T_co]:
    """What a page given whole lists."""
    return [*page.feed(text), *page.close()]


def project_links(html: str, page_url: str) -> list[FileLink]:
    """The file links of a whole PEP 503 project page at ``page_url``."""
    return read_whole(ProjectPage(page_url), html)


def project_links_json(document: str, page_url: str) -> list[FileLink]:
    """The file links of a whole PEP 691 JSON project page at ``page_url``."""
    return read_whole(JsonProjectPage(page_url), document)


def _check_api_version(meta: object) -> None:
    """Refuse a page of another major version of the JSON API than 1 (PEP 691 says clients must)."""
    version = meta.get("api-version") if isinstance(meta, dict) else None
    if isinstance(version, str) and version.split(".")[0].strip() != "1":
        raise ValueError(f"api-version {version[:20]!r} is not one this client reads (1.x)")


def _html_link(attrs: Attributes, text: str, page_url: str) -> FileLink:
    url, fragment = urldefrag(urljoin(page_url, attrs.get("href") or ""))
    name, _, value = fragment.partition("=")
    sha256 = value.lower() if name == "sha256" and _SHA256.fullmatch(value.lower()) else None
    filename = text or url.rsplit("/", 1)[-1]
    yanked = attrs.get("data-yanked", None) if "data-yanked" in attrs else None
    if "data-yanked" in attrs and yanked is None:
        yanked = ""
    metadata = _metadata(attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata")))
    if "data-core-metadata" in attrs or "data-dist-info-metadata" in attrs:
        metadata = metadata or "true"
    return FileLink(filename, url, sha256, attrs.get("data-requires-python") or None, yanked, metadata)


def _json_link(entry: object, page_url: str) -> FileLink | None:
    """The link a ``files`` entry describes, or None for an entry without a file name."""
    if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
        return None
    url = urljoin(page_url, str(entry.get("url", "")))
    hashes = entry.get("hashes") if isinstance(entry.get("hashes"), dict) else {}
    digest = str(hashes.get("sha256", "")).lower()
    yanked: Any = entry.get("yanked", False)
    reason = None if yanked is False else (yanked if isinstance(yanked, str) else "")
    metadata: Any = entry.get("core-metadata", entry.get("dist-info-metadata"))
    if isinstance(metadata, dict):
        metadata = _metadata(f"sha256={metadata.get('sha256', '')}") or "true"
    else:
        metadata = "true" if metadata else None
    requires = entry.get("requires-python")
    size = entry.get("size")
    return FileLink(
        entry["filename"],
        urldefrag(url)[0],
        digest if _SHA256.fullmatch(digest) else None,
        requires if isinstance(requires, str) and requires else None,
        reason,
        metadata,
        size if type(size) is int and 0 <= size <= _MAX_SIZE else None,
        _upload_time(entry.get("upload-time")),
    )


def _upload_time(value: object) -> str | None:
    """PEP 700's ``upload-time`` as the page gives it, or None when absent or not such a time."""
    if not isinstance(value, str) or not _UPLOAD_TIME.fullmatch(value):
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:  # 2023-02-30...
        return None
    return value


def _metadata(value: str | None) -> str | None:
    if value is None:
        return None
    name, _, digest = value.partition("=")
    if name == "sha256" and _SHA256.fullmatch(digest.lower()):
        return digest.lower()
    return None
