"""``GET /-/health``: whether the server's database and storage answer, within a bounded time.

Each check is a cheap read (a one-row query on a table of the schema; the storage's owner record)
run on a thread of its own, and waited for at most ``timeout`` seconds: a database that is down or
hung makes the answer a 503 in time, never a request queued behind the server's own connections.
On PostgreSQL the query has a connection of its own. A check still running when the next request
arrives is shared, not started again, so a hung server never piles up threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, create_engine, literal, select

from pendingops.db.database import Database
from pendingops.db.schema import Repository
from pendingops.storage.base import ArtifactStorage
from pendingops.storage.owner import OWNER_MARKER

log = logging.getLogger("pendingops.serve")
#: seconds a check may take before the answer says it timed out (the whole answer stays under a second)
DEFAULT_TIMEOUT = 0.8
_PROBE = select(literal(1)).select_from(Repository.__table__).limit(1)


class Health:
    """Checks the database and the storage; ``report()`` is the status code and JSON body to answer."""

    def __init__(self, db: Database, storage: ArtifactStorage, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._db = db
        self._engine = _own_engine(db)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pendingops-health")
        self._checks: dict[str, Callable[[], None]] = {
            "database": self._check_database,
            "storage": lambda: _check_storage(storage),
        }
        self._running: dict[str, asyncio.Future[None]] = {}
        self._last: dict[str, str] = {}

    async def report(self) -> tuple[int, dict[str, str]]:
        """200 and ``{"status": "ok", "database": "ok", "storage": "ok"}``, or 503 naming what failed."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        body = {"status": "ok"} | dict(zip(names, results, strict=True))
        if any(result != "ok" for result in results):
            body["status"] = "unavailable"
            return 503, body
        return 200, body

    async def _run(self, name: str) -> str:
        """"ok", "timeout" or "error"; why it failed goes to the server's log, not to the client."""
        running = self._running.get(name)
        if running is None:
            running = asyncio.get_running_loop().run_in_executor(self._pool, self._checks[name])
            self._running[name] = running
            running.add_done_callback(lambda _: self._running.pop(name, None))
        try:
            await asyncio.wait_for(asyncio.shield(running), self.timeout)
            result, reason = "ok", ""
        except TimeoutError:
            result, reason = "timeout", f"no answer within {self.timeout} s"
        except Exception as exc:
            result, reason = "error", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if result != self._last.get(name, "ok"):  # said once per change, not at every probe
            if result == "ok":
                log.info("health: the %s answers again", name)
            else:
                log.warning("health: the %s failed its check: %s", name, reason)
        self._last[name] = result
        return result

    def _check_database(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(_PROBE).all()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._engine is not self._db.engine:
            self._engine.dispose()


def _own_engine(db: Database) -> Engine:
    """An engine of one connection for the checks on PostgreSQL; SQLite's own (a local file: nothing to wait for)."""
    if db.dialect != "postgresql":
        return db.engine
    options: dict[str, Any] = {"connect_timeout": 2, "options": "-c statement_timeout=2000"}
    return create_engine(db.engine.url, pool_size=1, max_overflow=0, pool_pre_ping=False, connect_args=options)


def _check_storage(storage: ArtifactStorage) -> None:
    """The storage answers and still holds the record of the database owning it (written on first use)."""
    if storage.read_marker(OWNER_MARKER) is None:
        raise FileNotFoundError(f"the storage's {OWNER_MARKER} is missing")
