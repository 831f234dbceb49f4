"""A sync's (or an export's) work folder in the storage's temporary area, whose cleanup never masks an error.

A folder ``PID-....work`` beside the in-progress downloads: nothing is written outside storage, and
a killed process's folder is removed by ``remove_stale_temp_files``. When the work inside fails,
that error is raised and the folder removed as far as it can be, also when a cleanup of a file in the
folder failed on its way out (the error that cleanup would have masked wins); when only the cleanup
fails (the storage turned read-only), ``StorageUnavailable`` names the storage and the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pendingops.storage.base import ArtifactStorage, StorageUnavailable


@contextmanager
def work_folder(storage: ArtifactStorage) -> Iterator[Path]:
    """A fresh work folder in ``storage``'s temporary area, removed on the way out."""
    temp_area = storage.new_temp_path().parent
    try:
        path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", suffix=".work", dir=temp_area))
    except OSError as exc:
        problem = f"cannot make a work folder in {temp_area} ({exc.strerror})"
        raise StorageUnavailable(f"storage {storage}: {problem}") from None
    try:
        yield path
    except BaseException as exc:
        shutil.rmtree(path, ignore_errors=True)  # the first error wins; a leftover goes with the next sync
        if isinstance(exc, OSError) and _inside(exc.filename, path):  # a cleanup of a file in the folder failed
            first = exc.__context__
            if isinstance(first, Exception):  # the error that made it clean up
                raise first from None
            problem = f"cannot write in the work folder {path} ({exc.strerror})"
            raise StorageUnavailable(f"storage {storage}: {problem}") from None
        raise
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise StorageUnavailable(f"storage {storage}: cannot remove the work folder {path} ({exc.strerror})") from None


def _inside(filename: object, folder: Path) -> bool:
    return isinstance(filename, str | os.PathLike) and Path(filename).is_relative_to(folder)
