"""A test server on its own event loop in a background thread, for tests that run subprocesses."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.remote_server import RemoteServer


class ServerThread:
    """A RemoteServer serving ``files`` (or any loopback ``server``) on its own loop in a background thread."""

    def __init__(self, files: dict[str, bytes] | None = None, *, server: Any = None) -> None:
        self.server = server if server is not None else RemoteServer(dict(files or {}))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
