"""The content server's access log: one line per answered request on the ``pendingops.access`` logger.

A line gives the client's address, the method, the request target as sent, the status, the body
bytes sent and the seconds from the request's arrival to its last byte (and the user, with
``--htpasswd``); each is a field of its own in JSON lines.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import hdrs, web

log = logging.getLogger("pendingops.access")
#: the request key under which authentication leaves the user's name (a typed key where aiohttp has them)
USER: Any = web.RequestKey("pendingops.user", str) if hasattr(web, "RequestKey") else "pendingops.user"


def log_request(request: web.BaseRequest, status: int, body_bytes: int | None, seconds: float) -> None:
    """Write the access log line of one answered request (``body_bytes`` None: the answer was cut short)."""
    if not log.isEnabledFor(logging.INFO):
        return
    client, user, method, path = request.remote, request.get(USER), request.method, request.raw_path
    shown = "-" if body_bytes is None else body_bytes
    fields = {
        "client": client,
        "user": user,
        "method": method,
        "path": path,
        "status": status,
        "bytes": body_bytes,
        "duration_s": round(seconds, 6),
    }
    message = '%s %s "%s %s" %d %s %.3fs'
    arguments = (client or "-", user or "-", method, path, status, shown, seconds)
    # made and handed on as log.info would, without looking up the caller's frame (one line per request)
    log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, message, arguments, None, extra=fields))


def body_bytes(request: web.BaseRequest, response: web.StreamResponse) -> int | None:
    """The body bytes an answered request was sent; None when its answer was cut short.

    Its Content-Length when it had one; for a chunked answer, what was written after the headers.
    """
    if request.method == hdrs.METH_HEAD or response.status in (204, 304) or response.status < 200:
        return 0
    written = response.body_length  # set when the answer's end was written: headers and body
    if not written:
        return None
    if response.content_length is not None:
        return response.content_length
    return max(0, written - _header_bytes(request, response))


def _header_bytes(request: web.BaseRequest, response: web.StreamResponse) -> int:
    """The size of the status line and headers as aiohttp writes them."""
    version = request.version
    size = len(f"HTTP/{version.major}.{version.minor} {response.status} {response.reason}\r\n\r\n".encode())
    return size + sum(len(name.encode()) + len(value.encode()) + 4 for name, value in response.headers.items())
