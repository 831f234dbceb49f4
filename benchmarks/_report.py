"""The results table and the targets of MISSION.md ("The numbers we aim at")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RAW_DOWNLOAD = "raw download"
RAW_NEW = "raw download new 10%"
RAW_INSERT = "raw bulk insert"
INITIAL = "initial sync"
NOOP = "no-op resync"
SHORTCUT = "unchanged resync (shortcut)"
MIRROR = "mirror resync 10%"
ADDITIVE = "additive resync 10%"
SMALL = "small sync (10 files)"
SMALL_NOOP = "small no-op resync (10 files)"


@dataclass(slots=True)
class Row:
    """One measured phase. ``raw`` is the full raw download time measured next to it (for the ratio)."""

    phase: str
    database: str
    units: int
    wall: float
    rss_mib: float
    statements: int | None = None
    stall: float | None = None
    change: str = ""
    raw: float | None = None
    unit_bytes: int | None = None  # the file size, when throughput is shown in MiB/s
    cpu: float | None = None  # user + system seconds of the phase's process over the timed part
    stall_cpu: float | None = None  # CPU seconds the loop thread used during its longest stall

    @property
    def per_second(self) -> float:
        return self.units / self.wall if self.wall else 0.0

    @property
    def statements_per_1000(self) -> float | None:
        return None if self.statements is None or not self.units else self.statements * 1000 / self.units


@dataclass(frozen=True, slots=True)
class Target:
    goal: str
    database: str
    figure: str
    met: bool | None  # None: not measured in this run


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


_COLUMNS = (
    ("phase", "<27"),
    ("database", "<10"),
    ("units", ">7"),
    ("+added/-removed", ">15"),
    ("wall s", ">8"),
    ("cpu s", ">6"),
    ("units/s", ">8"),
    ("x raw", ">6"),
    ("peak RSS MiB", ">12"),
    ("SQL/1k units", ">12"),
    ("max stall ms", ">12"),
    ("server", "<0"),
)


def table(rows: Sequence[Row], server: str, *, mib: bool = False) -> str:
    """The results as a Markdown table (readable as plain text too); ``mib``: MiB/s instead of units/s."""
    columns = tuple(("MiB/s", align) if mib and name == "units/s" else (name, align) for name, align in _COLUMNS)
    lines = [
        "| " + " | ".join(format(name, align) for name, align in columns) + " |",
        "|" + "|".join("-" * (max(len(name), int(align[1:] or 0)) + 2) for name, align in columns) + "|",
    ]
    for row in rows:
        ratio = row.wall / row.raw if row.raw and row.phase != RAW_INSERT else None
        cells = (
            row.phase,
            row.database,
            str(row.units),
            row.change or "-",
            _fmt(row.wall, ".2f"),
            _fmt(row.cpu, ".2f"),
            _fmt(mib_per_second(row) if mib else row.per_second, ".0f"),
            _fmt(ratio, ".2f"),
            _fmt(row.rss_mib, ".1f"),
            _fmt(row.statements_per_1000, ".1f"),
            _fmt(None if row.stall is None else row.stall * 1000, ".0f"),
            server,
        )
        lines.append("| " + " | ".join(format(c, a) for c, (_, a) in zip(cells, columns, strict=True)) + " |")
    return "\n".join(lines)


def _cpu_ratio(slow: Row, fast: Row) -> str:
    """The same comparison in CPU seconds ("; cpu A s vs B s = R x"): steadier than wall time on a busy machine."""
    if not slow.cpu or not fast.cpu:
        return ""
    return f"; cpu {slow.cpu:.2f} s vs {fast.cpu:.2f} s = {slow.cpu / fast.cpu:.2f}x"


def speed_targets(rows: Sequence[Row], databases: Sequence[str]) -> list[Target]:
    """Every speed, SQL and stall target of MISSION.md, per database, from one run's rows.

    Each ratio is given in wall time (what the target is about) and in CPU seconds.
    """
    targets = []
    for database in databases:
        got = {row.phase: row for row in rows if row.database == database}
        if INITIAL not in got:
            continue
        initial, noop, mirror, raw, new = got[INITIAL], got[NOOP], got[MIRROR], got[RAW_DOWNLOAD], got[RAW_NEW]
        ratio = initial.wall / raw.wall
        targets.append(
            Target(
                "initial sync within 1.5x the raw download",
                database,
                f"{ratio:.2f}x ({initial.wall:.2f} s vs {raw.wall:.2f} s{_cpu_ratio(initial, raw)})",
                ratio <= 1.5,
            )
        )
        speedup = initial.wall / noop.wall
        targets.append(
            Target(
                "no-op resync at least 20x faster than initial",
                database,
                f"{speedup:.1f}x ({noop.wall:.2f} s vs {initial.wall:.2f} s{_cpu_ratio(initial, noop)})",
                speedup >= 20,
            )
        )
        ratio = mirror.wall / new.wall
        targets.append(
            Target(
                "mirror 10% churn at most 2x the new-10% download",
                database,
                f"{ratio:.2f}x ({mirror.wall:.2f} s vs {new.wall:.2f} s{_cpu_ratio(mirror, new)})",
                ratio <= 2,
            )
        )
        if SHORTCUT in got:
            shortcut = got[SHORTCUT]
            targets.append(
                Target(
                    "unchanged resync (shortcut) within 0.1 s",
                    database,
                    f"{shortcut.wall:.3f} s ({shortcut.units} units; {shortcut.statements} statements)",
                    shortcut.wall <= 0.1,
                )
            )
        per_1000 = initial.statements_per_1000 or 0.0
        targets.append(
            Target(
                "at most 20 SQL statements per 1,000 new units",
                database,
                f"{per_1000:.1f} (initial sync: {initial.statements} statements for {initial.units} new units)",
                per_1000 <= 20,
            )
        )
        if SMALL_NOOP in got:  # no goal of its own: what every sync pays whatever its size
            small = got[SMALL_NOOP]
            targets.append(
                Target(
                    "fixed per-sync cost: a no-op resync of a 10-file remote (no goal; for the record)",
                    database,
                    f"{small.wall:.3f} s wall, {small.cpu or 0.0:.3f} s cpu, {small.statements} statements",
                    None,
                )
            )
        syncs = [row for row in got.values() if row.phase in (INITIAL, NOOP, SHORTCUT, MIRROR, ADDITIVE)]
        worst = max(syncs, key=lambda row: row.stall or 0.0)
        stall_ms = (worst.stall or 0.0) * 1000
        targets.append(
            Target(
                "event loop never blocked more than 100 ms",
                database,
                f"{stall_ms:.0f} ms (worst: {worst.phase})",
                stall_ms <= 100,
            )
        )
    return targets


def memory_target(small: Row, large: Row) -> Target:
    ratio = large.rss_mib / small.rss_mib
    return Target(
        f"peak RSS at {large.units:,} units at most 1.25x the peak at {small.units:,}",
        small.database,
        f"{ratio:.2f}x ({large.rss_mib:.1f} MiB vs {small.rss_mib:.1f} MiB)",
        ratio <= 1.25,
    )


def targets_section(targets: Sequence[Target]) -> str:
    lines = []
    for target in targets:
        verdict = {True: "met", False: "NOT MET", None: "no goal" if "no goal" in target.goal else "not measured"}[
            target.met
        ]
        lines.append(f"- [{verdict}] {target.goal} ({target.database}): {target.figure}")
    return "\n".join(lines)


def mib_per_second(row: Row) -> float | None:
    """The phase's throughput: its ``units`` files of ``unit_bytes`` bytes over its wall time."""
    if row.unit_bytes is None or not row.wall:
        return None
    return row.units * row.unit_bytes / (1024 * 1024) / row.wall


