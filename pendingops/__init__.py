"""pendingops: a reactive stream-operator toolkit for syncing content repositories.

The public API is what this module exports; everything else is internal.
"""

from pendingops.context import SyncContext, SyncFailed, SyncResult, UnitFailure, current_context
from pendingops.db.database import Database, DatabaseError, open_database
from pendingops.db.schema import Content
from pendingops.db.versions import VersionError, VersionInfo
from pendingops.declarative import declarative_version, default_pipeline, sync_remote
from pendingops.pending import PendingArtifact, PendingContent, PendingInputError, UnitError
from pendingops.progress import ProgressSnapshot
from pendingops.remote import RemoteConfig
from pendingops.storage import ArtifactStorage, LocalStorage, StorageError

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
