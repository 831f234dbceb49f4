"""Byte counts and durations as people read them, for the command line and the served listings."""

from __future__ import annotations


def human_bytes(count: int) -> str:
    """``count`` bytes in B, KiB, MiB or GiB (``1.5 MiB``)."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_seconds(seconds: float) -> str:
    """A duration in seconds, minutes or hours (``2 min 05 s``)."""
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless it is one (``1 version``, ``3 versions``)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
