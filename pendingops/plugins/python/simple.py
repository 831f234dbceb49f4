"""A version as a simple index: ``simple/`` lists projects, ``simple/{project}/`` its files.

HTML (PEP 503) unless the client prefers PEP 691 JSON (``application/vnd.pypi.simple.v1+json``),
at API version 1.1 (PEP 700): a project page has ``versions``, each file its ``size`` (when known:
stored, or declared by the remote) and ``upload-time`` (when the remote's JSON page gave one); a
yank reason is kept. A project asked for under any spelling of its name (``Foo_Bar``) answers for
the normalised one. File URLs point into the same version of the same server, with their sha256.
When a version holds one file name twice (an additive sync kept it both as it was and as yanked
later), the unit the latest version added is listed. ``static_pages`` writes both forms of every
page as files for an export: ``index.html`` and ``index.v1_json`` (as bandersnatch names them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from html import escape
from itertools import groupby
from typing import Any
from urllib.parse import quote

from sqlalchemy import true

from pendingops.plugins import PageResponse, VersionRef
from pendingops.plugins.python.content import PythonContent, file_path
from pendingops.plugins.python.core_metadata import METADATA_SUFFIX
from pendingops.plugins.python.distribution import sort_key
from pendingops.plugins.python.index_page import normalize
from pendingops.plugins.reading import artifact_size, artifact_stored

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
#: the simple API version of every page (PEP 629; 1.1 is PEP 700's)
API_VERSION = "1.1"
#: an exported page's two forms, by the names bandersnatch gives them
HTML_PAGE, JSON_PAGE = "index.html", "index.v1_json"
_PAGE = 1000
_HTML_HEAD = f'<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="{API_VERSION}">'
_dist = PythonContent.__table__


def simple_page(version: VersionRef, path: str, accept: str) -> PageResponse | None:
    """The page at ``path`` below ``simple/`` ("" for the project list), or None when there is none."""
    as_json = prefers_json(accept)
    if path == "":
        return PageResponse(JSON_TYPE if as_json else "text/html; charset=utf-8", _root(version, as_json))
    if "/" in path:
        return None
    name = normalize(path)
    rows = _files(version, name)
    if not rows:
        return None
    body = _project_json(version.base_url, name, rows) if as_json else _project_html(version.base_url, name, rows)
    return PageResponse(JSON_TYPE if as_json else "text/html; charset=utf-8", iter([body]))


def prefers_json(accept: str) -> bool:
    """Whether ``accept`` ranks PEP 691 JSON above HTML (an absent header means HTML)."""
    best = {"json": 0.0, "html": 0.0}
    for item in accept.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        group = "json" if kind == JSON_TYPE else "html" if kind in (HTML_TYPE, "text/html", "*/*") else None
        if group is not None:
            best[group] = max(best[group], q)
    return best["json"] > best["html"]


def _is_metadata(path: Any) -> Any:
    return path.endswith(METADATA_SUFFIX)


def _is_file(path: Any) -> Any:
    return ~path.endswith(METADATA_SUFFIX)


def _members(version: VersionRef, *where: Any) -> Iterator[Any]:
    """The version's distributions (one per project and file name: the unit the latest version added),
    with ``metadata_held`` and the file's ``size``; in an export, only those whose file is stored."""
    stored_file = [artifact_stored(PythonContent, _is_file)] if version.stored_only else []
    held = artifact_stored(PythonContent, _is_metadata) if version.stored_only else true()
    columns = (held.label("metadata_held"), artifact_size(PythonContent, _is_file).label("size"))
    return version.units(PythonContent, latest_per=("name", "filename"), where=[*where, *stored_file], columns=columns)


def _files(version: VersionRef, name: str) -> list[Any]:
    return list(_members(version, _dist.c.name == name))


