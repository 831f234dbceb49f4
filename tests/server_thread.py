"""A RemoteServer on its own event loop in a background thread, for tests that run subprocesses."""

from __future__ import annotations

import asyncio
import threading

from tests.remote_server import RemoteServer


class ServerThread:
    """A RemoteServer running on its own event loop in a background thread."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.server = RemoteServer(dict(files))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> RemoteServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
