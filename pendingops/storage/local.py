"""The default storage: a local directory laid out by digest."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

from pendingops.storage._dir_fds import DirFds
from pendingops.storage.base import StorageError

T = TypeVar("T")
_TEMP_DIR = "tmp"
# What opening an anonymous file answers where the filesystem (or kernel) has none
_NO_ANONYMOUS_FILES = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})
_ARTIFACT_DIR = "artifacts"


class LocalStorage:
    """Artifacts at ``ROOT/artifacts/ab/cdef...`` (sha256 split after two hex digits).

    In-progress downloads (and a sync's work folder, for manifests and indexes) go to ``ROOT/tmp``;
    downloads are renamed into place, which is atomic on one filesystem. Names there start with the
    writer's pid, so leftovers of a killed process can be told apart from a live sync's and removed
    by ``remove_stale_temp_files``.

    A stored file is never more readable than the storage folder itself (a folder of mode 0700
    holds files of mode 0600), and is writable by its owner only.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._shards: set[Path] = set()  # shard folders known to exist
        try:
            (self.root / _TEMP_DIR).mkdir(parents=True, exist_ok=True)
            (self.root / _ARTIFACT_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot use storage directory {self.root}: {exc.strerror}") from None
        if not os.access(self.root / _TEMP_DIR, os.W_OK) or not os.access(self.root / _ARTIFACT_DIR, os.W_OK):
            raise StorageError(f"cannot use storage directory {self.root}: not writable")
        self._file_mode = stat.S_IMODE(os.stat(self.root).st_mode) & 0o644
        self._dirs = DirFds(str(self.root))
        self._temp_names = itertools.count()
        self._temp_token = uuid.uuid4().hex[:12]
        # linking an anonymous file by name needs /proc (without CAP_DAC_READ_SEARCH)
        self._anonymous_files = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")

    def __str__(self) -> str:
        """The folder: how every message names this storage."""
        return str(self.root)

    def new_temp_path(self) -> Path:
        return self.root / _TEMP_DIR / f"{os.getpid()}-{uuid.uuid4().hex}.part"

    def location_for(self, sha256: str) -> str:
        return f"{_ARTIFACT_DIR}/{sha256[:2]}/{sha256[2:]}"

    def put(self, temp_path: Path, sha256: str) -> str:
        location = self.location_for(sha256)
        final = self.root / location
        if final.parent not in self._shards:
            final.parent.mkdir(exist_ok=True)
            self._shards.add(final.parent)
        os.chmod(temp_path, self._file_mode)
        os.replace(temp_path, final)
        return location

    async def put_async(self, temp_path: Path, sha256: str) -> str:
        # A rename: cheaper in place than a hop to a worker thread.
        return self.put(temp_path, sha256)

    def put_bytes_many(self, items: Sequence[tuple[str, bytes]]) -> list[OSError | None]:
        """Write each verified body of ``items`` (sha256, bytes) into place, as ``put`` would; one result per item.

        For many small files at once, on a worker thread. Where the filesystem has anonymous files
        (Linux's ``O_TMPFILE``), each body goes into an unnamed file in its shard folder, which is then
        linked under its digest name: one folder touched per file, and a crash leaves nothing behind.
        Elsewhere each is created in the temporary folder and renamed into place. Both work through kept
        folder descriptors (no path walk). A result is None when the file is in place, else the error
        that stopped it (nothing is left).
        """
        prefix = f"{os.getpid()}-{self._temp_token}-"
        results: list[OSError | None] = []
        for sha256, body in items:
            try:
                if not (self._anonymous_files and self._put_anonymous(sha256, body)):
                    self._put_bytes(f"{prefix}{next(self._temp_names)}.part", sha256, body)
                results.append(None)
            except OSError as exc:
                results.append(exc)
        return results

    def _put_anonymous(self, sha256: str, body: bytes) -> bool:
        """Write ``body`` as an unnamed file in its shard folder and link it under its digest name.

        False when this must be done the other way: the filesystem has no anonymous files (then never
        tried again), or a file of that name is there already (``put`` replaces it, a link cannot).
        """
        shard = f"{_ARTIFACT_DIR}/{sha256[:2]}"
        flags = os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC
        try:
            # an unnamed file in a shard folder removed under us is refused (EPERM), not ENOENT
            fd, shard_fd = self._in_shard(shard, lambda d: (os.open(".", flags, 0o600, dir_fd=d), d), PermissionError)
        except OSError as exc:
            if exc.errno not in _NO_ANONYMOUS_FILES:
                raise
            self._anonymous_files = False
            return False
        try:
            _write_all(fd, body)
            os.fchmod(fd, self._file_mode)
            try:
                os.link(f"/proc/self/fd/{fd}", sha256[2:], dst_dir_fd=shard_fd)
            except FileExistsError:
                return False
        finally:
            os.close(fd)  # an unlinked anonymous file is freed here
        return True

    def _put_bytes(self, name: str, sha256: str, body: bytes) -> None:
        temp_fd = self._dirs.get(_TEMP_DIR)
        shard = f"{_ARTIFACT_DIR}/{sha256[:2]}"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=temp_fd)
        try:
            try:
                _write_all(fd, body)
                os.fchmod(fd, self._file_mode)
            finally:
                os.close(fd)
            self._in_shard(shard, lambda d: os.rename(name, sha256[2:], src_dir_fd=temp_fd, dst_dir_fd=d))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=temp_fd)
            raise

    def _in_shard(self, shard: str, action: Callable[[int], T], *gone: type[OSError]) -> T:
        """``action(shard folder's descriptor)``; if the folder was removed under us (FileNotFoundError, or
        ``gone``), it is opened (made) again and ``action`` tried once more."""
        try:
            return action(self._dirs.get(shard))
        except (FileNotFoundError, *gone):
            self._dirs.forget(shard)
            return action(self._dirs.get(shard))

    def exists(self, location: str) -> bool:
        return (self.root / location).is_file()

    async def exists_async(self, location: str) -> bool:
        return self.exists(location)

    def missing(self, locations: Iterable[str]) -> list[str]:
        """The ``locations`` with no file (one ``stat`` each, no path objects: a resync checks thousands)."""
        root = f"{self.root}{os.sep}"
        return [location for location in locations if not os.path.isfile(root + location)]

    def open(self, location: str) -> BinaryIO:
        return open(self.root / location, "rb")

    def local_path(self, location: str) -> Path | None:
        return self.root / location

    def delete(self, location: str) -> None:
        (self.root / location).unlink(missing_ok=True)

    def iter_locations(self) -> Iterator[str]:
        for folder in sorted((self.root / _ARTIFACT_DIR).iterdir()):
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    yield f"{_ARTIFACT_DIR}/{folder.name}/{path.name}"

    def read_marker(self, name: str) -> str | None:
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def create_marker(self, name: str, text: str) -> bool:
        temp = self.new_temp_path()
        temp.write_text(text, encoding="utf-8")
        try:
            os.link(temp, self.root / name)  # fails if it exists: whoever links first wins, whole
        except FileExistsError:
            return False
        finally:
            temp.unlink(missing_ok=True)
        return True

    def modified_before(self, location: str, when: float) -> bool:
        try:
            return (self.root / location).stat().st_mtime < when
        except FileNotFoundError:
            return False

    def remove_stale_temp_files(self) -> int:
        """Remove temporary files and work folders whose process is gone; return how many."""
        return remove_dead_writers_files(self.root / _TEMP_DIR)

    def close(self) -> None:
        self._dirs.close()


def remove_dead_writers_files(folder: Path) -> int:
    """Remove the ``PID-*.part`` files and ``PID-*.work`` folders in ``folder`` whose process is gone."""
    removed = 0
    for path in folder.iterdir():
        if path.suffix not in (".part", ".work"):
            continue
        pid_text = path.name.split("-", 1)[0]
        if pid_text.isdigit() and process_alive(int(pid_text)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def process_alive(pid: int) -> bool:
    """True if a process with this id runs on this host (or may: we cannot signal it)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_all(fd: int, body: bytes) -> None:
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view) :]
