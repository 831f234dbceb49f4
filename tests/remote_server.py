"""A real HTTP file remote on 127.0.0.1 for tests: serves files from memory, counts, misbehaves."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from aiohttp import web

from tests.loopback import LoopbackServer


@dataclass
class Fault:
    """How the server misbehaves for one path: an HTTP ``status``; ``truncate`` (send fewer bytes
    than announced, then close); ``wrong_bytes`` (same size, other bytes); ``oversize`` (more
    bytes than the manifest says); ``endless`` (the file's bytes, then zeros until the client
    hangs up); ``stall`` seconds before the body; ``times`` faults before healing (None: forever).

    Also: ``drip`` seconds between writes of ``drip_size`` bytes of the body; ``reset`` (half the
    body, then a TCP reset instead of a proper end); ``redirect_loop`` (302 to the same URL);
    ``retry_after`` (a Retry-After header, in seconds or as an HTTP date, on a ``status`` response,
    503 when no status is given); ``html`` (200 with an HTML page instead of the bytes);
    ``redirect_to`` (302 to that URL, another server's for instance); ``until``: the ``stall`` ends
    when the test sets this event. A fault registered for ``PULP_MANIFEST`` applies to the manifest."""

    status: int | None = None
    truncate: bool = False
    wrong_bytes: bool = False
    oversize: int = 0
    stall: float = 0.0
    endless: bool = False
    times: int | None = None
    drip: float = 0.0
    drip_size: int = 4
    reset: bool = False
    redirect_loop: bool = False
    retry_after: float | str | None = None
    html: bool = False
    redirect_to: str | None = None
    until: threading.Event | None = None


#: what ``Fault(html=True)`` serves: a sign-in page, as a captive portal or a proxy would
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html>\n<head><title>Sign in</title></head>\n"
    b"<body><h1>Sign in to continue</h1><form method='post'><input name='user'></form></body>\n</html>\n"
)


@dataclass
class RemoteServer(LoopbackServer):
    """Serves ``files`` (relative path -> bytes) and a PULP_MANIFEST listing them."""

    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    delay: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    manifest_override: bytes | None = None
    #: ("start" | "end", path) for every file request, in the order they happened
    events: list[tuple[str, str]] = field(default_factory=list)
    #: body bytes written by ``endless`` responses, per path
    bytes_sent: Counter[str] = field(default_factory=Counter)
    #: time.monotonic() of every request, per path
    request_times: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    #: the headers of every request, per path
    request_headers: defaultdict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))
    _runner: web.AppRunner | None = None
    base_url: str = ""

    @property
    def manifest_url(self) -> str:
        return self.base_url + "PULP_MANIFEST"

    def manifest(self) -> bytes:
        if self.manifest_override is not None:
            return self.manifest_override
        lines = [f"{path},{hashlib.sha256(data).hexdigest()},{len(data)}" for path, data in sorted(self.files.items())]
        return ("\n".join(lines) + "\n").encode()

    def file_requests(self) -> int:
        return sum(count for path, count in self.requests.items() if path != "PULP_MANIFEST")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]  # already percent-decoded by aiohttp
        self.requests[path] += 1
        self.request_times[path].append(time.monotonic())
        self.request_headers[path].append(dict(request.headers))
        if path == "PULP_MANIFEST":
            if path in self.faults:
                return await self._respond(request, path, self.manifest())
            return web.Response(body=self.manifest())
        if path not in self.files:
            return web.Response(status=404)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.events.append(("start", path))
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return await self._respond(request, path, self.files[path])
        finally:
            self.in_flight -= 1
            self.events.append(("end", path))

    async def _respond(self, request: web.Request, path: str, data: bytes) -> web.StreamResponse:
        fault = self.faults.get(path)
        if fault is not None and fault.times is not None:
            if fault.times <= 0:
                fault = None
            else:
                fault.times -= 1
        if fault is None:
            return web.Response(body=data)
        if fault.stall:
            await _pause(request, fault.stall, fault.until)
        if fault.redirect_loop:
            return web.Response(status=302, headers={"Location": request.raw_path})
        if fault.redirect_to is not None:
            return web.Response(status=302, headers={"Location": fault.redirect_to})
        if fault.retry_after is not None:
            value = fault.retry_after
            header = value if isinstance(value, str) else f"{value:g}"
            return web.Response(status=fault.status or 503, headers={"Retry-After": header})
        if fault.status is not None:
            return web.Response(status=fault.status)
        if fault.html:
            return web.Response(body=HTML_PAGE, content_type="text/html")
        if fault.wrong_bytes:
            return web.Response(body=bytes((b + 1) % 256 for b in data) or b"x")
        if fault.oversize:
            return web.Response(body=data + b"\0" * fault.oversize)
        if fault.endless:
            return await self._endless(request, path, data)
        if fault.truncate:
            response = web.StreamResponse(headers={"Content-Length": str(len(data))})
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            request.transport.close()  # type: ignore[union-attr]
            return response
        if fault.reset:
            return await self._reset(request, data)
        if fault.drip:
            return await self._drip(request, data, fault)
        return web.Response(body=data)

    async def _reset(self, request: web.Request, data: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        await asyncio.sleep(0.01)  # let the first half reach the client
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:  # close with a RST, not a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return response

    async def _drip(self, request: web.Request, data: bytes, fault: Fault) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        size = max(1, fault.drip_size)
        try:
            for start in range(0, len(data), size):
                if start:
                    await _pause(request, fault.drip)
                await response.write(data[start : start + size])
            await response.write_eof()
        except (ConnectionError, RuntimeError):  # the client hung up
            pass
        return response

    async def _endless(self, request: web.Request, path: str, data: bytes) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"\0" * 65536
        try:
            await response.write(data)
            while True:
                await response.write(chunk)
                self.bytes_sent[path] += len(chunk)
        except (ConnectionError, RuntimeError):  # the client hung up
            return response


async def _pause(request: web.Request, seconds: float, until: threading.Event | None = None) -> None:
    """Sleep ``seconds``, or less if the client hangs up meanwhile (nothing is left to answer) or ``until`` is set."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if request.transport is None or request.transport.is_closing() or (until is not None and until.is_set()):
            return
        await asyncio.sleep(min(left, 0.02))


@dataclass
class LoginServer(RemoteServer):
    """A RemoteServer that answers 401 to any request without ``login`` (an Authorization header value)."""

    login: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != self.login:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return await super()._handle(request)
