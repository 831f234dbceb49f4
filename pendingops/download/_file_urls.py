"""Reading a ``file://`` remote: only regular files under the remote's own folder, symlinks resolved."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from typing import BinaryIO
from urllib.parse import urlsplit
from urllib.request import url2pathname


class FileRefused(Exception):
    """The file a URL names may not be read, or cannot be; the message says why (the URL not included)."""


def file_root(url: str) -> str:
    """The folder a ``file://`` remote may read under: the url's own folder, resolved."""
    path = os.path.realpath(url2pathname(urlsplit(url).path))
    return path if os.path.isdir(path) else os.path.dirname(path)


async def file_body(url: str, root: str | None, chunk_size: int) -> AsyncIterator[bytes]:
    """The bytes of the file ``url`` names, read on a worker thread, if it may be read (FileRefused if not)."""
    handle = await asyncio.to_thread(_open_local, url, root)
    try:
        while chunk := await asyncio.to_thread(handle.read, chunk_size):
            yield chunk
    finally:
        handle.close()


def _open_local(url: str, root: str | None) -> BinaryIO:
    """Open the regular file ``url`` names, if it lies under ``root`` once symlinks are resolved."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise FileRefused("refused: a file URL must not name a host")
    path = os.path.realpath(url2pathname(parts.path))
    if root is None or os.path.commonpath([root, path]) != root:
        raise FileRefused(f"refused: outside the remote's folder {root}")
    try:
        # Non-blocking, so a FIFO cannot hang the open; regular files ignore the flag.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise FileRefused(str(exc.strerror)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileRefused("refused: not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
