"""Cross-process locks: one sync at a time per repository; no orphan cleanup during a sync.

PostgreSQL: session-level advisory locks on a connection held while the lock is (released by the
server if the process dies). SQLite file: ``flock`` on files beside the database (released by the
kernel if the process dies). In-memory SQLite lives in one process, so an in-process lock does.
Because a dead holder releases its lock, an incomplete version found by a repository lock's new
holder is known to be abandoned and is discarded.

Every sync holds the store lock shared; orphan cleanup holds it exclusively, so it never deletes
content or artifacts a running sync has found and is about to use. A wait for a lock can be
cancelled at any moment (a deadline on a sync) and leaves nothing held behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import os
import threading
from collections.abc import Callable
from typing import IO, Any, Self, TypeVar

from pendingops.db.database import Database

T = TypeVar("T")
_REPOSITORY_NAMESPACE = 0x70656E64  # "pend": keeps our advisory lock ids apart from other apps'
_STORE_NAMESPACE = 0x73746F72  # "stor"
#: how often a cancellable wait retries a file or in-process lock (seconds, growing to the maximum)
_POLL_FIRST, _POLL_MAX = 0.005, 0.2


class LockBusy(RuntimeError):
    """The lock is held elsewhere and the caller asked not to wait."""


class _InProcessLock:
    """A shared/exclusive lock between threads of this process (for in-memory SQLite)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._shared = 0
        self._exclusive = False

    def try_acquire(self, shared: bool) -> bool:
        with self._guard:
            if self._exclusive or (not shared and self._shared):
                return False
            if shared:
                self._shared += 1
            else:
                self._exclusive = True
            return True

    def release(self, shared: bool) -> None:
        with self._guard:
            if shared:
                self._shared -= 1
            else:
                self._exclusive = False


_in_process: dict[tuple[int, str], _InProcessLock] = {}
_in_process_guard = threading.Lock()


def _in_process_lock(engine: Any, name: str) -> _InProcessLock:
    with _in_process_guard:
        return _in_process.setdefault((id(engine), name), _InProcessLock())


