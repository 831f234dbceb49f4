"""dedup: find already stored Content (by natural key) and Artifacts (by digest), in batches."""

from __future__ import annotations

from sqlalchemy import Connection

from pendingops.context import SyncContext
from pendingops.db import lookups
from pendingops.operators._stage import Operator, batch_stage
from pendingops.pending import PendingContent


def _key_known_and_unsaved(ctx: SyncContext, unit: PendingContent) -> bool:
    return unit.content_id is None and unit.natural_key() is not None


def _artifact_unknown(ctx: SyncContext, unit: PendingContent) -> bool:
    return any(a.artifact_id is None and a.sha256 for a in unit.artifacts)


def _lookup(conn: Connection, ctx: SyncContext, units: list[PendingContent], content: bool, artifacts: bool) -> int:
    if content:
        keyed = [u for u in units if _key_known_and_unsaved(ctx, u)]
        if keyed:
            lookups.query_existing_content(conn, ctx.db, keyed, ctx.repository_id, ctx.remote_id)
    if artifacts:
        unlinked = [u for u in units if not u.failed and _artifact_unknown(ctx, u)]
        if unlinked:
            return lookups.query_existing_artifacts(conn, ctx.db, unlinked)
    return 0


def _count_present(ctx: SyncContext, units: list[PendingContent]) -> None:
    present = sum(1 for u in units if u.in_base)
    if present:
        ctx.progress.add("present", present)


def _lookup_stage(name: str, content: bool, artifacts: bool) -> Operator:
    def wants(ctx: SyncContext, unit: PendingContent) -> bool:
        return (content and _key_known_and_unsaved(ctx, unit)) or (artifacts and _artifact_unknown(ctx, unit))

    async def work(ctx: SyncContext, units: list[PendingContent]) -> None:
        unlinked = [u for u in units if u.content_id is None]
        await ctx.transact(_lookup, ctx, units, content, artifacts, units=units, what=name)
        if content:
            _count_present(ctx, units)
            linked = sum(1 for u in unlinked if u.content_id is not None and not u.in_base and not u.failed)
            if linked:
                ctx.progress.add("linked", linked)

    return batch_stage(wants, work, name=name)


def dedup() -> Operator:
    """Both lookups in one database round trip per batch (content first, then its artifacts)."""
    return _lookup_stage("dedup", content=True, artifacts=True)


def query_existing_content() -> Operator:
    """Link units whose natural key is already saved; units with an incomplete key pass through."""
    return _lookup_stage("query_existing_content", content=True, artifacts=False)


def query_existing_artifacts() -> Operator:
    """Link artifacts whose sha256 is already stored, so they are not downloaded again."""
    return _lookup_stage("query_existing_artifacts", content=False, artifacts=True)
