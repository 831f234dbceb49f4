"""Running the content server until SIGINT or SIGTERM, in one process or several."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from pendingops.serve.app import ContentServer


def url_of(host: str, port: int) -> str:
    """The http URL of ``host:port`` (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def serve(
    server: ContentServer,
    host: str,
    port: int,
    *,
    on_ready: Callable[[str], None] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve on ``host:port`` (0: a free port), or on the listening ``sock``, until SIGINT or SIGTERM,
    then stop cleanly."""
    runner = server.runner()
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port) if sock is None else web.SockSite(runner, sock)
        await site.start()
        bound = runner.addresses[0][1]
        server.base_url = url_of(host, bound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(server.base_url)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    finally:
        await runner.cleanup()


def serve_processes(
    make_server: Callable[[], ContentServer],
    host: str,
    port: int,
    processes: int,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve from ``processes`` processes, each with a listening socket of its own on the same port
    (SO_REUSEPORT: the kernel spreads connections over them), until SIGINT or SIGTERM.

    The sockets are bound here, before the other processes are forked, so a port in use fails at
    once (OSError) and port 0 means one free port for all. ``make_server`` runs in each process
    after the fork: thread pools and database connections are never shared.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # bound without SO_REUSEPORT first: a port another server holds (even one of ours) is refused
    with socket.create_server((host, port), family=family) as probe:
        bound = probe.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        for _ in range(processes):
            sockets.append(socket.create_server((host, bound), family=family, reuse_port=True))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    children = []
    for own in sockets[1:]:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - measured by the command-line tests
            _child(make_server, host, own, sockets)
        children.append(pid)
    for sock in sockets[1:]:
        sock.close()
    try:
        asyncio.run(serve(make_server(), host, bound, on_ready=on_ready, sock=sockets[0]))
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)


def _child(
    make_server: Callable[[], ContentServer], host: str, own: socket.socket, sockets: list[socket.socket]
) -> None:
    code = 1
    try:
        for sock in sockets:
            if sock is not own:
                sock.close()
        asyncio.run(serve(make_server(), host, own.getsockname()[1], sock=own))
        code = 0
    finally:
        os._exit(code)
