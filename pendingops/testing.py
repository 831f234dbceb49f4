"""Helpers for testing a plugin: a served folder as its remote, a scratch database, its migrations.

``ServedFolder(root)`` serves a folder over HTTP on 127.0.0.1 as a plain static web server does (a
folder's URL answers with its ``index.html``) and counts the paths asked for. ``scratch_database()``
gives a fresh in-memory SQLite database, schema at head with every installed plugin's tables, and
an empty storage folder: cheap enough to make one per hypothesis example (well under a second).
``assert_migrations_match_models(plugin)`` runs the core's and the plugin's revisions on an empty
in-memory database and fails naming every column (or table) of the plugin's models that no revision
creates. See docs/plugins.md, "Testing a plugin".
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from aiohttp import web

from pendingops.db.database import Database, open_database
from pendingops.db.migrations.branches import core_branch
from pendingops.db.migrations.drift import compare
from pendingops.db.migrations.runner import alembic_config, migration_connection
from pendingops.plugins.database import migration_branches, plugin_branch
from pendingops.storage.local import LocalStorage

__all__ = ["ServedFolder", "assert_migrations_match_models", "scratch_database"]


class ServedFolder:
    """The files below ``root`` served on 127.0.0.1 (``async with ServedFolder(root) as served``).

    ``served.url`` is the folder's URL, ending in "/"; ``served.requests`` counts the paths asked for
    (relative to ``root``). Files may be added or changed while it serves: each request reads the disk.
    ``start()`` and ``close()`` do what ``async with`` does, for a server started in another thread.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.url = ""
        self.requests: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Start serving (on a free port); return ``url``. ``async with`` calls it."""
        app = web.Application()
        app.router.add_get("/{path:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"
        return self.url

    async def close(self) -> None:
        """Stop serving; ``async with`` calls it."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ServedFolder:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.requests[path] += 1
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root):
            return web.Response(status=404)
        if target.is_dir():
            if not request.path.endswith("/"):
                return web.Response(status=301, headers={"Location": request.path + "/"})
            target = target / "index.html"
        if not target.is_file():
            return web.Response(status=404)
        return web.FileResponse(target)


@contextmanager
def scratch_database() -> Iterator[tuple[Database, LocalStorage]]:
    """A fresh in-memory SQLite database (schema at head) and an empty storage folder, gone at the end.

    Every installed plugin's tables are created, as ``pendingops.open_database`` creates them.
    """
    db = open_database("sqlite://", branches=migration_branches)
    try:
        with tempfile.TemporaryDirectory(prefix="pendingops-test-") as folder:
            yield db, LocalStorage(Path(folder) / "storage")
    finally:
        db.close()


def assert_migrations_match_models(plugin: object) -> None:
    """Fail (``AssertionError``) when ``plugin``'s revisions do not create every table and column of its models.

    A plugin without ``migrations`` passes: its tables are created from the models. The check runs
    the core's revisions and the plugin's to their heads on a fresh in-memory SQLite database, then
    compares the plugin's tables with its models (Alembic's ``compare_metadata``).
    """
    from alembic import command

    name = str(getattr(plugin, "name", type(plugin).__name__))
    branch = plugin_branch(name, plugin)
    if branch is None:
        return
    branches = [core_branch(), branch]
    db = open_database("sqlite://", branches=lambda: branches, create=False)
    try:
        with migration_connection(db) as conn, conn.begin():
            command.upgrade(alembic_config(conn, branches), "heads")
            drifts = [d for d in compare(conn, branches) if d.owner == name]
    finally:
        db.close()
    if drifts:
        listed = "; ".join(d.describe() for d in drifts)
        raise AssertionError(f"plugin {name}: its models have what its migrations never create: {listed}")
