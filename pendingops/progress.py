"""Per-stage progress counters of a sync, and the snapshots observers receive."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: the stages every sync reports, in pipeline order: "present" counts units already in the base version,
#: "linked" units whose content was already stored (by another repository or sync), "downloaded" files
#: that came over the network (and their bytes), "adopted" files that needed fetching but were found in
#: storage (left by an interrupted run), checked and kept with no transfer, "saved" content rows this
#: sync wrote, "filtered" units an operator dropped. The "downloaded" total is the number of files found
#: to need fetching so far, less those adopted (final once the source is read and every file fetched).
STAGES = (
    "seen",
    "present",
    "linked",
    "downloaded",
    "adopted",
    "saved",
    "associated",
    "removed",
    "failed",
    "filtered",
)


@dataclass(slots=True)
class StageProgress:
    done: int = 0
    total: int | None = None
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """Counters at one moment. ``elapsed`` is seconds since the sync started."""

    elapsed: float
    stages: dict[str, StageProgress]
    finished: bool = False

    def done(self, stage: str) -> int:
        return self.stages[stage].done

    def eta_seconds(self) -> float | None:
        """Estimated seconds left, when the source's size is known and units are finishing."""
        total = self.stages["seen"].total
        finished = sum(self.stages[stage].done for stage in ("associated", "present", "failed", "filtered"))
        finished = max(finished, self.stages["saved"].done)
        if not total or not finished or self.elapsed <= 0:
            return None
        return max(0.0, (total - finished) * self.elapsed / finished)


ProgressListener = Callable[[ProgressSnapshot], None]


@dataclass
class Progress:
    """Mutable counters owned by one sync; the event loop is the only writer."""

    stages: dict[str, StageProgress] = field(default_factory=lambda: {s: StageProgress() for s in STAGES})
    started: float = field(default_factory=time.monotonic)

    def add(self, stage: str, count: int = 1, nbytes: int = 0) -> None:
        entry = self.stages.setdefault(stage, StageProgress())
        entry.done += count
        entry.bytes += nbytes

    def add_total(self, stage: str, count: int = 1) -> None:
        entry = self.stages.setdefault(stage, StageProgress())
        entry.total = (entry.total or 0) + count

    def set_total(self, total: int | None) -> None:
        self.stages["seen"].total = total

    def snapshot(self, *, finished: bool = False) -> ProgressSnapshot:
        copied = {name: StageProgress(s.done, s.total, s.bytes) for name, s in self.stages.items()}
        return ProgressSnapshot(time.monotonic() - self.started, copied, finished)


class ProgressReporter:
    """Hands a listener a snapshot of ``progress`` every ``interval`` seconds, and a last one at the end.

    A listener that raises is logged and called no more: a broken display must not stop the sync,
    nor go unnoticed.
    """

    def __init__(self, progress: Progress, listener: ProgressListener | None, interval: float) -> None:
        self._progress = progress
        self._listener = listener
        self._interval = interval
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the periodic reports on the running loop (nothing without a listener)."""
        if self._listener is not None:
            self._ticker = asyncio.create_task(self._tick())

    def stop(self) -> None:
        """Stop the periodic reports (the last one is ``report(finished=True)``)."""
        if self._ticker is not None:
            self._ticker.cancel()

    def report(self, *, finished: bool = False) -> None:
        """Hand the listener a snapshot now."""
        if self._listener is None:
            return
        try:
            self._listener(self._progress.snapshot(finished=finished))
        except Exception:
            logging.getLogger("pendingops").exception("the on_progress callback failed; progress reports stop")
            self._listener = None

    async def _tick(self) -> None:
        while self._listener is not None:
            await asyncio.sleep(self._interval)
            self.report()
