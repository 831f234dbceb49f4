"""A TCP proxy in front of PostgreSQL that can lose the answer to a commit the server carried out."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class CuttingProxy:
    """Relays connections to ``127.0.0.1:target_port``, once cutting one after a marked commit.

    On the first connection that sends ``marker`` (a statement's text), the next ``COMMIT`` is passed
    to the server and then both sides are closed before the server's answer can come back: the
    transaction is committed, and the client sees only a lost connection.
    """

    def __init__(self, target_port: int, marker: bytes) -> None:
        self.target_port = target_port
        self.marker = marker
        self.port = 0
        self.cuts = 0
        self._armed = True
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _start(self) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._relay, "127.0.0.1", 0)

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            relays = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in relays:
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        state: dict[str, Any] = {"marked": False, "cut": False}

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                if self._armed and self.marker in data:
                    state["marked"] = True
                cutting = state["marked"] and self._armed and b"COMMIT" in data
                if cutting:
                    # From here on nothing the server says reaches the client.
                    self._armed = False
                    state["cut"] = True
                server_writer.write(data)
                await server_writer.drain()
                if cutting:
                    self.cuts += 1
                    client_writer.transport.abort()
                    server_writer.close()
                    return
            server_writer.close()

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                if state["cut"]:
                    return
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            pass
        finally:
            client_writer.transport.abort()
            server_writer.transport.abort()
