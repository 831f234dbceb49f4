"""What a plugin's source emits: content units and artifacts that are not saved yet."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from pendingops.db.schema import DIGEST_ALGORITHMS, Content
from pendingops.remote import strip_credentials


class UnitError(Exception):
    """Raised by a pipeline step to fail one unit; the message is the reason reported."""


def describe_error(exc: BaseException) -> str:
    """One line naming an exception for reports: a UnitError's own message, else type and message."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, UnitError) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class PendingInputError(ValueError):
    """A PendingContent or PendingArtifact was built from values that cannot be right."""


@dataclass(slots=True)
class PendingArtifact:
    """An artifact the remote says exists.

    ``sha256`` and ``size`` are the expected values when the remote publishes them; a download
    that disagrees with either is rejected. After download (or dedup) ``artifact_id`` is set.
    A ``user:password@`` in ``url`` is dropped: credentials belong to the RemoteConfig.
    """

    url: str
    relative_path: str
    size: int | None = None
    sha256: str | None = None
    digests: dict[str, str] = field(default_factory=dict)
    artifact_id: int | None = None
    #: set by dedup when the content unit already exists: its ContentArtifact row
    content_artifact_id: int | None = None
    #: True when that ContentArtifact row already points at a stored Artifact
    artifact_linked: bool = False
    #: set by dedup when this remote's RemoteArtifact row already says what this artifact says
    remote_artifact_current: bool = False
    #: the storage key of the downloaded file, set by ``download`` before the row is saved
    stored_sha256: str | None = None
    stored_size: int | None = None
    stored_digests: dict[str, str] = field(default_factory=dict)
    #: whether a file for ``sha256`` was in storage when dedup looked (None: nobody looked); one found is
    #: still hashed before it is adopted
    in_storage: bool | None = None
    #: the write of a small downloaded body still on its way to storage; ``save`` waits for it
    stored_write: asyncio.Future[None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if "@" in self.url:  # credentials live in RemoteConfig, never in what is stored or shown
            self.url = strip_credentials(self.url)
        if self.size is not None and (not isinstance(self.size, int) or self.size < 0):
            raise PendingInputError(
                f"artifact {self.relative_path!r}: size must be a non-negative integer, got {self.size!r}"
            )
        if self.sha256 is not None:
            self.sha256 = _check_hex(self.sha256, "sha256", self.relative_path)
        for name, value in list(self.digests.items()):
            if name not in DIGEST_ALGORITHMS:
                raise PendingInputError(f"artifact {self.relative_path!r}: unknown digest algorithm {name!r}")
            self.digests[name] = _check_hex(value, name, self.relative_path)

    @property
    def is_stored(self) -> bool:
        """True once the artifact's bytes are in storage (downloaded now or found already stored)."""
        return self.artifact_id is not None or self.stored_sha256 is not None


#: hex digits of each digest algorithm's value
_HEX_LENGTH = {name: hashlib.new(name).digest_size * 2 for name in DIGEST_ALGORITHMS}
_HEX = re.compile(r"[0-9a-fA-F]+")


def _check_hex(value: str, algorithm: str, where: str) -> str:
    expected_len = _HEX_LENGTH[algorithm]
    if not isinstance(value, str) or len(value) != expected_len or not _HEX.fullmatch(value):
        raise PendingInputError(f"artifact {where!r}: {algorithm} must be {expected_len} hex digits, got {value!r}")
    return value.lower()


@dataclass(slots=True, eq=False, weakref_slot=True)
class PendingContent:
    """An unsaved content unit travelling through the pipeline.

    ``content_type`` is the plugin's Content class; ``fields`` are its column values, which must
    include every natural-key field by the time the unit reaches ``save`` (a plugin may complete
    them later, from a downloaded artifact). A unit ends up saved (``content_id`` set) or failed
    (``error`` set); operators pass failed units through untouched.
    """

    content_type: type[Content]
    fields: dict[str, Any]
    artifacts: list[PendingArtifact] = field(default_factory=list)
    content_id: int | None = None
    #: True when the base version already holds this content
    in_base: bool = False
    associated: bool = False
    error: str | None = None
    failed_stage: str | None = None
    #: free room for plugin steps (enrich results, parsed metadata...)
    extra: dict[str, Any] = field(default_factory=dict)
    #: bytes of this unit's downloads counted against the sync's byte budget until it is done
    held_bytes: int = 0
    #: stored content only: declared values of fields stored as NULL (columns added since it was
    #: saved), which ``save`` fills; see ``pendingops.db.fill``
    unfilled: dict[str, Any] = field(default_factory=dict)
    _digested_key: tuple[Any, ...] | None = field(default=None, repr=False)
    _digest: str | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return self.error is not None

    def fail(self, stage: str, reason: str) -> None:
        """Mark the unit failed; the first failure wins."""
        if self.error is None:
            self.error = reason
            self.failed_stage = stage

    def natural_key(self) -> tuple[Any, ...] | None:
        """The natural-key values, or None while one of them is still unknown."""
        values = tuple(map(self.fields.get, self.content_type.natural_key))
        return None if None in values else values

    def key_digest(self) -> str:
        """A stable digest of (content type, natural key): the database's uniqueness handle.

        Computed again only when the key's values change (a plugin may complete them late).
        """
        key = self.natural_key()
        if key is None:
            raise PendingInputError(f"{self.describe()}: natural key is incomplete")
        if self._digested_key != key:
            self._digest = natural_key_digest(self.content_type.content_type_name(), key)
            self._digested_key = key
        assert self._digest is not None
        return self._digest

    def describe(self) -> str:
        """A short human name for error messages and reports."""
        key = self.natural_key()
        if key is not None:
            return f"{self.content_type.content_type_name()} {', '.join(map(str, key))}"
        shown = ", ".join(f"{k}={v}" for k, v in list(self.fields.items())[:3])
        return f"{self.content_type.content_type_name()} ({shown})"


def natural_key_digest(type_name: str, key: tuple[Any, ...]) -> str:
    """sha256 of a canonical JSON encoding of the type name and natural-key values."""
    encoded = json.dumps([type_name, *key], separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


#: what a database step may change on a unit and its artifacts, put back when its transaction is retried
_UNIT_DB_STATE = ("content_id", "in_base", "associated", "error", "failed_stage")
_ARTIFACT_DB_STATE = (
    "artifact_id",
    "content_artifact_id",
    "artifact_linked",
    "remote_artifact_current",
    "sha256",
    "size",
)


_unit_db_state = attrgetter(*_UNIT_DB_STATE)
_artifact_db_state = attrgetter(*_ARTIFACT_DB_STATE)


def units_db_state(units: Sequence[PendingContent]) -> list[tuple[Any, ...]]:
    """What ``units`` hold of the database's answers, for ``restore_units_db_state`` after a rollback."""
    return [(_unit_db_state(unit), list(map(_artifact_db_state, unit.artifacts))) for unit in units]


def restore_units_db_state(units: Sequence[PendingContent], state: list[tuple[Any, ...]]) -> None:
    """Put ``units`` back as ``units_db_state`` found them (their transaction was rolled back)."""
    for unit, (unit_values, artifact_values) in zip(units, state, strict=True):
        for name, value in zip(_UNIT_DB_STATE, unit_values, strict=True):
            setattr(unit, name, value)
        for artifact, values in zip(unit.artifacts, artifact_values, strict=True):
            for name, value in zip(_ARTIFACT_DB_STATE, values, strict=True):
                setattr(artifact, name, value)
