"""Running the content server until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from pendingops.serve.app import ContentServer


def url_of(host: str, port: int) -> str:
    """The http URL of ``host:port`` (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def serve(server: ContentServer, host: str, port: int, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve on ``host:port`` (0: a free port) until SIGINT or SIGTERM, then stop cleanly."""
    runner = web.AppRunner(server.build_app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
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
