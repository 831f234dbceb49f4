"""Open folder descriptors kept for a storage's writes, so each file costs no path walk."""

from __future__ import annotations

import contextlib
import os
import threading
import weakref


class DirFds:
    """Descriptors of ``root``'s sub-folders, opened (and created) on first use and kept until ``close``.

    Writing a small file through them is ``openat``, ``write``, ``fchmod``, ``close`` and ``renameat``:
    no path is resolved from ``/`` for each file. Safe to use from any thread.
    """

    def __init__(self, root: str) -> None:
        self._root = root
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_all, self._fds)

    def get(self, folder: str) -> int:
        """The descriptor of ``root/folder`` (a relative path), creating the folder if it is missing."""
        fd = self._fds.get(folder)
        if fd is not None:
            return fd
        with self._lock:
            fd = self._fds.get(folder)
            if fd is None:
                path = os.path.join(self._root, folder)
                os.makedirs(path, exist_ok=True)
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                self._fds[folder] = fd
            return fd

    def forget(self, folder: str) -> None:
        """Drop ``folder``'s descriptor (the folder was removed under us); the next ``get`` opens it again."""
        with self._lock:
            fd = self._fds.pop(folder, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            _close_all(self._fds)


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()
