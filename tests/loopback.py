"""Serving a test's aiohttp application on 127.0.0.1, at a free port."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class LoopbackServer:
    """Mixin for test servers: ``build_app()`` makes the application; start, close, async with.

    The class using it declares ``base_url: str`` and ``_runner: web.AppRunner | None``. By default
    every GET goes to ``_handle``; a server with several routes overrides ``build_app``.
    """

    base_url: str
    _runner: web.AppRunner | None

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def start(self) -> str:
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