def _root(version: VersionRef, as_json: bool) -> Iterator[bytes]:
    if as_json:
        yield b'{"meta": {"api-version": "%s"}, "projects": [' % API_VERSION.encode()
    else:
        yield _HTML_HEAD.encode() + b"<title>Simple index</title></head><body>\n"
    first = True
    for page in _name_pages(version):
        if as_json:
            parts = [json.dumps({"name": name}) for name in page]
            yield (("" if first else ", ") + ", ".join(parts)).encode()
        else:
            yield "".join(f'<a href="{quote(name)}/">{escape(name)}</a><br>\n' for name in page).encode()
        first = False
    yield b"]}" if as_json else b"</body></html>\n"


def _name_pages(version: VersionRef) -> Iterator[list[str]]:
    """The version's project names in order, a page at a time."""
    page: list[str] = []
    stored_file = [artifact_stored(PythonContent, _is_file)] if version.stored_only else []
    for row in version.units(PythonContent, latest_per=("name",), where=stored_file):
        page.append(row.name)
        if len(page) >= _PAGE:
            yield page
            page = []
    if page:
        yield page


def static_pages(version: VersionRef) -> Iterator[tuple[str, Iterable[bytes]]]:
    """The version's simple index as static files below ``simple/``: ``index.html`` and
    ``index.v1_json``, and the same in ``{project}/``, (path, bytes) each, with links relative to
    the page.

    Any static web server (or pip given a ``file://`` index URL) serves the tree as an HTML index;
    one that answers a folder with ``index.v1_json`` when asked for JSON serves the PEP 691 form
    too. The files of a page are read for a page of projects at once.
    """
    yield HTML_PAGE, _root(version, as_json=False)
    yield JSON_PAGE, _root(version, as_json=True)
    for names in _name_pages(version):
        for name, files in groupby(_members(version, _dist.c.name.in_(names)), key=lambda row: row.name):
            latest = list(files)
            # from simple/{project}/, the version's top folder is two levels up
            yield f"{name}/{HTML_PAGE}", [_project_html("../../", name, latest)]
            yield f"{name}/{JSON_PAGE}", [_project_json("../../", name, latest)]


def _has_metadata(row: Any) -> bool:
    """Whether the unit holds its metadata file (synced only when the index gave its digest)."""
    return row.core_metadata is not None and len(row.core_metadata) == 64 and row.metadata_held


def _url(base_url: str, row: Any) -> str:
    return base_url + quote(file_path(row.name, row.filename))


def _project_html(base_url: str, name: str, rows: list[Any]) -> bytes:
    lines = [_HTML_HEAD, f"<title>Links for {escape(name)}</title></head><body><h1>Links for {escape(name)}</h1>"]
    for row in rows:
        attrs = ""
        if row.requires_python:
            attrs += f' data-requires-python="{escape(row.requires_python)}"'
        if row.yanked:
            attrs += f' data-yanked="{escape(row.yanked_reason or "")}"'
        if _has_metadata(row):
            attrs += f' data-dist-info-metadata="sha256={row.core_metadata}"'
            attrs += f' data-core-metadata="sha256={row.core_metadata}"'
        href = f"{_url(base_url, row)}#sha256={row.sha256}"
        lines.append(f'<a href="{escape(href)}"{attrs}>{escape(row.filename)}</a><br>')
    lines.append("</body></html>\n")
    return "\n".join(lines).encode()


def _project_json(base_url: str, name: str, rows: list[Any]) -> bytes:
    files = []
    for row in rows:
        entry: dict[str, Any] = {
            "filename": row.filename,
            "url": _url(base_url, row),
            "hashes": {"sha256": row.sha256},
        }
        if row.requires_python:
            entry["requires-python"] = row.requires_python
        entry["yanked"] = (row.yanked_reason or True) if row.yanked else False
        if _has_metadata(row):
            entry["dist-info-metadata"] = entry["core-metadata"] = {"sha256": row.core_metadata}
        if row.size is not None:  # unknown only for a file not fetched yet whose remote declared none
            entry["size"] = row.size
        if row.upload_time is not None:
            entry["upload-time"] = row.upload_time
        files.append(entry)
    versions = sorted({row.version for row in rows}, key=sort_key)
    page = {"meta": {"api-version": API_VERSION}, "name": name, "versions": versions, "files": files}
    return json.dumps(page).encode()
