"""Every answer of the content server is inert in a browser, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from tests.serve.served import GatedOrigin, content_server, file_url, sync_files
from tests.serve.test_on_demand import record

ACTIVE = {
    "evil.html": b"<html><body><script>fetch('/').then(r => r.text()).then(alert)</script></body></html>\n",
    "evil.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"/>\n',
    "large.bin": bytes(range(256)) * 1024,  # past the size kept in memory: sent with sendfile
}
INERT = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def inert(headers: object) -> dict[str, str | None]:
    return {name: headers.get(name) for name in INERT}  # type: ignore[attr-defined]


def test_every_answer_is_inert_stored_and_fetched_files_listings_and_errors(db, storage) -> None:
    async def scenario() -> None:
        await sync_files(db, storage, ACTIVE)
        async with GatedOrigin({"fetched.html": ACTIVE["evil.html"]}) as origin:
            origin.gate.set()
            await record(db, storage, origin, {"fetched.html": ACTIVE["evil.html"]}, repository="od")
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                answers = {
                    "stored html": ("GET", file_url(server, "evil.html"), {}),
                    "stored svg": ("GET", file_url(server, "evil.svg"), {}),
                    "stored, sendfile": ("GET", file_url(server, "large.bin"), {}),
                    "a range": ("GET", file_url(server, "large.bin"), {"Range": "bytes=0-9"}),
                    "HEAD": ("HEAD", file_url(server, "evil.html"), {}),
                    "fetched on request": ("GET", file_url(server, "fetched.html", repository="od"), {}),
                    "listing": ("GET", server.base_url + "r/latest/", {}),
                    "listing as JSON": ("GET", server.base_url + "r/latest/", {"Accept": "application/json"}),
                    "repositories": ("GET", server.base_url, {}),
                    "published index": ("GET", server.base_url + "r/latest/PULP_MANIFEST", {}),
                    "not found": ("GET", server.base_url + "r/latest/nothing-here", {}),
                    "redirect": ("GET", server.base_url + "r/latest", {}),
                    "method not allowed": ("POST", server.base_url, {}),
                }
                for what, (method, url, headers) in answers.items():
                    async with session.request(
                        method, URL(url, encoded=True), headers=headers, allow_redirects=False
                    ) as response:
                        await response.read()
                        assert inert(response.headers) == INERT, what
                async with session.get(URL(file_url(server, "evil.svg"), encoded=True)) as response:
                    assert response.headers["Content-Type"] == "image/svg+xml"  # the type stays; nosniff keeps it
                    etag = response.headers["ETag"]
                async with session.get(
                    URL(file_url(server, "evil.svg"), encoded=True), headers={"If-None-Match": etag}
                ) as response:
                    assert (response.status, inert(response.headers)) == (304, INERT)

    asyncio.run(scenario())
