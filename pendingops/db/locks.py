"""One sync at a time per repository, across processes.

PostgreSQL: a session-level advisory lock on a connection held for the whole sync (released by
the server if the process dies). SQLite: an ``flock`` on a file beside the database (released by
the kernel if the process dies). Because a dead holder releases the lock, an incomplete version
found by the lock's new holder is known to be abandoned and is discarded.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from typing import IO, Any

from pendingops.db.database import Database

_LOCK_NAMESPACE = 0x70656E64  # "pend": keeps our advisory lock ids apart from other apps'


class RepositoryBusy(RuntimeError):
    """Another sync holds the repository and ``wait`` was false."""


class RepositoryLock:
    """Held while a version of one repository is being built."""

    def __init__(self, db: Database, repository_id: int) -> None:
        self._db = db
        self._repository_id = repository_id
        self._connection: Any = None
        self._file: IO[bytes] | None = None

    async def acquire(self, *, wait: bool = True) -> None:
        """Take the lock; with ``wait`` block (off the event loop) until the holder finishes."""
        got = await asyncio.to_thread(self._acquire, wait)
        if not got:
            raise RepositoryBusy("another sync of this repository is running")

    def _acquire(self, wait: bool) -> bool:
        if self._db.dialect == "postgresql":
            self._connection = self._db.engine.connect()
            fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            result = self._connection.exec_driver_sql(
                f"SELECT {fn}({_LOCK_NAMESPACE}, {int(self._repository_id)})"
            ).scalar()
            self._connection.commit()
            if fn == "pg_try_advisory_lock" and not result:
                self._connection.close()
                self._connection = None
                return False
            return True
        database = self._db.engine.url.database
        if not database or database == ":memory:":
            return True
        self._file = open(f"{os.path.abspath(database)}.repo-{self._repository_id}.lock", "ab")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            self._connection.exec_driver_sql(
                f"SELECT pg_advisory_unlock({_LOCK_NAMESPACE}, {int(self._repository_id)})"
            )
            self._connection.commit()
            self._connection.close()
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
