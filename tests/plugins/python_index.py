"""Tiny wheels and sdists built by hand, laid out as a static PEP 503 index a RemoteServer serves."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass, replace
from html import escape

from pendingops.plugins.python.index_page import normalize


@dataclass(frozen=True)
class Dist:
    filename: str
    data: bytes
    requires_python: str | None = None
    yanked: str | None = None
    #: the core metadata file (PEP 658), when the index offers one
    metadata: bytes | None = None

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
