"""A version as a simple index: ``simple/`` lists projects, ``simple/{project}/`` its files.

HTML (PEP 503) unless the client prefers PEP 691 JSON (``application/vnd.pypi.simple.v1+json``).
A project asked for under any spelling of its name (``Foo_Bar``) answers for the normalised one.
File URLs point into the same version of the same server, with their sha256.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, select

from pendingops.db.schema import RepositoryContent
from pendingops.db.versions import membership_filter
from pendingops.plugins import PageResponse, VersionRef
from pendingops.plugins.python.index_page import normalize
from pendingops.plugins.python.plugin import PythonContent, file_path

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
_PAGE = 1000
_dist = PythonContent.__table__
_rc = RepositoryContent.__table__


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
    body = _project_json(version, name, rows) if as_json else _project_html(version, name, rows)
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


def _members(version: VersionRef) -> Any:
    return (
        select(_dist)
        .join(_rc, _rc.c.content_id == _dist.c.id)
        .where(membership_filter(version.repository_id, version.number))
    )


def _files(conn: Connection, version: VersionRef, name: str) -> list[Any]:
    query = _members(version).where(_dist.c.name == name).order_by(_dist.c.filename, _dist.c.id)
    rows, seen = [], set()
    for row in conn.execute(query):
        if row.filename not in seen:
            seen.add(row.filename)
            rows.append(row)
    return rows


def _root(version: VersionRef, as_json: bool) -> Iterator[bytes]:
    names = select(_dist.c.name).join(_rc, _rc.c.content_id == _dist.c.id)
    names = names.where(membership_filter(version.repository_id, version.number)).distinct()
    names = names.order_by(_dist.c.name).limit(_PAGE)
    if as_json:
        yield b'{"meta": {"api-version": "1.0"}, "projects": ['
    else:
        yield b'<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">'
        yield b"<title>Simple index</title></head><body>\n"
    last: str | None = None
    first = True
    while True:
        with version.db.engine.connect() as conn:
            query = names if last is None else names.where(_dist.c.name > last)
            page = list(conn.execution_options(isolation_level="AUTOCOMMIT").execute(query).scalars())
        if not page:
            break
        last = page[-1]
        if as_json:
            parts = [json.dumps({"name": name}) for name in page]
            yield (("" if first else ", ") + ", ".join(parts)).encode()
        else:
            yield "".join(f'<a href="{quote(name)}/">{escape(name)}</a><br>\n' for name in page).encode()
        first = False
    yield b"]}" if as_json else b"</body></html>\n"


def _has_metadata(row: Any) -> bool:
    """Whether the unit holds its metadata file (synced only when the index gave its digest)."""
    return row.core_metadata is not None and len(row.core_metadata) == 64


def _url(version: VersionRef, row: Any) -> str:
    return version.base_url + quote(file_path(row.name, row.filename))


def _project_html(version: VersionRef, name: str, rows: list[Any]) -> bytes:
    lines = [
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">',
        f"<title>Links for {escape(name)}</title></head><body><h1>Links for {escape(name)}</h1>",
    ]
    for row in rows:
        attrs = ""
        if row.requires_python:
            attrs += f' data-requires-python="{escape(row.requires_python)}"'
        if row.yanked:
            attrs += f' data-yanked="{escape(row.yanked_reason or "")}"'
        if _has_metadata(row):
            attrs += f' data-dist-info-metadata="sha256={row.core_metadata}"'
            attrs += f' data-core-metadata="sha256={row.core_metadata}"'
        href = f"{_url(version, row)}#sha256={row.sha256}"
        lines.append(f'<a href="{escape(href)}"{attrs}>{escape(row.filename)}</a><br>')
    lines.append("</body></html>\n")
    return "\n".join(lines).encode()


def _project_json(version: VersionRef, name: str, rows: list[Any]) -> bytes:
    files = []
    for row in rows:
        entry: dict[str, Any] = {"filename": row.filename, "url": _url(version, row), "hashes": {"sha256": row.sha256}}
        if row.requires_python:
            entry["requires-python"] = row.requires_python
        entry["yanked"] = (row.yanked_reason or True) if row.yanked else False
        if _has_metadata(row):
            entry["dist-info-metadata"] = entry["core-metadata"] = {"sha256": row.core_metadata}
        files.append(entry)
    return json.dumps({"meta": {"api-version": "1.0"}, "name": name, "files": files}).encode()
