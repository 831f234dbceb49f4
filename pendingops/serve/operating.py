"""What an operator adds to the content server: access log, metrics, health, authentication.

``install`` puts it on the aiohttp application in one place: the ``/-/health`` and ``/-/metrics``
routes (``-`` is a name no repository may have) and the authentication middleware; ``runner``
makes the AppRunner that reports every answered request, once its last byte is written, to the
metrics and the access log.
"""

from __future__ import annotations

import json

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger

from pendingops.db.database import Database
from pendingops.serve.access_log import USER, body_bytes, log, log_request
from pendingops.serve.auth import AuthUnavailable, BasicAuth
from pendingops.serve.health import Health
from pendingops.serve.metrics import ServeMetrics
from pendingops.storage.base import ArtifactStorage

HEALTH_PATH = "/-/health"
METRICS_PATH = "/-/metrics"
_HEALTH_ROUTE = "pendingops-health"
_CHALLENGE = {hdrs.WWW_AUTHENTICATE: 'Basic realm="pendingops"'}


class Operating:
    """The server's access log (``access_log``), metrics, health checks and, with ``auth``, its login."""

    def __init__(
        self, db: Database, storage: ArtifactStorage, *, access_log: bool = True, auth: BasicAuth | None = None
    ) -> None:
        self.access_log = access_log
        self.auth = auth
        self.metrics = ServeMetrics()
        self.health = Health(db, storage)

    def install(self, app: web.Application) -> None:
        """Add the routes under ``/-/`` and the authentication middleware (every path but the health check)."""
        app.router.add_get(HEALTH_PATH, self._health, name=_HEALTH_ROUTE)
        app.router.add_get(METRICS_PATH, self._metrics)
        if self.auth is not None:
            app.middlewares.append(self._authenticate)
        app.on_cleanup.append(self._close)

    def runner(self, app: web.Application) -> web.AppRunner:
        """An AppRunner for ``app`` that counts (and logs) each request once it is answered."""
        observer = type("_Observer", (_Observer,), {"operating": self})
        return web.AppRunner(app, handle_signals=False, access_log=log, access_log_class=observer)

    def answered(self, request: web.BaseRequest, response: web.StreamResponse, seconds: float) -> None:
        sent = body_bytes(request, response)
        self.metrics.answered(response.status, sent or 0, seconds)
        if self.access_log:
            log_request(request, response.status, sent, seconds)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: web.Handler) -> web.StreamResponse:
        assert self.auth is not None
        if request.match_info.route.name == _HEALTH_ROUTE:
            return await handler(request)
        try:
            user = await self.auth.user(request.headers.get(hdrs.AUTHORIZATION))
        except AuthUnavailable:
            return web.Response(status=503, text="the server cannot check credentials now; its log says why\n")
        if user is None:
            return web.Response(status=401, text="authentication required\n", headers=_CHALLENGE)
        request[USER] = user
        return await handler(request)

    async def _health(self, request: web.Request) -> web.Response:
        status, body = await self.health.report()
        headers = {hdrs.CACHE_CONTROL: "no-store"}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.exposition()
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type, hdrs.CACHE_CONTROL: "no-store"})

    async def _close(self, app: web.Application) -> None:
        self.health.close()
        if self.auth is not None:
            self.auth.close()


class _Observer(AbstractAccessLogger):
    """aiohttp's hook called when an answer's last byte is written (or its connection is lost)."""

    operating: Operating

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.operating.answered(request, response, time)