def large_targets(runs: Sequence[tuple[int, Row, Row]]) -> list[Target]:
    """Large-file targets from (file size, raw download row, sync row) pairs, the first size the main one.

    Sync throughput at least 90% of the raw download's and no loop stall over 100 ms, for each size;
    the sync's peak RSS at the first size within 1.1x of its peak at each other size.
    """
    targets = []
    for size, raw, sync in runs:
        raw_rate, sync_rate = mib_per_second(raw) or 0.0, mib_per_second(sync) or 0.0
        share = sync_rate / raw_rate if raw_rate else 0.0
        label = f"{sync.units} x {size // (1024 * 1024)} MiB"
        targets.append(
            Target(
                f"sync throughput at least 90% of the raw download's ({label})",
                sync.database,
                f"{share:.0%} ({sync_rate:.0f} MiB/s vs {raw_rate:.0f} MiB/s; "
                f"CPU {_fmt(sync.cpu, '.2f')} s vs {_fmt(raw.cpu, '.2f')} s)",
                share >= 0.9,
            )
        )
        stall_ms = (sync.stall or 0.0) * 1000
        busy_ms = (sync.stall_cpu or 0.0) * 1000
        raw_ms = (raw.stall or 0.0) * 1000
        figure = f"{stall_ms:.0f} ms, loop thread on CPU for {busy_ms:.0f} ms of it (raw download: {raw_ms:.0f} ms)"
        targets.append(Target(f"no loop stall over 100 ms ({label})", sync.database, figure, stall_ms <= 100))
    main_size, _, main = runs[0]
    for size, _, other in runs[1:]:
        ratio = main.rss_mib / other.rss_mib
        targets.append(
            Target(
                f"peak RSS independent of file size: {main_size // (1024 * 1024)} MiB files at most 1.1x "
                f"{size // (1024 * 1024)} MiB files",
                main.database,
                f"{ratio:.2f}x ({main.rss_mib:.1f} MiB vs {other.rss_mib:.1f} MiB)",
                ratio <= 1.1,
            )
        )
    return targets


def scale_time_target(small: Row, large: Row, limit: float) -> Target:
    ratio = large.wall / small.wall
    return Target(
        f"time at {large.units:,} units at most {limit:g}x the time at {small.units:,}",
        small.database,
        f"{ratio:.2f}x ({large.wall:.1f} s vs {small.wall:.1f} s)",
        ratio <= limit,
    )
