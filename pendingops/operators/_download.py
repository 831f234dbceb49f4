"""download: fetch missing artifacts with at most n transfers in flight."""

from __future__ import annotations

from pendingops.operators._stage import Operator, per_unit_stage
from pendingops.pending import PendingContent
from pendingops.run.current import Sync


def _wants(ctx: Sync, unit: PendingContent) -> bool:
    """Whether the unit has files to fetch; they are added to the download total (asked once per unit)."""
    if ctx.remote.policy != "immediate":
        return False
    missing = sum(1 for a in unit.artifacts if not a.is_stored)
    if missing:
        ctx.progress.add_total("downloaded", missing)
    return missing > 0


async def _fetch_missing(ctx: Sync, unit: PendingContent) -> None:
    # One transfer at a time per unit, so the stage's unit limit is also its transfer limit.
    for artifact in unit.artifacts:
        if not artifact.is_stored:
            expected = artifact.size or 0
            await ctx.byte_budget.reserve(expected)
            ctx.flow.hold(unit, expected)
            transferred = await ctx.fetcher.fetch(artifact, defer_write=True)  # save waits for the file
            unknown_size = (artifact.stored_size or 0) - expected
            if unknown_size > 0:
                ctx.byte_budget.add(unknown_size)
                ctx.flow.hold(unit, unknown_size)
            if transferred:
                ctx.progress.add("downloaded", 1, artifact.stored_size or 0)
            else:  # a stored file checked and adopted: counted apart, and no longer one to download
                ctx.progress.add("adopted", 1, artifact.stored_size or 0)
                ctx.progress.add_total("downloaded", -1)


def download(n: int | None = None) -> Operator:
    """Download every artifact not yet stored, at most ``n`` at once (the remote's setting by default).

    Each file is streamed to a temporary file while its digests are computed, and moved into
    storage only when size and digests match; a file already in storage (left by an interrupted
    run) is checked and adopted instead, counted as ``adopted``, not ``downloaded``. Downloads wait
    while the sync's byte budget (``max_pending_bytes``) is held by units not yet through the
    pipeline. Nothing is fetched under the ``on_demand`` policy. A unit whose download fails is
    marked failed with the reason.
    """
    if n is not None and n < 1:
        raise ValueError("download(n) needs n >= 1")
    return per_unit_stage("download", _wants, _fetch_missing, lambda ctx: n or ctx.remote.download_concurrency)
