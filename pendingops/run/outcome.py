"""What a sync reports: its result, the units that failed, and the errors that end it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pendingops.db.versions import VersionInfo

ErrorPolicy = Literal["fail", "skip"]


class RemoteUnchanged(Exception):
    """Raised by ``index_read`` inside a plugin's source: the sync ends here, with no new version."""


class SyncFailed(RuntimeError):
    """The sync did not produce a version; ``failures`` lists the units that failed, if any."""

    def __init__(self, message: str, failures: list[UnitFailure] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


@dataclass(frozen=True, slots=True)
class UnitFailure:
    """One content unit that could not be added, and why."""

    unit: str
    stage: str
    reason: str


@dataclass(slots=True)
class SyncResult:
    """What a finished sync did. ``created`` is false when nothing changed (no new version).

    ``filtered`` counts the units the source emitted that an operator dropped on the way (a
    ``filter``, ``take``, ``distinct``...): they were not declared. ``remote_unchanged`` says the
    sync ended at once: the remote's index and the settings were those of the previous run, and
    the repository had not changed since.
    """

    version: VersionInfo
    created: bool
    added: int
    removed: int
    failed_count: int
    failures: list[UnitFailure] = field(default_factory=list)
    filtered: int = 0
    remote_unchanged: bool = False
