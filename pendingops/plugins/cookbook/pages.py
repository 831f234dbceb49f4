"""The per-version metadata documents a cookbook version publishes, as a Supermarket serves them.

A sync asks ``api/v1/cookbooks/{name}/versions/{version}`` of every cookbook version it has not
saved yet (its license, tarball size and publication date). Publishing them below ``api/`` makes
a served version, or an export served by any static web server, a remote another pendingops syncs
from with its own database: the universe alone would leave every new unit failing on a 404.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from pendingops.plugins.cookbook.content import CookbookContent, tarball_path
from pendingops.plugins.protocol import PageResponse, PublishedPage, VersionRef

#: the page folder: the documents are ``api/{DOCUMENT}``
PREFIX = "api"
#: from a document's folder (``api/v1/cookbooks/{name}/versions/``) to the version's top folder
_TO_TOP = "../" * 5
_DOCUMENT = re.compile(r"v1/cookbooks/(?P<name>[^/]+)/versions/(?P<version>[^/]+)")
_MEDIA_TYPE = "application/json"


def document_path(name: str, version: str) -> str:
    """Where a cookbook version's metadata document is, below ``api/`` (as ``metadata_url`` asks)."""
    return f"v1/cookbooks/{name}/versions/{version}"


def version_document(row: Any, base_url: str) -> bytes:
    """The metadata document of one stored cookbook version; its ``file`` is ``base_url`` plus the tarball's path.

    It gives back what the sync read from the remote it came from (NULL stays null), so a copy
    synced from it holds the same values.
    """
    document = {
        "version": row.version,
        "license": row.license,
        "tarball_file_size": row.tarball_size,
        "published_at": row.published_at,
        "file": base_url + quote(tarball_path(row.name, row.version)),
        "dependencies": row.dependencies or {},
    }
    return json.dumps(document, sort_keys=True).encode()


def render(version: VersionRef, path: str, accept: str) -> PageResponse | None:
    """The metadata document at ``api/{path}`` when served, or None when the version has no such cookbook."""
    found = _DOCUMENT.fullmatch(path)
    if found is None:
        return None
    table = CookbookContent.__table__
    where = [table.c.name == found["name"], table.c.version == found["version"]]
    for row in version.units(CookbookContent, latest_per=("name", "version"), where=where):
        return PageResponse(_MEDIA_TYPE, iter([version_document(row, version.base_url)]))
    return None


def static(version: VersionRef) -> Iterator[tuple[str, Iterable[bytes]]]:
    """Every metadata document of the version as a file below ``api/``, its ``file`` link relative to it.

    With the export's ``stored_only``, only the cookbook versions whose tarball is exported.
    """
    for row in version.units(CookbookContent, latest_per=("name", "version")):
        yield document_path(row.name, row.version), [version_document(row, _TO_TOP)]


def metadata_pages() -> PublishedPage:
    """The page folder ``api/`` of the cookbook plugin: one file per cookbook version, served and exported."""
    return PublishedPage(PREFIX, render, static, files=True)
