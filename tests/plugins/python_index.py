"""Tiny wheels and sdists built by hand, laid out as a static PEP 503 index a RemoteServer serves;
an index answering in PEP 691 JSON when asked for it; a plain static file server for a folder
(``pendingops.testing.ServedFolder``)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace
from html import escape

from aiohttp import web

from pendingops.plugins.python.index_page import normalize
from pendingops.plugins.python.simple import JSON_TYPE, prefers_json
from pendingops.testing import ServedFolder
from tests.remote_server import RemoteServer


@dataclass(frozen=True)
class Dist:
    filename: str
    data: bytes
    requires_python: str | None = None
    yanked: str | None = None
    #: the core metadata file (PEP 658), when the index offers one
    metadata: bytes | None = None
    #: when it was uploaded (PEP 700), given in the index's JSON pages when set
    upload_time: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel(
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
    *,
    with_metadata: bool = False,
) -> Dist:
    """A pure-Python wheel installing module ``{name}`` (``VERSION`` holds its version); with
    ``with_metadata`` the index offers its METADATA as a PEP 658 file too."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name} for tests\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    members = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in members.items())
    members[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    offered = metadata.encode() if with_metadata else None
    return Dist(f"{module}-{version}-py3-none-any.whl", out.getvalue(), requires_python, metadata=offered)


def sdist(name: str, version: str) -> Dist:
    """An sdist (listed and mirrored; pip prefers the wheels next to it)."""
    module = name.replace("-", "_")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        data = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        member = tarfile.TarInfo(f"{module}-{version}/PKG-INFO")
        member.size, member.mtime = len(data), 1577836800
        archive.addfile(member, io.BytesIO(data))
    return Dist(f"{module}-{version}.tar.gz", out.getvalue())


def index_files(projects: dict[str, list[Dist]]) -> dict[str, bytes]:
    """A static index: ``simple/`` (names as given), ``simple/{normalised}/`` and ``files/{filename}``."""
    files = {}
    root = "".join(f'<a href="{normalize(name)}/">{escape(name)}</a>\n' for name in projects)
    files["simple/"] = f"<!DOCTYPE html><html><body>\n{root}</body></html>\n".encode()
    for name, dists in projects.items():
        anchors = []
        for dist in dists:
            attrs = f' data-requires-python="{escape(dist.requires_python)}"' if dist.requires_python else ""
            if dist.yanked is not None:
                attrs += f' data-yanked="{escape(dist.yanked)}"'
            if dist.metadata is not None:
                attrs += f' data-core-metadata="sha256={hashlib.sha256(dist.metadata).hexdigest()}"'
                files[f"files/{dist.filename}.metadata"] = dist.metadata
            anchors.append(
                f'<a href="../../files/{dist.filename}#sha256={dist.sha256}"{attrs}>{dist.filename}</a><br/>'
            )
            files[f"files/{dist.filename}"] = dist.data
        body = "\n".join(anchors)
        files[f"simple/{normalize(name)}/"] = f"<!DOCTYPE html><html><body>\n{body}\n</body></html>\n".encode()
    return files


def sample_projects() -> dict[str, list[Dist]]:
    """alpha-pkg 2.0 needs beta>=1.0; 2.5 is yanked; 3.0 needs a Python that does not exist; beta
    has a pre-release; gamma is not needed by anything. The index offers the metadata files of
    alpha-pkg 2.0 and beta 1.1, the ones pip picks."""
    return {
        "Alpha_Pkg": [
            wheel("alpha-pkg", "1.0"),
            wheel("alpha-pkg", "2.0", requires=("beta>=1.0",), with_metadata=True),
            sdist("alpha-pkg", "2.0"),
            replace(wheel("alpha-pkg", "2.5", requires=("beta>=1.0",)), yanked="broken build"),
            wheel("alpha-pkg", "3.0", requires=("beta>=1.0",), requires_python=">=4"),
        ],
        "beta": [wheel("beta", "1.0"), wheel("beta", "1.1", with_metadata=True), wheel("beta", "1.2rc1")],
        "gamma": [wheel("gamma", "0.1")],
    }


def json_root(names: list[str]) -> bytes:
    """A PEP 691 JSON root page listing ``names``, with the extras PyPI's carries."""
    projects = [{"name": name, "_last-serial": 1000 + n} for n, name in enumerate(names)]
    return json.dumps({"meta": {"_last-serial": 99, "api-version": "1.1"}, "projects": projects}, indent=1).encode()


def json_project(name: str, dists: list[Dist]) -> bytes:
    """A PEP 691 JSON project page for ``dists`` (files at ``files/{filename}``, as ``index_files`` lays
    them), at api-version 1.1 (PEP 700: each file's size, and its upload time when the dist has one)."""
    files = []
    for dist in dists:
        entry: dict[str, object] = {
            "filename": dist.filename,
            "url": f"../../files/{dist.filename}",
            "hashes": {"sha256": dist.sha256},
            "yanked": dist.yanked if dist.yanked else dist.yanked is not None,
            "size": len(dist.data),
        }
        if dist.upload_time is not None:
            entry["upload-time"] = dist.upload_time
        if dist.requires_python:
            entry["requires-python"] = dist.requires_python
        if dist.metadata is not None:
            entry["core-metadata"] = {"sha256": hashlib.sha256(dist.metadata).hexdigest()}
        files.append(entry)
    return json.dumps({"meta": {"api-version": "1.1"}, "name": normalize(name), "files": files}).encode()


@dataclass
class NegotiatingIndex(RemoteServer):
    """``index_files(projects)``, with the pages in PEP 691 JSON to a client that prefers it (by its
    Accept header); ``answered`` counts (path, "json" or "html")."""

    projects: dict[str, list[Dist]] = field(default_factory=dict)
    answered: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.files = index_files(self.projects)
        self._json = {"simple/": json_root(list(self.projects))}
        self._json |= {f"simple/{normalize(n)}/": json_project(n, d) for n, d in self.projects.items()}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path in self._json and prefers_json(request.headers.get("Accept", "")):
            self.answered[(path, "json")] += 1
            self.requests[path] += 1
            self.request_headers[path].append(dict(request.headers))
            return web.Response(body=self._json[path], content_type=JSON_TYPE)
        if path in self._json:
            self.answered[(path, "html")] += 1
        return await super()._handle(request)


class StaticFolder(ServedFolder):
    """``pendingops.testing.ServedFolder`` under the names the loopback test servers use (``base_url``)."""

    @property
    def base_url(self) -> str:
        return self.url
