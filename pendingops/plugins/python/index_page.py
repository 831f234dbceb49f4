"""Reading PEP 503 simple index pages (HTML) and PEP 691 JSON pages, fed a chunk at a time.

The root page lists projects, one anchor each; a project page lists files, one anchor each, with
the ``#sha256=`` fragment and the ``data-requires-python``, ``data-yanked`` and
``data-dist-info-metadata``/``data-core-metadata`` attributes. Memory holds one anchor at a time
for the root page (it may list hundreds of thousands of projects), one entry at a time for a JSON
root page, and the file links of one project page.
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
#: a JSON root page's entries (and its other top-level values) longer than this are refused
MAX_ENTRY = 64 * 1024
#: longest yank reason kept (it is part of the natural key, so of a unique index: PostgreSQL caps an
#: index entry at about 2.7 KB, and a file name may take 1 KiB of it)
MAX_REASON = 256
_NUMBER_GOES_ON = frozenset(".eE+-0123456789")
_DECODER = json.JSONDecoder()
_JSON_SPACE = re.compile(r"[ \t\r\n]+")
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


class JsonRootPage:
    """Project names from a PEP 691 JSON root page (``{"meta": ..., "projects": [{"name": ...}]}``)
    fed in chunks: ``feed`` yields the names completed so far.

    Memory holds the value being read and the chunk after it: one project entry, or one other
    top-level value (``meta``), each at most ``MAX_ENTRY`` characters (``ValueError`` beyond, and
    for anything that is not such a page).
    """

    def __init__(self) -> None:
        self._text = ""
        self._at = 0
        self._closed = False
        #: what comes next: "start", "key", "colon", "value", "item", "after_item", "after_value", "done"
        self._state = "start"
        self._key: object = None
        self._projects_seen = False
        #: characters the value being read must have before it is decoded again (each failed try
        #: doubles it, so a value cut into tiny chunks is not decoded again at every chunk)
        self._need = 0

    def feed(self, chunk: str) -> Iterator[str]:
        self._text = self._text[self._at :] + chunk
        self._at = 0
        yield from self._read()

    def close(self) -> Iterator[str]:
        self._closed = True
        yield from self._read()
        if self._state != "done":
            raise ValueError("the JSON root page ends early")
        if not self._projects_seen:
            raise ValueError("a PEP 691 root page must hold a 'projects' list")

    def _read(self) -> Iterator[str]:
        while (char := self._next_char()) != "":
            state = self._state
            if state == "start":
                self._expect(char, "{", "a JSON root page must be an object")
                self._state = "key"
            elif state == "key" and char == "}":
                self._at += 1
                self._state = "done"
            elif state == "key":
                found, key = self._value()
                if not found:
                    return
                self._key, self._state = key, "colon"
            elif state == "colon":
                self._expect(char, ":", "expected ':' after a key")
                self._state = "value"
            elif state == "value" and self._key == "projects":
                self._expect(char, "[", "'projects' must be a list")
                self._state, self._projects_seen = "item", True
            elif state == "item" and char == "]":
                self._at += 1
                self._state = "after_value"
            elif state in ("value", "item"):
                found, value = self._value()
                if not found:
                    return
                if state == "item":
                    self._state = "after_item"
                    name = value.get("name") if isinstance(value, dict) else None
                    if not isinstance(name, str):
                        raise ValueError("each project must be an object with a 'name'")
                    if name.strip():
                        yield name.strip()[:MAX_TEXT]
                else:
                    self._state = "after_value"
                    if self._key == "meta":
                        _check_api_version(value)
            elif state == "after_item":
                self._at += 1
                if char not in ",]":
                    raise ValueError("expected ',' or ']' after a project")
                self._state = "item" if char == "," else "after_value"
            elif state == "after_value":
                self._at += 1
                if char not in ",}":
                    raise ValueError("expected ',' or '}' after a value")
                self._state = "key" if char == "," else "done"
            else:
                raise ValueError("extra data after the JSON root page")

    def _next_char(self) -> str:
        """The next character that is not white space, or "" when the text read so far is used up."""
        match = _JSON_SPACE.match(self._text, self._at)
        self._at = match.end() if match else self._at
        return self._text[self._at : self._at + 1]

    def _expect(self, char: str, wanted: str, problem: str) -> None:
        if char != wanted:
            raise ValueError(problem)
        self._at += 1

    def _value(self) -> tuple[bool, Any]:
        """(True, the JSON value here) when it is whole, (False, None) while more text may complete it."""
        available = len(self._text) - self._at
        waiting = not self._closed and available <= MAX_ENTRY
        if waiting and available < self._need:
            return False, None
        try:
            value, end = _DECODER.raw_decode(self._text, self._at)
        except json.JSONDecodeError as exc:
            if waiting:  # cut by the end of the text so far (or bad: known once it is too long)
                self._need = 2 * available
                return False, None
            too_long = available > MAX_ENTRY
            raise ValueError(f"a value longer than {MAX_ENTRY} characters" if too_long else exc.msg) from None
        except RecursionError:
            raise ValueError("a value nested too deeply") from None
        if waiting and isinstance(value, int | float) and self._text[end : end + 1] in ("", *_NUMBER_GOES_ON):
            self._need = available + 1  # a number ("1", "1.", "1e") may go on in the next chunk
            return False, None
        if end - self._at > MAX_ENTRY:
            raise ValueError(f"a value longer than {MAX_ENTRY} characters")
        self._at, self._need = end, 0
        return True, value


def _check_api_version(meta: object) -> None:
    """Refuse a page of another major version of the JSON API than 1 (PEP 691 says clients must)."""
    version = meta.get("api-version") if isinstance(meta, dict) else None
    if isinstance(version, str) and version.split(".")[0].strip() != "1":
        raise ValueError(f"api-version {version[:20]!r} is not one this client reads (1.x)")


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
    if isinstance(data, dict):
        _check_api_version(data.get("meta"))
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
