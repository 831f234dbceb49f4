"""Folder listings as a browser gets them: every text taken from the data is escaped."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import aiohttp
from yarl import URL

from tests.serve.served import content_server, sync_files


def test_every_text_in_a_listing_is_escaped_titles_included(db, storage) -> None:
    """A folder named ``<b>&x`` and a repository with ``<`` in its name: titles, headings, names and
    links show them as text, never as markup."""

    async def scenario() -> None:
        await sync_files(db, storage, {"<b>&x/inside.txt": b"i"})
        await sync_files(db, storage, {"plain.txt": b"p"}, repository="a<b")
        async with content_server(db, storage) as server, aiohttp.ClientSession() as session:

            async def page(path: str) -> str:
                async with session.get(URL(server.base_url + path, encoded=True)) as response:
                    assert response.status == 200 and response.content_type == "text/html", path
                    return await response.text()

            folder = await page("r/latest/" + quote("<b>&x", safe="") + "/")
            assert "<title>Index of /r/latest/&lt;b&gt;&amp;x/</title>" in folder
            assert "<h1>Index of /r/latest/&lt;b&gt;&amp;x/</h1>" in folder
            assert "inside.txt" in folder
            version = await page("r/latest/")
            assert ">&lt;b&gt;&amp;x/</a>" in version
            repository = await page(quote("a<b", safe="") + "/")
            assert "<title>Index of /a&lt;b/</title>" in repository
            assert "<h1>Index of /a&lt;b/</h1>" in repository
            inside = await page(quote("a<b", safe="") + "/latest/")
            assert "<title>Index of /a&lt;b/latest/</title>" in inside and "plain.txt" in inside
            root = await page("")
            assert ">a&lt;b/</a>" in root
            for text in (folder, version, repository, inside, root):
                assert "<b>" not in text and "a<b" not in text and "&x" not in text.replace("&amp;x", "")

    asyncio.run(scenario())