class _Lock:
    def __init__(self, db: Database, namespace: int, key: int, file_suffix: str, *, shared: bool) -> None:
        self._db = db
        self._namespace = namespace
        self._key = key
        self._file_suffix = file_suffix
        self._shared = shared
        self._connection: Any = None
        self._file: IO[bytes] | None = None
        self._memory: _InProcessLock | None = None
        #: the session holding the lock was lost and the lock not taken again yet
        self._lost = False
        self._ensure_guard = threading.Lock()

    busy_message = "the lock is held by another process"
    name = "lock"

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None or self._memory is not None

    async def acquire(self, *, wait: bool = True) -> None:
        """Take the lock; with ``wait``, wait (without blocking the event loop) until the holder lets go.

        Cancelling the wait leaves the lock free: a PostgreSQL wait is cancelled on the server, and a
        lock granted just as the caller was cancelled is released at once.
        """
        if self._db.dialect == "postgresql":
            got = await self._acquire_advisory_async(wait)
        else:
            got = self.acquire_blocking(False)
            delay = _POLL_FIRST
            while not got and wait:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _POLL_MAX)
                got = self.acquire_blocking(False)
        if not got:
            raise LockBusy(self.busy_message)

    def acquire_blocking(self, wait: bool = True) -> bool:
        """Take the lock from a thread that may block; return False if busy and not ``wait``."""
        if self._db.dialect == "postgresql":
            connection = self._db.engine.connect()
            return self._advisory_lock(connection, wait)
        if self._local_file() is None:
            lock = _in_process_lock(self._db.engine, self._file_suffix)
            while not lock.try_acquire(self._shared):
                if not wait:
                    return False
                threading.Event().wait(_POLL_FIRST)
            self._memory = lock
            return True
        self._file = open(self._local_file(), "ab")  # noqa: SIM115 - held while locked
        mode = fcntl.LOCK_SH if self._shared else fcntl.LOCK_EX
        try:
            fcntl.flock(self._file, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            return False
        return True

    def _local_file(self) -> str | None:
        database = self._db.engine.url.database
        if not database or database == ":memory:":
            return None
        return f"{os.path.abspath(database)}.{self._file_suffix}.lock"


    async def _acquire_advisory_async(self, wait: bool) -> bool:
        connection = await asyncio.to_thread(self._db.engine.connect)
        pending = _lock_threads.submit(self._advisory_lock, connection, wait)
        try:
            return await asyncio.shield(asyncio.wrap_future(pending))
        except asyncio.CancelledError:
            threading.Thread(target=self._undo_cancelled_wait, args=(pending, connection), daemon=True).start()
            raise

    def _advisory_lock(self, connection: Any, wait: bool) -> bool:
        kind = "_shared" if self._shared else ""
        fn = f"pg_advisory_lock{kind}" if wait else f"pg_try_advisory_lock{kind}"
        try:
            got = connection.exec_driver_sql(f"SELECT {fn}({self._namespace}, {int(self._key)})").scalar()
            connection.commit()
        except BaseException:
            _drop(connection)
            raise
        if not wait and not got:  # pg_advisory_lock returns void once granted; the try form a boolean
            connection.close()
            return False
        self._connection = connection
        return True

    def _undo_cancelled_wait(self, pending: concurrent.futures.Future[bool], connection: Any) -> None:
        """After a cancelled wait: stop the server-side wait, and let go of a lock granted meanwhile."""
        if not pending.done():
            # The driver's cancel request names this very session (by its secret key), never another
            # that reused its process id; on an idle session it does nothing. If the session is
            # gone, so is its lock.
            with contextlib.suppress(Exception):
                connection.connection.dbapi_connection.cancel()
        try:
            got = pending.result()
        except BaseException:
            return  # the wait failed (cancelled on the server): the connection was dropped, nothing held
        if got:
            try:
                self.release()
            except Exception:
                _drop(connection)
                self._connection = None

    def transact(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in a transaction under the lock, from a thread that may block.

        On PostgreSQL it runs on the very session that holds the lock: if that session is lost (a
        restart, a failover), so is the statement, and the work never goes on without the lock, as
        it could on a fresh pooled connection. Elsewhere the lock cannot be lost while the process lives.
        """
        if self._connection is None:
            return self._db.transact(fn, *args)
        with self._connection.begin():
            return fn(self._connection, *args)

    def ensure_held(self) -> bool:
        """Check the lock is still held; if its session was lost, take it again without waiting.

        Returns True if the lock had been lost and was taken again: the caller must then check that
        nobody changed what the lock protects meanwhile. Raises LockBusy if someone else holds it now,
        and the connection error while the database is still out of reach (the lock stays lost).
        Callers on several threads at once take turns: only one takes the lock again.
        """
        with self._ensure_guard:
            if self._connection is None and not self._lost:
                return False  # a file or in-process lock cannot be lost while this process lives
            if self._connection is not None:
                try:
                    self._connection.exec_driver_sql("SELECT 1").scalar()
                    self._connection.commit()
                    return False
                except Exception:
                    _drop(self._connection)
                    self._connection, self._lost = None, True
            if not self.acquire_blocking(False):
                raise LockBusy(f"{self.busy_message} (this process lost its lock and another took it)")
            self._lost = False
            return True

    def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            kind = "_shared" if self._shared else ""
            try:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock{kind}({self._namespace}, {int(self._key)})")
                connection.commit()
                connection.close()
            except Exception:
                _drop(connection)  # closing the session is what frees a session lock for sure
                raise
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._memory is not None:
            self._memory.release(self._shared)
            self._memory = None

    def __enter__(self) -> Self:
        self.acquire_blocking(True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


#: threads that wait for PostgreSQL locks; a wait can outlive the coroutine that asked for it
_lock_threads = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="pendingops-lock")


def _drop(connection: Any) -> None:
    """Close a connection for good (not back to the pool), ending its server session and session locks."""
    try:
        connection.invalidate()
        connection.close()
    except Exception:
        pass


class RepositoryLock(_Lock):
    """Held while a version of one repository is being built."""

    busy_message = "another sync of this repository is running"
    name = "repository lock"

    def __init__(self, db: Database, repository_id: int) -> None:
        super().__init__(db, _REPOSITORY_NAMESPACE, repository_id, f"repo-{repository_id}", shared=False)


class StoreLock(_Lock):
    """Shared by running syncs, exclusive for orphan cleanup."""

    busy_message = "a sync or an orphan cleanup is running"
    name = "store lock"

    def __init__(self, db: Database, *, shared: bool) -> None:
        super().__init__(db, _STORE_NAMESPACE, 0, "store", shared=shared)
