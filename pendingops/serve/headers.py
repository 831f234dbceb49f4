"""Headers every answer of the content server carries, set in one place: stored files are inert in a browser.

A remote's ``evil.html`` or ``evil.svg`` is served from this server's origin; without these a
browser would run it there. ``X-Content-Type-Options: nosniff`` keeps a browser from taking a file
for another type than the one sent, and ``Content-Security-Policy: sandbox`` runs any document in
an opaque origin with no scripts, forms or popups. The listings and index pages this server
generates are plain HTML and CSS with links, which a sandboxed page still shows and follows.
"""

from __future__ import annotations

from aiohttp import web

NOSNIFF = "nosniff"
SANDBOX = "sandbox"


async def make_inert(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` signal handler: runs for every response, just before its headers go out."""
    response.headers.setdefault("X-Content-Type-Options", NOSNIFF)
    response.headers.setdefault("Content-Security-Policy", SANDBOX)
