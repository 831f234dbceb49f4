"""The ready-made pipeline: a source of PendingContent in, a complete repository version out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any

from reactivex import Observable

from pendingops import operators as ops
from pendingops.context import ErrorPolicy, RemoteUnchanged, SyncContext, SyncFailed, SyncResult
from pendingops.db.database import Database
from pendingops.pending import PendingContent
from pendingops.plugins import Plugin
from pendingops.remote import RemoteConfig
from pendingops.storage.base import ArtifactStorage, StorageUnavailable
from pendingops.storage.work_folder import work_folder


def default_pipeline() -> list[ops.Operator]:
    """unchanged -> dedup -> download -> save; association is appended by ``SyncContext.run``.

    ``unchanged`` settles in SQL the units a resync finds as the repository holds them.
    """
    return [ops.unchanged(), ops.dedup(), ops.download(), ops.save()]


async def declarative_version(
    source: Iterable[PendingContent] | AsyncIterable[PendingContent] | Observable[PendingContent],
    *,
    db: Database,
    storage: ArtifactStorage,
    remote: RemoteConfig,
    repository: str,
    mirror: bool = False,
    on_error: ErrorPolicy = "fail",
    pipeline: Sequence[ops.Operator] | None = None,
    total: int | None = None,
    **options: Any,
) -> SyncResult:
    """Sync ``source`` into a new version of ``repository`` and return what happened.

    ``mirror=True`` makes the version hold exactly the declared units; otherwise it holds at least
    them (the base version's content stays). ``pipeline`` replaces the default operators.
    ``options`` go to ``SyncContext`` (batch_size, window, on_progress...). On failure the new
    version never becomes visible and ``SyncFailed`` is raised.
    """
    steps = list(pipeline) if pipeline is not None else default_pipeline()
    async with SyncContext(db, storage, remote, repository, mirror=mirror, on_error=on_error, **options) as sync:
        await sync.run(sync.source(source, total=total).pipe(*steps))
    assert sync.result is not None
    return sync.result


async def sync_remote(
    plugin: Plugin,
    remote: RemoteConfig,
    *,
    db: Database,
    storage: ArtifactStorage,
    repository: str,
    mirror: bool = False,
    on_error: ErrorPolicy = "fail",
    pipeline: Sequence[ops.Operator] | None = None,
    force: bool = False,
    **options: Any,
) -> SyncResult:
    """Sync what ``plugin`` reads from ``remote`` into a new version of ``repository``.

    The plugin's own pipeline is used unless ``pipeline`` is given; ``options`` go to
    ``SyncContext``. A remote without ``max_file_size`` gets the plugin's, if it has one.

    When the plugin reads one index (see ``pendingops.plugins.index_read``) byte for byte equal to
    the previous sync's, with the same settings (``settings_digest``), and the repository is still
    at the version that sync left, the sync ends once the index is fetched: no new version, and
    ``result.remote_unchanged`` is true. ``force`` always runs the whole sync. A sync given its own
    ``pipeline`` always runs whole and is no base for the next one's shortcut.
    """
    steps = list(pipeline) if pipeline is not None else list(plugin.pipeline() or default_pipeline())
    plugin_limit = getattr(plugin, "max_file_size", None)
    if remote.max_file_size is None and plugin_limit is not None:
        remote = dataclasses.replace(remote, max_file_size=plugin_limit)
    async with SyncContext(db, storage, remote, repository, mirror=mirror, on_error=on_error, **options) as sync:
        if pipeline is None:
            sync.allow_shortcut(settings_digest(plugin, remote, mirror), force=force)
        try:
            with work_folder(storage) as workdir:  # in storage's temporary area: nothing written outside
                try:
                    async with plugin.open_source(remote, sync.fetcher, workdir) as source:
                        await sync.run(sync.source(source.units, total=source.total).pipe(*steps))
                except RemoteUnchanged:
                    if not sync.remote_unchanged:
                        raise
        except StorageUnavailable as exc:  # the work folder could not be made or removed (a read-only storage)
            raise SyncFailed(f"{exc}; no new version; rerun") from None
    assert sync.result is not None
    return sync.result


def settings_digest(plugin: Plugin, remote: RemoteConfig, mirror: bool) -> str:
    """The sha256 of the settings that shape a sync's version besides the remote's index.

    The plugin and its options, the remote's url and name, the download policy, the file size
    limit and mirror mode; not timeouts, retries, concurrency or credentials, which change how
    content is fetched, not which.
    """
    shaping = {
        "plugin": plugin.name,
        "options": remote.options,
        "url": remote.url,
        "remote": remote.display_name,
        "policy": remote.policy,
        "max_file_size": remote.max_file_size,
        "mirror": mirror,
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()
