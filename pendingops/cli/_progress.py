"""Showing a running sync: a live panel on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from pendingops.progress import ProgressSnapshot

_LABELS = (
    ("seen", "units seen"),
    ("present", "already present"),
    ("downloaded", "downloaded"),
    ("saved", "saved"),
    ("associated", "associated"),
    ("removed", "removed"),
    ("failed", "failed"),
    ("filtered", "filtered"),
)


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def describe_stages(snapshot: ProgressSnapshot) -> list[str]:
    """One line per stage: count, total when known, bytes for downloads."""
    lines = []
    for stage, label in _LABELS:
        entry = snapshot.stages[stage]
        text = f"{label:>16}: {entry.done}"
        if entry.total:
            text += f" / {entry.total} ({100 * entry.done // max(entry.total, 1)}%)"
        if stage == "downloaded" and entry.bytes:
            text += f"  {human_bytes(entry.bytes)}"
        lines.append(text)
    return lines


class ProgressPrinter:
    """Receives snapshots; redraws a panel on a terminal or logs a line every few seconds.

    The final snapshot is not logged in plain mode: the summary (or the error) says it all.
    """

    def __init__(self, stream: TextIO | None = None, *, log_every: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._drawn = 0
        self._log_every = log_every
        self._last_log = 0.0

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        if self.live:
            self._draw(snapshot)
        elif not snapshot.finished and time.monotonic() - self._last_log >= self._log_every:
            self._last_log = time.monotonic()
            counts = " ".join(f"{stage}={snapshot.stages[stage].done}" for stage, _ in _LABELS)
            self.stream.write(f"progress t={snapshot.elapsed:.1f}s {counts}\n")
            self.stream.flush()

    def _draw(self, snapshot: ProgressSnapshot) -> None:
        lines = describe_stages(snapshot)
        eta = snapshot.eta_seconds()
        tail = f"{'elapsed':>16}: {human_seconds(snapshot.elapsed)}"
        if eta is not None and not snapshot.finished:
            tail += f", about {human_seconds(eta)} left"
        lines.append(tail)
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F")
        for line in lines:
            self.stream.write(f"\x1b[2K{line}\n")
        self._drawn = len(lines)
        if snapshot.finished:
            self._drawn = 0
        self.stream.flush()
