"""What one sync does, whoever starts it: the arguments of ``pendingops sync`` as one frozen value.

A queued sync carries its request in the job's arguments and a schedule in its options, as the
plain dictionary ``as_args`` gives; ``from_args`` reads it back, and also what older releases
stored (their fields are a subset of these).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pendingops.remote import split_credentials


class CredentialsInURL(ValueError):
    """A URL with a password was to be stored (queue, schedule): credentials come from netrc instead."""


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """One sync: repository, remote and the settings of the run."""

    repository: str
    url: str
    plugin: str = "file"
    mirror: bool = False
    policy: str = "immediate"
    on_error: str = "fail"
    concurrency: int = 10
    retries: int = 3
    max_file_size: int | None = None
    batch_size: int | None = None
    #: ``--option`` values; None: the ones remembered for the repository
    plugin_options: dict[str, str] | None = None
    #: ``--force``: run the whole sync even when the remote is unchanged
    force: bool = False
    #: ``--[no-]allow-private-destinations``; None: what the repository remembers
    allow_private_destinations: bool | None = None
    #: ``--retain K``: keep the K latest versions (and remember K); None: what the repository remembers
    retain: int | None = None
    #: the repository's id and creation stamp when the sync was queued or scheduled (``bind``): a
    #: repository deleted since (absent, or another one of the same name) is not synced, nor created
    #: again. None: by hand.
    repository_id: int | None = None
    repository_created: str | None = None
    #: the storage (its URL or folder) the requester named; a worker writes to its own ``--storage``
    storage: str | None = None
    window: int | None = None
    db_retry_seconds: float | None = None
    #: ``--storage-retry-seconds``; None: the default (30 s)
    storage_retry_seconds: float | None = None

    def as_args(self) -> dict[str, Any]:
        """The request as JSON-ready job arguments; refused (``CredentialsInURL``) if the URL has credentials."""
        refuse_stored_password(self.url)
        return dataclasses.asdict(self)

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> SyncRequest:
        """The request stored by ``as_args``, by this release or an older one; unknown keys are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in args.items() if key in known})


def refuse_stored_password(url: str) -> None:
    """Refuse a URL with credentials (a user, a password) where it would be stored or shown (the queue, a schedule)."""
    _, user, password = split_credentials(url)
    if user or password:
        raise CredentialsInURL(
            "the URL holds credentials, which would be stored with the queued sync: remove 'user:password@'"
            " and put them in ~/.netrc (or $NETRC) on the hosts that run the syncs"
        )
