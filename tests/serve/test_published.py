"""Index files plugins publish, generated from the database: the cookbook plugin's universe."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from pendingops.plugins.cookbook import CookbookPlugin, parse_universe
from pendingops.plugins.file import FilePlugin
from tests.plugins.cookbook_server import CookbookServer
from tests.plugins.test_cookbook import offer, sync
from tests.serve.served import content_server


def test_the_universe_points_back_at_this_server(db, storage) -> None:
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as origin:
            await sync(origin, db, storage, repository="books")
            tarballs = {key: version.tarball for key, version in origin.cookbooks.items()}
        plugins = [FilePlugin(), CookbookPlugin()]
        async with content_server(db, storage, plugins=plugins) as server, aiohttp.ClientSession() as session:
            async with session.get(server.base_url + "books/latest/universe") as response:
                assert response.status == 200 and response.content_type == "application/json"
                entries = parse_universe(await response.json())
            assert {(e.name, e.version) for e in entries} == set(tarballs)
            for entry in entries:
                assert entry.download_url.startswith(server.base_url + "books/1/")
                async with session.get(entry.download_url) as response:
                    assert await response.read() == tarballs[(entry.name, entry.version)]
            async with session.get(server.base_url + "books/latest/", headers={"Accept": "application/json"}) as r:
                names = {e["name"] for e in (await r.json())["entries"]}
            assert "universe" in names and "PULP_MANIFEST" not in names  # only the plugins of what it holds
            async with session.get(server.base_url + "books/0/universe") as response:
                assert await response.json() == {}  # an empty version publishes every plugin's index

    asyncio.run(scenario())


def test_export_writes_the_plugins_index_through_the_same_hook(db, storage, tmp_path) -> None:
    from pendingops.maintenance.export import export_version

    async def scenario() -> dict:
        async with CookbookServer(offer("apt@7.4.0", "nginx@2.7.6")) as origin:
            await sync(origin, db, storage, repository="books")
            return {key: version.tarball for key, version in origin.cookbooks.items()}

    tarballs = asyncio.run(scenario())
    dest = tmp_path / "out"
    result = export_version(db, storage, "books", dest, plugins=[FilePlugin(), CookbookPlugin()])
    assert result.published == ["universe", "api/ (2 pages)"] and not (dest / "PULP_MANIFEST").exists()
    # download URLs are relative to the universe: read where it lies, they are the exported tarballs
    entries = parse_universe(json.loads((dest / "universe").read_bytes()), (dest / "universe").absolute().as_uri())
    for entry in entries:
        assert entry.download_url.startswith(dest.absolute().as_uri() + "/")
        assert (dest / entry.download_url.rpartition("/")[2]).read_bytes() == tarballs[(entry.name, entry.version)]
