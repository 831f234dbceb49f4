"""Reading PEP 503 simple index pages (HTML) and PEP 691 JSON pages, fed a chunk at a time.

The root page lists projects, one anchor each; a project page lists files, one anchor each, with
the ``#sha256=`` fragment and the ``data-requires-python``, ``data-yanked`` and
``data-dist-info-metadata``/``data-core-metadata`` attributes. Memory holds one anchor at a time
for the root page (it may list hundreds of thousands of projects) and the file links of one
project page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin

#: longer anchor texts are cut (a project name is short; a hostile page must not grow one forever)
MAX_TEXT = 1024
_NON_NAME = re.compile(r"[-_.]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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


class _Anchors(HTMLParser):
    """Collects (attributes, text) of every ``<a>`` element seen so far; drained by the caller."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []
        self._length = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text, self._length = dict(attrs), [], 0

    def handle_data(self, data: str) -> None:
        if self._open is not None and self._length < MAX_TEXT:
            self._text.append(data[: MAX_TEXT - self._length])
            self._length += len(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.found.append((self._open, "".join(self._text).strip()))
            self._open = None


class RootPage:
    """Project names from a root page fed in chunks: ``feed`` yields the names completed so far."""

    def __init__(self) -> None:
        self._parser = _Anchors()

    def feed(self, chunk: str) -> Iterator[str]:
        self._parser.feed(chunk)
        yield from self._drain()

    def close(self) -> Iterator[str]:
        self._parser.close()
        yield from self._drain()

    def _drain(self) -> Iterator[str]:
        found, self._parser.found = self._parser.found, []
        for _, text in found:
            if text:
                yield text


def project_links(html: str, page_url: str) -> list[FileLink]:
    """The file links of a PEP 503 project page at ``page_url``."""
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    links = []
    for attrs, text in parser.found:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(page_url, href))
        name, _, value = fragment.partition("=")
        sha256 = value.lower() if name == "sha256" and _SHA256.fullmatch(value.lower()) else None
        filename = text or url.rsplit("/", 1)[-1]
        yanked = attrs.get("data-yanked", None) if "data-yanked" in attrs else None
        if "data-yanked" in attrs and yanked is None:
            yanked = ""
        metadata = _metadata(attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata")))
        if "data-core-metadata" in attrs or "data-dist-info-metadata" in attrs:
            metadata = metadata or "true"
        links.append(FileLink(filename, url, sha256, attrs.get("data-requires-python") or None, yanked, metadata))
    return links


def project_links_json(document: str, page_url: str) -> list[FileLink]:
    """The file links of a PEP 691 JSON project page at ``page_url``."""
    data = json.loads(document)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise ValueError("a PEP 691 project page must hold a 'files' list")
    links = []
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            continue
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
        links.append(
            FileLink(
                entry["filename"],
                urldefrag(url)[0],
                digest if _SHA256.fullmatch(digest) else None,
                requires if isinstance(requires, str) and requires else None,
                reason,
                metadata,
            )
        )
    return links


def _metadata(value: str | None) -> str | None:
    if value is None:
        return None
    name, _, digest = value.partition("=")
    if name == "sha256" and _SHA256.fullmatch(digest.lower()):
        return digest.lower()
    return None
