"""``run_sync``: the one function every sync runs through (command line, queue, schedule).

It checks that a queued or scheduled sync's repository is still the one it was queued for, reads
the settings the repository remembers (plugin options, private destinations, retention), runs the
sync, remembers the options given, applies retention, and returns what a summary needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from pendingops.context import SyncResult
from pendingops.db import private_destinations
from pendingops.db.database import Database
from pendingops.db.versions import RepositoryGone as RepositoryGone  # raised here, by its old name too
from pendingops.db.versions import ensure_repository, repository_identity, require_repository
from pendingops.declarative import sync_remote
from pendingops.maintenance.lifecycle import apply_retention
from pendingops.plugins import get_plugin
from pendingops.plugins.options import options_for_sync, remember_options
from pendingops.progress import ProgressListener
from pendingops.remote import RemoteConfig
from pendingops.storage.base import ArtifactStorage
from pendingops.sync.request import SyncRequest


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What came out of ``run_sync``: the sync's result, the remote it ran with, what retention removed."""

    result: SyncResult
    remote: RemoteConfig
    plugin: str
    removed_versions: list[int] = field(default_factory=list)


async def run_sync(
    request: SyncRequest,
    *,
    db: Database,
    storage: ArtifactStorage,
    on_progress: ProgressListener | None = None,
    progress_interval: float = 0.5,
    announce: Callable[[str], None] | None = None,
) -> SyncOutcome:
    """Run ``request``: the deleted-repository check, the sync, remembered settings, retention.

    ``announce`` gets a line for each setting taken from what the repository remembers. A request
    that carries a ``repository_id`` (queued, scheduled) fails with ``RepositoryGone``, creating
    nothing, when that repository no longer exists under its name.
    """
    plugin = get_plugin(request.plugin)
    if request.repository_id is not None:
        await db.run(check_repository, request)
    options = await asyncio.to_thread(options_for_sync, db, request.repository, plugin, request.plugin_options)
    if request.plugin_options is None and options and announce is not None:
        shown = " ".join(f"{key}={value}" for key, value in sorted(options.items()))
        announce(f"plugin options remembered for '{request.repository}': {shown}")
    allow_private = await asyncio.to_thread(
        private_destinations.for_sync, db, request.repository, request.allow_private_destinations
    )
    if request.allow_private_destinations is None and allow_private and announce is not None:
        announce(
            f"private destinations allowed, as remembered for '{request.repository}'"
            " (--no-allow-private-destinations stops)"
        )
    remote = RemoteConfig(
        url=request.url,
        policy=request.policy,  # type: ignore[arg-type]
        download_concurrency=request.concurrency,
        retries=request.retries,
        max_file_size=request.max_file_size,
        allow_private_destinations=allow_private,
        options=options,
    )
    extra: dict[str, object] = {}
    if request.repository_id is not None:
        # Checked again where the sync registers its repository, in that transaction: a deletion
        # since the check above makes it fail there, instead of creating the repository anew.
        extra["repository_identity"] = _bound_identity(request)
    for name in ("batch_size", "window", "db_retry_seconds", "storage_retry_seconds"):
        if getattr(request, name) is not None:
            extra[name] = getattr(request, name)
    result = await sync_remote(
        plugin,
        remote,
        db=db,
        storage=storage,
        repository=request.repository,
        mirror=request.mirror,
        on_error=request.on_error,  # type: ignore[arg-type]
        force=request.force,
        on_progress=on_progress,
        progress_interval=progress_interval,
        **extra,  # type: ignore[arg-type]
    )
    if request.plugin_options is not None:
        await asyncio.to_thread(remember_options, db, request.repository, request.plugin_options)
    removed = await asyncio.to_thread(apply_retention, db, request.repository, request.retain)
    return SyncOutcome(result, remote, plugin.name, removed)


def check_repository(conn: Connection, request: SyncRequest) -> None:
    """Fail with one line (``RepositoryGone``) when the request's repository is not (any more) the one
    it was bound to."""
    require_repository(conn, request.repository, _bound_identity(request))


def bind(conn: Connection, request: SyncRequest, *, register: bool = True) -> SyncRequest | None:
    """``request`` bound to its repository (its id and creation stamp), as a queued or scheduled sync
    carries it. ``register``: the repository is created now if new; else None when there is none."""
    if register:
        ensure_repository(conn, request.repository)
    found = repository_identity(conn, request.repository)
    if found is None:
        return None
    return dataclasses.replace(request, repository_id=found[0], repository_created=found[1])


def _bound_identity(request: SyncRequest) -> tuple[int, str]:
    """The (id, creation stamp) a bound request carries."""
    assert request.repository_id is not None
    return request.repository_id, str(request.repository_created)
