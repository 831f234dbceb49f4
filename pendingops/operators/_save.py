"""save: write Artifacts, Content, ContentArtifacts and RemoteArtifacts in atomic batches."""

from __future__ import annotations

from sqlalchemy import Connection

from pendingops.db.fill import fill_fields
from pendingops.db.writes import save_units
from pendingops.download._small_writes import settle
from pendingops.operators._stage import Operator, batch_stage
from pendingops.pending import PendingContent
from pendingops.run.current import Sync


def _needs_saving(ctx: Sync, unit: PendingContent) -> bool:
    if unit.content_id is None or unit.unfilled:
        return True
    return any(
        not a.remote_artifact_current
        or (a.artifact_id is None and a.stored_sha256)
        or (a.artifact_id and not a.artifact_linked)
        for a in unit.artifacts
    )


def _unsaveable(ctx: Sync, unit: PendingContent) -> str | None:
    missing = [name for name in unit.content_type.natural_key if unit.fields.get(name) is None]
    if missing:
        return f"natural key field(s) {', '.join(missing)} still unknown at save"
    if ctx.remote.policy == "immediate":
        unstored = [a.relative_path for a in unit.artifacts if not a.is_stored]
        if unstored:
            return f"artifact(s) {', '.join(unstored)} not downloaded (is download() before save()?)"
    return None


def _save(conn: Connection, ctx: Sync, units: list[PendingContent]) -> tuple[set[int], set[int]]:
    """Save the batch, then fill stored units' NULL fields it declares: the content ids created, and filled."""
    created = save_units(conn, ctx.db, ctx.storage, units, ctx.remote_id)
    return created, fill_fields(conn, ctx.db, units)


async def _work(ctx: Sync, units: list[PendingContent]) -> None:
    await settle(units)  # every file the batch downloaded is in storage before a row points at it
    ready = []
    for unit in units:
        problem = _unsaveable(ctx, unit)
        if problem:
            unit.fail("save", problem)
        else:
            ready.append(unit)
    if ready:
        unlinked = [unit for unit in ready if unit.content_id is None]
        created, filled = await ctx.transact(_save, ctx, ready, units=ready, what="save")
        # "saved" counts content rows written; a unit another sync saved meanwhile is linked to it
        written = sum(1 for unit in ready if not unit.failed and unit.content_id in created)
        linked = sum(1 for unit in unlinked if not unit.failed and unit.content_id not in created)
        ctx.progress.add("saved", written)
        if linked:
            ctx.progress.add("linked", linked)
        if filled:
            ctx.progress.add("filled", len(filled))


def save() -> Operator:
    """Save every unit that needs it, a batch per transaction: a unit is saved whole or not at all.

    Inserts ignore rows another sync saved meanwhile and read them back, in a stable order, so
    concurrent syncs of overlapping content neither fail nor duplicate rows. Stored content whose
    fields are NULL where the unit declares a value (a column added since) is filled, never overwritten.
    """
    return batch_stage(_needs_saving, _work, name="save")
