"""Cross-process locks: one sync at a time per repository; no orphan cleanup during a sync.

PostgreSQL: session-level advisory locks on a connection held while the lock is (released by the
server if the process dies). SQLite: ``flock`` on files beside the database (released by the
kernel if the process dies). Because a dead holder releases its lock, an incomplete version found
by a repository lock's new holder is known to be abandoned and is discarded.

Every sync holds the store lock shared; orphan cleanup holds it exclusively, so it never deletes
content or artifacts a running sync has found and is about to use.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from typing import IO, Any

from pendingops.db.database import Database

_REPOSITORY_NAMESPACE = 0x70656E64  # "pend": keeps our advisory lock ids apart from other apps'
_STORE_NAMESPACE = 0x73746F72  # "stor"


class LockBusy(RuntimeError):
    """The lock is held elsewhere and the caller asked not to wait."""


class _Lock:
    def __init__(self, db: Database, namespace: int, key: int, file_suffix: str, *, shared: bool) -> None:
        self._db = db
        self._namespace = namespace
        self._key = key
        self._file_suffix = file_suffix
        self._shared = shared
        self._connection: Any = None
        self._file: IO[bytes] | None = None

    async def acquire(self, *, wait: bool = True) -> None:
        """Take the lock; with ``wait``, block (off the event loop) until the holder lets go."""
        if not await asyncio.to_thread(self.acquire_blocking, wait):
            raise LockBusy(self.busy_message)

    busy_message = "the lock is held by another process"

    def acquire_blocking(self, wait: bool = True) -> bool:
        if self._db.dialect == "postgresql":
            return self._acquire_advisory(wait)
        database = self._db.engine.url.database
        if not database or database == ":memory:":
            return True
        self._file = open(f"{os.path.abspath(database)}.{self._file_suffix}.lock", "ab")  # noqa: SIM115 - held
        mode = fcntl.LOCK_SH if self._shared else fcntl.LOCK_EX
        try:
            fcntl.flock(self._file, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            return False
        return True

    def _acquire_advisory(self, wait: bool) -> bool:
        kind = "_shared" if self._shared else ""
        fn = f"pg_advisory_lock{kind}" if wait else f"pg_try_advisory_lock{kind}"
        self._connection = self._db.engine.connect()
        got = self._connection.exec_driver_sql(f"SELECT {fn}({self._namespace}, {int(self._key)})").scalar()
        self._connection.commit()
        if not wait and not got:
            self._connection.close()
            self._connection = None
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            kind = "_shared" if self._shared else ""
            self._connection.exec_driver_sql(f"SELECT pg_advisory_unlock{kind}({self._namespace}, {int(self._key)})")
            self._connection.commit()
            self._connection.close()
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> _Lock:
        self.acquire_blocking(True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RepositoryLock(_Lock):
    """Held while a version of one repository is being built."""

    busy_message = "another sync of this repository is running"

    def __init__(self, db: Database, repository_id: int) -> None:
        super().__init__(db, _REPOSITORY_NAMESPACE, repository_id, f"repo-{repository_id}", shared=False)


class StoreLock(_Lock):
    """Shared by running syncs, exclusive for orphan cleanup."""

    busy_message = "a sync or an orphan cleanup is running"

    def __init__(self, db: Database, *, shared: bool) -> None:
        super().__init__(db, _STORE_NAMESPACE, 0, "store", shared=shared)
