"""associate: add saved content to the version being built (and, in mirror mode, declare it)."""

from __future__ import annotations

from sqlalchemy import Connection

from pendingops.db.versions import associate_content, declare_content
from pendingops.operators._stage import Operator, batch_stage
from pendingops.pending import PendingContent
from pendingops.run.current import Sync


def _wants(ctx: Sync, unit: PendingContent) -> bool:
    if unit.associated or unit.content_id is None:
        return False
    # A failed unit is never added, but in mirror mode one the base version had is kept.
    return not unit.failed or (ctx.mirror and unit.in_base)


def _associate(conn: Connection, ctx: Sync, units: list[PendingContent]) -> int:
    assert ctx.version is not None
    added = 0
    new = [u.content_id for u in units if not u.failed and not u.in_base]
    if new:
        added = associate_content(conn, ctx.db, ctx.repository_id, ctx.version, new)
    if ctx.mirror:
        declare_content(conn, ctx.db, ctx.version, [u.content_id for u in units])
    return added


async def _work(ctx: Sync, units: list[PendingContent]) -> None:
    added = await ctx.transact(_associate, ctx, units, what="adding content to the version")
    for unit in units:
        unit.associated = not unit.failed
    if added:
        ctx.progress.add("associated", added)


def associate() -> Operator:
    """Add each saved unit to the new version (one set-based statement per batch).

    ``SyncContext.run`` appends it to every pipeline; place it earlier to associate sooner.
    Mirror removals happen once, when the version is finished.
    """
    return batch_stage(_wants, _work, include_failed=True, name="associate")
