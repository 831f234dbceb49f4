"""enrich: the plugin's own async steps, per unit or per batch, with bounded concurrency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pendingops.download._small_writes import settle
from pendingops.operators._stage import Operator, batch_stage, per_unit_stage
from pendingops.pending import PendingContent, describe_error
from pendingops.run.current import Sync
from pendingops.storage.base import SYNC_STOPPING

UnitStep = Callable[[PendingContent], Awaitable[None]]
BatchStep = Callable[[list[PendingContent]], Awaitable[None]]
Filter = Callable[[PendingContent], bool]


def _always(unit: PendingContent) -> bool:
    return True


def enrich(fn: UnitStep, *, n: int = 10, when: Filter = _always, name: str = "enrich") -> Operator:
    """Run ``await fn(unit)`` for each unit (``when(unit)`` true), at most ``n`` at once.

    ``fn`` may change the unit's fields and artifacts. If it raises, that unit fails (reported
    under ``name``) and the others go on. It runs on the sync's event loop, beside the downloads.
    The unit's downloaded files are in storage when ``fn`` runs (small bodies are written in
    batches after their download: the step waits for the unit's writes first).
    """
    if n < 1:
        raise ValueError("enrich(n) needs n >= 1")

    async def work(ctx: Sync, unit: PendingContent) -> None:
        await settle([unit])
        if not unit.failed:
            await fn(unit)

    return per_unit_stage(name, lambda ctx, unit: when(unit), work, lambda ctx: n)


def enrich_batch(
    fn: BatchStep, *, size: int = 100, n: int = 2, when: Filter = _always, name: str = "enrich"
) -> Operator:
    """Run ``await fn(units)`` on batches of up to ``size`` units, at most ``n`` batches at once.

    For steps that need many units at once (one request for a whole batch). If ``fn`` raises, every
    unit of that batch fails; ``fn`` can also fail single units with ``unit.fail(...)``. The units'
    downloaded files are in storage when ``fn`` runs; a unit whose file could not be written is
    failed and left out.
    """
    if size < 1 or n < 1:
        raise ValueError("enrich_batch needs size >= 1 and n >= 1")

    async def work(ctx: Sync, units: list[PendingContent]) -> None:
        await settle(units)
        units = [unit for unit in units if not unit.failed]
        if not units:
            return
        try:
            await fn(units)
        except SYNC_STOPPING:
            raise  # a full or unreachable storage stops the sync, whatever the policy
        except Exception as exc:
            reason = describe_error(exc)
            for unit in units:
                unit.fail(name, reason)

    return batch_stage(lambda ctx, unit: when(unit), work, size=lambda ctx: size, concurrency=n, name=name)
