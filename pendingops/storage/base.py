"""The interface every artifact storage backend implements."""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


class StorageError(OSError):
    """The storage cannot be used (missing, unwritable...); the message says why."""


class StorageFull(StorageError):
    """The storage or its temporary area has no space left.

    It stops the whole sync, whatever the error policy: skipping every unit that could not be
    written would make a wrong version. Nothing half-written is kept; the rerun fetches the rest.
    """


class StorageUnavailable(StorageError):
    """The storage stayed unreachable (connection errors, timeouts, 5xx answers) for its whole retry time.

    Like ``StorageFull`` it stops the whole sync, whatever the error policy: skipping the units it
    could not store would make a short version. The message names the storage and the last failure.
    """


#: the errors that stop a whole sync, whatever its error policy
SYNC_STOPPING = (StorageFull, StorageUnavailable)

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def storage_full(exc: BaseException, folder: object) -> StorageFull | None:
    """The StorageFull error to raise instead of ``exc`` when it says a write to ``folder`` ran out of space."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return StorageFull(f"no space left in {folder} ({exc.strerror}); no new version; free space and rerun")
    return None


def set_retry_seconds(storage: ArtifactStorage, seconds: float) -> None:
    """Ride out outages of ``storage`` for ``seconds`` (a no-op for a backend that has none to ride out)."""
    if hasattr(storage, "retry_seconds"):
        storage.retry_seconds = seconds


def missing_locations(storage: ArtifactStorage, locations: Iterable[str]) -> set[str]:
    """The ``locations`` whose file the storage does not hold (a backend may answer for many at once)."""
    batch = getattr(storage, "missing", None)
    if batch is not None:
        return set(batch(locations))
    return {location for location in locations if not storage.exists(location)}


@runtime_checkable
class ArtifactStorage(Protocol):
    """Where verified artifact bytes live, addressed by sha256.

    Downloads are written to ``new_temp_path()`` (a local file) and handed to ``put`` only once
    their size and digests are verified, so a reader never sees a partial artifact.
    """

    def new_temp_path(self) -> Path:
        """A fresh local path for an in-progress download (the file does not exist yet)."""
        ...

    def put(self, temp_path: Path, sha256: str) -> str:
        """Move a verified file into place and return its location; idempotent per sha256.

        Blocking: for commands and threads. Downloads on the event loop call ``put_async``.
        """
        ...

    async def put_async(self, temp_path: Path, sha256: str) -> str:
        """``put`` for the event loop: a local backend renames in place, a remote one uploads without blocking it."""
        ...

    def location_for(self, sha256: str) -> str:
        """The location an artifact with this digest has (or would have)."""
        ...

    def exists(self, location: str) -> bool: ...

    async def exists_async(self, location: str) -> bool:
        """``exists`` for the event loop."""
        ...

    def open(self, location: str) -> BinaryIO: ...

    def local_path(self, location: str) -> Path | None:
        """A filesystem path to the artifact when the backend has one (used for hard links)."""
        ...

    def delete(self, location: str) -> None: ...

    def remove_stale_temp_files(self) -> int:
        """Remove temporary files and work folders left by processes that died; return how many."""
        ...

    def iter_locations(self) -> Iterator[str]:
        """Every stored artifact's location (for audits and orphan cleanup)."""
        ...

    def close(self) -> None:
        """Release connections and threads (a no-op for local storage)."""
        ...

    def read_marker(self, name: str) -> str | None:
        """The text of a small record kept beside the artifacts (its owner...), or None if there is none."""
        ...

    def create_marker(self, name: str, text: str) -> bool:
        """Write that record atomically unless it exists; return False when it already did."""
        ...

    def modified_before(self, location: str, when: float) -> bool:
        """True when the artifact at ``location`` was written before ``when`` (a Unix time), or may have been."""
        ...
