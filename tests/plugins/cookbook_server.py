"""A real Supermarket-style cookbook remote on 127.0.0.1 for tests: universe, metadata, tarballs.

It serves ``/universe``, ``/api/v1/cookbooks/{name}/versions/{version}`` and each tarball (by
default at ``.../versions/{version}/download``), counts every request, can fail or hold chosen
responses, and records the order in which it served things.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.loopback import LoopbackServer

Key = tuple[str, str]


def make_tarball(
    name: str, version: str, *, metadata: dict[str, Any] | None = None, files: dict[str, bytes] | None = None
) -> bytes:
    """A gzipped cookbook tarball (same input, same bytes) holding ``name/metadata.json`` and ``files``.

    ``metadata`` overrides the generated metadata.json; pass ``{}`` to leave metadata.json out.
    """
    document = {"name": name, "version": version, "description": f"Installs {name}", "maintainer": "Test Kitchen"}
    if metadata is not None:
        document = metadata
    members = dict(files or {"README.md": f"# {name} {version}\n".encode()})
    if document:
        members["metadata.json"] = json.dumps(document, sort_keys=True).encode()
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path, data in sorted(members.items()):
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@dataclass
class CookbookVersion:
    """One cookbook version the server offers; ``path`` overrides where its tarball is served,
    ``download_url`` what the universe says (another host's url, a ``file://`` url...)."""

    tarball: bytes
    dependencies: dict[str, str] = field(default_factory=dict)
    license: str = "Apache-2.0"
    published_at: str = "2024-01-02T03:04:05Z"
    path: str | None = None
    download_url: str | None = None


def cookbook(name: str, version: str, *, tag: str = "", **options: Any) -> tuple[Key, CookbookVersion]:
    """A (key, CookbookVersion) pair with a generated tarball; ``tag`` changes its bytes."""
    tarball = make_tarball(name, version, files={"README.md": f"# {name} {version}{tag}\n".encode()})
    return (name, version), CookbookVersion(tarball, **options)


@dataclass
class CookbookServer(LoopbackServer):
    """Serves ``cookbooks`` ((name, version) -> CookbookVersion) like a Supermarket does.

    ``metadata_faults`` / ``tarball_faults`` map a version to the HTTP status to answer instead;
    ``delay`` holds every response that long; ``metadata_gates`` / ``tarball_gates`` hold a version's
    response until the event is set; ``on_tarball_served(name, version)`` runs after each tarball is
    served, ``on_metadata_request(name, version)`` when a metadata request arrives;
    ``universe_override`` is served as ``/universe`` instead of the generated one. ``events``
    lists ("universe" | "metadata" | "tarball", name, version) in the order served, and
    ("metadata-request", name, version) when a metadata request arrives.
    """

    cookbooks: dict[Key, CookbookVersion] = field(default_factory=dict)
    metadata_faults: dict[Key, int] = field(default_factory=dict)
    tarball_faults: dict[Key, int] = field(default_factory=dict)
    delay: float = 0.0
    metadata_gates: dict[Key, asyncio.Event] = field(default_factory=dict)
    tarball_gates: dict[Key, asyncio.Event] = field(default_factory=dict)
    on_tarball_served: Callable[[str, str], None] | None = None
    on_metadata_request: Callable[[str, str], None] | None = None
    tarball_requests: Counter[Key] = field(default_factory=Counter)
    metadata_requests: Counter[Key] = field(default_factory=Counter)
    universe_requests: int = 0
    universe_override: bytes | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/universe", self._universe)
        app.router.add_get("/api/v1/cookbooks/{name}/versions/{version}", self._metadata)
        app.router.add_get("/{path:.*}", self._tarball)
        return app

    def tarball_path(self, key: Key) -> str:
        name, version = key
        return self.cookbooks[key].path or f"api/v1/cookbooks/{name}/versions/{version}/download"

    def download_url(self, key: Key) -> str:
        return self.cookbooks[key].download_url or self.base_url + self.tarball_path(key)

    def universe(self) -> dict[str, dict[str, dict[str, Any]]]:
        document: dict[str, dict[str, dict[str, Any]]] = {}
        for (name, version), offered in sorted(self.cookbooks.items()):
            document.setdefault(name, {})[version] = {
                "download_url": self.download_url((name, version)),
                "dependencies": offered.dependencies,
                "location_type": "opscode",
                "location_path": self.base_url + "api/v1",
            }
        return document

    def tarball_count(self) -> int:
        return sum(self.tarball_requests.values())

    def metadata_count(self) -> int:
        return sum(self.metadata_requests.values())

    async def _hold(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)

    async def _universe(self, request: web.Request) -> web.Response:
        self.universe_requests += 1
        await self._hold()
        self.events.append(("universe", "", ""))
        if self.universe_override is not None:
            return web.Response(body=self.universe_override, content_type="application/json")
        return web.json_response(self.universe())

    async def _metadata(self, request: web.Request) -> web.Response:
        key = (request.match_info["name"], request.match_info["version"])
        self.metadata_requests[key] += 1
        self.events.append(("metadata-request", *key))
        if self.on_metadata_request is not None:
            self.on_metadata_request(*key)
        await self._hold()
        if key in self.metadata_gates:
            await self.metadata_gates[key].wait()
        if key not in self.cookbooks:
            return web.json_response({"error_code": "NOT_FOUND"}, status=404)
        if key in self.metadata_faults:
            return web.Response(status=self.metadata_faults[key])
        offered = self.cookbooks[key]
        self.events.append(("metadata", *key))
        return web.json_response(
            {
                "cookbook": f"{self.base_url}api/v1/cookbooks/{key[0]}",
                "version": key[1],
                "license": offered.license,
                "tarball_file_size": len(offered.tarball),
                "published_at": offered.published_at,
                "file": self.download_url(key),
                "dependencies": offered.dependencies,
            }
        )

    async def _tarball(self, request: web.Request) -> web.Response:
        path = unquote(request.match_info["path"])
        key = next((k for k in self.cookbooks if self.tarball_path(k) == path), None)
        if key is None:
            return web.Response(status=404)
        self.tarball_requests[key] += 1
        await self._hold()
        if key in self.tarball_gates:
            await self.tarball_gates[key].wait()
        if key in self.tarball_faults:
            return web.Response(status=self.tarball_faults[key])
        self.events.append(("tarball", *key))
        if self.on_tarball_served is not None:
            self.on_tarball_served(*key)
        return web.Response(body=self.cookbooks[key].tarball, content_type="application/x-gzip")
