"""Content-addressed artifact storage: the interface and the default local backend."""

from pendingops.storage.base import ArtifactStorage, StorageError
from pendingops.storage.local import LocalStorage

__all__ = ["ArtifactStorage", "LocalStorage", "StorageError"]
