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

from sqlalchemy import Connection, func, select, true

from pendingops.db.schema import Artifact, ContentArtifact, RemoteArtifact, RepositoryContent
from pendingops.db.versions import membership_filter
from pendingops.plugins import PageResponse, VersionRef
from pendingops.plugins.python.content import PythonContent, file_path
from pendingops.plugins.python.core_metadata import METADATA_SUFFIX
from pendingops.plugins.python.distribution import sort_key
from pendingops.plugins.python.index_page import normalize

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
#: the simple API version of every page (PEP 629; 1.1 is PEP 700's)
API_VERSION = "1.1"
#: an exported page's two forms, by the names bandersnatch gives them
HTML_PAGE, JSON_PAGE = "index.html", "index.v1_json"
_PAGE = 1000
_HTML_HEAD = f'<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="{API_VERSION}">'
_dist = PythonContent.__table__
_rc = RepositoryContent.__table__
_ca = ContentArtifact.__table__
_artifact = Artifact.__table__
_ra = RemoteArtifact.__table__


def simple_page(version: VersionRef, path: str, accept: str) -> PageResponse | None:
    """The page at ``path`` below ``simple/`` ("" for the project list), or None when there is none."""
    as_json = prefers_json(accept)
    if path == "":
        return PageResponse(JSON_TYPE if as_json else "text/html; charset=utf-8", _root(version, as_json))
    if "/" in path:
        return None
    name = normalize(path)
    with version.db.engine.connect() as conn:
        rows = _files(conn.execution_options(isolation_level="AUTOCOMMIT"), version, name)
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


def _visible(query: Any, version: VersionRef) -> Any:
    """``query`` (over distributions) limited to the version's members, and to the units whose
    file is stored when the version is an export's."""
    query = query.join(_rc, _rc.c.content_id == _dist.c.id).where(
        membership_filter(version.repository_id, version.number)
    )
    return query.where(_stored(file=True).exists()) if version.stored_only else query


def _stored(*, file: bool) -> Any:
    """The unit's distribution file (``file``) or its metadata file, stored."""
    is_metadata = _ca.c.relative_path.endswith(METADATA_SUFFIX)
    return select(_ca.c.id).where(
        _ca.c.content_id == _dist.c.id, _ca.c.artifact_id.is_not(None), ~is_metadata if file else is_metadata
    )


def _file_size() -> Any:
    """The unit's distribution file's size: its stored artifact's, else what a remote declared (or NULL)."""
    is_file = (_ca.c.content_id == _dist.c.id) & ~_ca.c.relative_path.endswith(METADATA_SUFFIX)
    stored = select(_artifact.c.size).join(_ca, _ca.c.artifact_id == _artifact.c.id).where(is_file)
    declared = select(func.max(_ra.c.size)).join(_ca, _ca.c.id == _ra.c.content_artifact_id).where(is_file)
    return func.coalesce(stored.scalar_subquery(), declared.scalar_subquery())


def _members(version: VersionRef) -> Any:
    metadata_held = _stored(file=False).exists() if version.stored_only else true()
    query = select(_dist, _rc.c.version_added, metadata_held.label("metadata_held"), _file_size().label("size"))
    return _visible(query, version)


def _files(conn: Connection, version: VersionRef, name: str) -> list[Any]:
    query = _members(version).where(_dist.c.name == name)
    return _latest_per_file(conn.execute(_newest_first(query)))


def _newest_first(query: Any) -> Any:
    return query.order_by(_dist.c.name, _dist.c.filename, _rc.c.version_added.desc(), _dist.c.id.desc())


def _latest_per_file(rows: Iterable[Any]) -> list[Any]:
    """One row per file name, sorted newest first: the unit the latest version added (an additive
    sync may keep a file both as it was and as yanked later)."""
    found, seen = [], set()
    for row in rows:
        if row.filename not in seen:
            seen.add(row.filename)
            found.append(row)
    return found


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
    """The version's project names in order, a page at a time (one short connection each)."""
    names = _visible(select(_dist.c.name), version).distinct().order_by(_dist.c.name).limit(_PAGE)
    last: str | None = None
    while True:
        with version.db.engine.connect() as conn:
            query = names if last is None else names.where(_dist.c.name > last)
            page = list(conn.execution_options(isolation_level="AUTOCOMMIT").execute(query).scalars())
        if not page:
            return
        last = page[-1]
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
        query = _newest_first(_members(version).where(_dist.c.name.in_(names)))
        with version.db.engine.connect() as conn:
            rows = conn.execution_options(isolation_level="AUTOCOMMIT").execute(query).all()
        for name, files in groupby(rows, key=lambda row: row.name):
            latest = _latest_per_file(files)
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
