"""Open the storage a ``--storage`` value names: a path or ``file://`` URL, or ``s3://BUCKET/PREFIX``."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pendingops.storage.base import ArtifactStorage, StorageError
from pendingops.storage.local import LocalStorage


def open_storage(spec: str | os.PathLike[str], *, temp_dir: str | os.PathLike[str]) -> ArtifactStorage:
    """The storage ``spec`` names; ``temp_dir`` is the local folder a remote backend stages downloads in."""
    text = os.fspath(spec)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme == "s3":
        from pendingops.storage.s3 import S3Storage  # its client library loads only when used

        return S3Storage(text, temp_dir)
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise StorageError(f"bad storage URL {text!r}: expected file:///PATH")
        return LocalStorage(Path(unquote(parts.path)))
    if scheme:
        raise StorageError(f"unsupported storage {text!r}: expected a path, file:///PATH or s3://BUCKET/PREFIX")
    return LocalStorage(text)
