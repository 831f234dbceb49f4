"""The ready-made pipeline: a source of PendingContent in, a complete repository version out."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any

from reactivex import Observable

from pendingops import operators as ops
from pendingops.context import ErrorPolicy, SyncContext, SyncResult
from pendingops.db.database import Database
from pendingops.pending import PendingContent
from pendingops.remote import RemoteConfig
from pendingops.storage.base import ArtifactStorage


def default_pipeline() -> list[ops.Operator]:
    """dedup -> download -> save; association is appended by ``SyncContext.run``."""
    return [ops.dedup(), ops.download(), ops.save()]


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
