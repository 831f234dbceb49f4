"""Showing a running sync: a live panel on a terminal (drawn by ``rich``), plain log lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, Task, TextColumn
from rich.text import Text

from pendingops.progress import ProgressSnapshot, StageProgress
from pendingops.readable import human_bytes, human_seconds

#: seconds of a sync between two plain progress lines (and before the first)
_LOG_EVERY = 5.0
_LABELS = (
    ("seen", "units seen"),
    ("present", "already present"),
    ("linked", "linked to stored"),
    ("downloaded", "downloaded"),
    ("adopted", "adopted"),
    ("saved", "saved"),
    ("associated", "associated"),
    ("removed", "removed"),
    ("failed", "failed"),
    ("filtered", "filtered"),
)


def transfer_counts(snapshot: ProgressSnapshot | None) -> dict[str, int]:
    """What a sync fetched, for ``--json``: ``downloaded`` files (over the network, ``downloaded_bytes``)
    and ``adopted`` ones (found in storage, left by an interrupted run, and checked: no transfer)."""
    if snapshot is None:
        return {"downloaded": 0, "downloaded_bytes": 0, "adopted": 0}
    downloaded = snapshot.stages["downloaded"]
    return {"downloaded": downloaded.done, "downloaded_bytes": downloaded.bytes, "adopted": snapshot.done("adopted")}


def stage_rate(entry: StageProgress, stage: str, elapsed: float) -> str:
    """Units per second (and MiB/s for downloads) since the sync started."""
    if elapsed <= 0 or not entry.done:
        return ""
    rate = f"{entry.done / elapsed:.1f}/s"
    if stage == "downloaded":
        rate += f"  {entry.bytes / elapsed / 1024**2:.2f} MiB/s"
    return rate


class _KnownTotalBar(BarColumn):
    """A bar only where the total is known; a count-only stage shows no bar rather than a guess."""

    def render(self, task: Task) -> Any:
        return super().render(task) if task.total is not None else Text("")


class ProgressPrinter:
    """Receives snapshots; redraws a live panel on a terminal or logs a line every few seconds.

    The panel has a row per stage: count / total where the total is known, a bar and the rate; the
    elapsed row says how long the whole sync has left (one estimate, not one per stage). In plain mode
    a line is logged once ``log_every`` seconds of the sync have passed (by the snapshot's ``elapsed``),
    never at its start, and no more often: a sync that fails sooner prints only its error. The final
    snapshot is not logged in plain mode: the summary (or the error) says it all.
    """

    def __init__(self, stream: TextIO | None = None, *, log_every: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._log_every = _LOG_EVERY if log_every is None else log_every
        #: the sync's elapsed seconds at which the next plain line is due
        self._next_log = self._log_every
        self._panel: Progress | None = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        if self.live:
            self._draw(snapshot)
        elif not snapshot.finished and snapshot.elapsed >= self._next_log:
            self._next_log = snapshot.elapsed + self._log_every
            counts = " ".join(f"{stage}={snapshot.stages[stage].done}" for stage, _ in _LABELS)
            self.stream.write(f"progress t={snapshot.elapsed:.1f}s {counts}\n")
            self.stream.flush()

    def _start(self) -> Progress:
        console = Console(file=self.stream, force_terminal=True)
        panel = Progress(
            TextColumn("{task.description:>16}"),
            TextColumn("{task.fields[count]:>15}"),
            _KnownTotalBar(bar_width=20),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            console=console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        for stage, label in (*_LABELS, ("elapsed", "elapsed")):
            self._tasks[stage] = panel.add_task(label, total=None, count="", rate="", eta="")
        panel.start()
        return panel

    def _draw(self, snapshot: ProgressSnapshot) -> None:
        if self._panel is None:
            self._panel = self._start()
        for stage, _ in _LABELS:
            entry = snapshot.stages[stage]
            count = f"{entry.done} / {entry.total}" if entry.total else str(entry.done)
            if stage == "downloaded" and entry.bytes:
                count += f" {human_bytes(entry.bytes)}"
            self._panel.update(
                self._tasks[stage],
                total=entry.total or None,
                completed=entry.done,
                count=count,
                rate=stage_rate(entry, stage, snapshot.elapsed),
            )
        eta = snapshot.eta_seconds()
        left = f"about {human_seconds(eta)} left" if eta is not None and not snapshot.finished else ""
        self._panel.update(self._tasks["elapsed"], count=human_seconds(snapshot.elapsed), eta=left)
        self._panel.refresh()
        if snapshot.finished:
            self._panel.stop()
            self._panel = None
            self._tasks = {}


def print_failures(failures: Sequence[Any], limit: int = 10) -> None:
    """The first ``limit`` failed units, one line each, on stderr."""
    for failure in failures[:limit]:
        print(f"  failed: {failure.unit}: {failure.stage}: {failure.reason}", file=sys.stderr)
    if len(failures) > limit:
        print(f"  ... and {len(failures) - limit} more", file=sys.stderr)
