"""pendingops: a reactive stream-operator toolkit for syncing content repositories.

The public API is what this module exports; everything else is internal. Names are imported on first
use (PEP 562), so a command that needs no database or HTTP client does not pay for importing them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pendingops.context import SyncContext, SyncFailed, SyncResult, UnitFailure, current_context
    from pendingops.db.database import Database
    from pendingops.db.errors import DatabaseError
    from pendingops.db.schema import Content
    from pendingops.db.versions import VersionError, VersionInfo
    from pendingops.declarative import declarative_version, default_pipeline, sync_remote
    from pendingops.pending import PendingArtifact, PendingContent, PendingInputError, UnitError
    from pendingops.plugins.database import open_database
    from pendingops.progress import ProgressSnapshot
    from pendingops.remote import RemoteConfig
    from pendingops.storage import ArtifactStorage, LocalStorage, StorageError

_HOME = {
    "pendingops.context": ("SyncContext", "SyncFailed", "SyncResult", "UnitFailure", "current_context"),
    "pendingops.db.database": ("Database",),
    "pendingops.db.errors": ("DatabaseError",),
    "pendingops.db.schema": ("Content",),
    "pendingops.db.versions": ("VersionError", "VersionInfo"),
    "pendingops.declarative": ("declarative_version", "default_pipeline", "sync_remote"),
    "pendingops.pending": ("PendingArtifact", "PendingContent", "PendingInputError", "UnitError"),
    "pendingops.plugins.database": ("open_database",),
    "pendingops.progress": ("ProgressSnapshot",),
    "pendingops.remote": ("RemoteConfig",),
    "pendingops.storage": ("ArtifactStorage", "LocalStorage", "StorageError"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = [
    "ArtifactStorage",
    "Content",
    "Database",
    "DatabaseError",
    "LocalStorage",
    "PendingArtifact",
    "PendingContent",
    "PendingInputError",
    "ProgressSnapshot",
    "RemoteConfig",
    "StorageError",
    "SyncContext",
    "SyncFailed",
    "SyncResult",
    "UnitError",
    "UnitFailure",
    "VersionError",
    "VersionInfo",
    "current_context",
    "declarative_version",
    "default_pipeline",
    "open_database",
    "sync_remote",
]



def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'pendingops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
