"""TCP proxies that break connections on cue: one in front of PostgreSQL that can lose the answer to a
commit the server carried out, one in front of an S3 server that stalls, refuses or answers 503."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Self


class _Proxy:
    """Relays connections to ``127.0.0.1:target_port`` from a port of its own, on a thread of its own."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

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


class CuttingProxy(_Proxy):
    """Relays connections to ``127.0.0.1:target_port``, once cutting one after a marked commit.

    On the first connection that sends ``marker`` (a statement's text), the next ``COMMIT`` is passed
    to the server and then both sides are closed before the server's answer can come back: the
    transaction is committed, and the client sees only a lost connection.
    """

    def __init__(self, target_port: int, marker: bytes) -> None:
        super().__init__(target_port)
        self.marker = marker
        self.cuts = 0
        self._armed = True

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
        except (ConnectionError, OSError, asyncio.CancelledError):  # cut, or the proxy stopping
            pass
        finally:
            client_writer.transport.abort()
            server_writer.transport.abort()


_METHODS = (b"GET ", b"PUT ", b"HEAD ", b"POST ", b"DELETE ")
_SLOW_DOWN = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"
)


class FaultProxy(_Proxy):
    """Relays HTTP connections to an S3 server, and breaks them on cue (the test's, or the traffic's).

    - ``stall()``: whatever a client sends from now on is held, unanswered (the connection stays open);
      ``stall_after(k)``: the same once ``k`` more requests went through. ``heal()`` lets held data on.
      ``stall(reading=False)``: a held request's connection is not even read from, as a server that
      stopped reading: a body larger than the socket buffers cannot be sent whole.
    - ``refuse()``: the port stops listening (connections are refused) and open connections are cut;
      ``refuse_after(k)`` likewise after ``k`` more requests.
    - ``fail_next(n)``: the next ``n`` requests are answered ``503 SlowDown`` and their connection closed;
      ``fail_puts()``: every PUT from now on likewise (other requests go through).

    ``requests`` counts requests relayed, ``held`` requests held by a stall, ``dropped`` held
    connections their client gave up on (a read timeout): tests wait for those with ``wait_for``.
    """

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.requests = 0
        self.held = 0
        self.dropped = 0
        self.slowed = 0
        self._changed = threading.Condition()
        self._healed = asyncio.Event()
        self._healed.set()
        self._refusing = False
        self._failing = 0
        self._failing_puts = False
        self._trip: tuple[int, str] | None = None  # (requests count, "stall" or "refuse")
        self._reading_held = True  # a stall still reads (and keeps) what its held connections send
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()  # held here: the server keeps no reference

    # -- cues, from the test's thread ---------------------------------------------------------------

    def stall(self, *, reading: bool = True) -> None:
        self._on_loop(lambda: self._stall(reading))

    def stall_after(self, requests: int) -> None:
        self._on_loop(lambda: setattr(self, "_trip", (self.requests + requests, "stall")))

    def refuse(self) -> None:
        self._on_loop(self._refuse)

    def refuse_after(self, requests: int) -> None:
        self._on_loop(lambda: setattr(self, "_trip", (self.requests + requests, "refuse")))

    def fail_next(self, requests: int) -> None:
        self._on_loop(lambda: setattr(self, "_failing", requests))

    def fail_puts(self) -> None:
        self._on_loop(lambda: setattr(self, "_failing_puts", True))

    def heal(self) -> None:
        asyncio.run_coroutine_threadsafe(self._heal(), self._loop).result(30)

    def wait_for(self, counter: str, at_least: int, timeout: float = 120.0) -> None:
        """Block until ``self.<counter>`` reaches ``at_least`` (the timeout only keeps a broken test from hanging)."""
        with self._changed:
            if not self._changed.wait_for(lambda: getattr(self, counter) >= at_least, timeout):
                raise AssertionError(f"{counter} stayed at {getattr(self, counter)}, expected {at_least}")

    # -- on the proxy's loop -----------------------------------------------------------------------

    def _on_loop(self, function: Any) -> None:
        async def run() -> None:
            function()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def _count(self, counter: str) -> None:
        with self._changed:
            setattr(self, counter, getattr(self, counter) + 1)
            self._changed.notify_all()

    def _stall(self, reading: bool = True) -> None:
        self._reading_held = reading
        self._healed.clear()

    def _refuse(self) -> None:
        self._refusing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _heal(self) -> None:
        self._trip = None
        self._failing = 0
        self._failing_puts = False
        self._healed.set()
        if self._refusing:
            self._refusing = False
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

    def _on_request(self) -> None:
        self._count("requests")
        if self._trip is not None and self.requests >= self._trip[0]:
            action, self._trip = self._trip[1], None
            self._stall() if action == "stall" else self._refuse()

    async def _hold(self, reader: asyncio.StreamReader, data: bytes) -> bytes | None:
        """Keep what the client sends until healed (then return it all), or None when it hangs up first."""
        held = bytearray(data)
        healed = asyncio.ensure_future(self._healed.wait())
        if not self._reading_held:
            await healed
            return bytes(held)
        try:
            while True:
                reading = asyncio.ensure_future(reader.read(65536))
                await asyncio.wait({reading, healed}, return_when=asyncio.FIRST_COMPLETED)
                if reading.done():
                    chunk = reading.result()
                    if not chunk:
                        return None
                    held += chunk
                    continue
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading  # let go of the reader before the relay reads from it again
                return bytes(held)
        finally:
            healed.cancel()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            client_writer.transport.abort()
            return
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.add(client_writer)
        self._relays.add(asyncio.current_task())  # type: ignore[arg-type]

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                if data.startswith(_METHODS):
                    if self._failing > 0 or (self._failing_puts and data.startswith(b"PUT ")):
                        self._failing = max(self._failing - 1, 0)
                        self._count("slowed")
                        body = b"" if data.startswith(b"HEAD ") else _SLOW_DOWN
                        client_writer.write(
                            b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_SLOW_DOWN), body)
                        )
                        await client_writer.drain()
                        client_writer.close()
                        server_writer.transport.abort()
                        return
                    self._on_request()
                    if not self._healed.is_set():
                        self._count("held")
                        held = await self._hold(client_reader, data)
                        if held is None:  # the client gave up on the held request
                            self._count("dropped")
                            return
                        data = held
                if self._refusing:
                    return
                server_writer.write(data)
                await server_writer.drain()
            server_writer.close()

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(client_writer)
            self._relays.discard(asyncio.current_task())  # type: ignore[arg-type]
            client_writer.transport.abort()
            server_writer.transport.abort()
