"""Benchmark pendingops syncs against the raw limits of this machine, side by side in one run.

    .venv/bin/python benchmarks/run.py            # speed, SQL cost and loop stalls (README.md)
    .venv/bin/python benchmarks/run.py --memory   # peak RSS at N and 10 N units (on_demand)
    .venv/bin/python benchmarks/run.py --large    # 16 files of 64 MiB: throughput, stalls, peak RSS
    .venv/bin/python benchmarks/run.py --million  # 100,000 and 1,000,000 on_demand units on PostgreSQL

Every phase runs in its own process, so each peak RSS is that phase's own.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _phase import RESULT_PREFIX
from _repo import MANIFEST, Entry, make_entries, make_large_entries, write_manifest
from _report import (
    ADDITIVE,
    INITIAL,
    MIRROR,
    NOOP,
    RAW_DOWNLOAD,
    RAW_INSERT,
    RAW_NEW,
    SHORTCUT,
    SMALL,
    SMALL_NOOP,
    Row,
    Target,
    large_targets,
    memory_target,
    scale_time_target,
    speed_targets,
    table,
    targets_section,
)
from _server import Server, serve
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from pendingops.loop import LOOP_ENV, loop_name

BENCH_DIR = Path(__file__).resolve().parent
PHASE_SCRIPT = BENCH_DIR / "_phase.py"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/pendingops_bench"
QUICK_FILES = 1000
SMALL_FILES = 10  # the remote whose sync measures the fixed per-sync cost
SMALL_MANIFEST = "small-PULP_MANIFEST"
MIB = 1024 * 1024
MILLION_TIME_LIMIT = 11.0  # the 1,000,000-unit sync may take at most 11x the 100,000-unit one


class BenchError(RuntimeError):
    pass


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000, help="files in the repository (default 10000)")
    parser.add_argument("--size", type=int, default=1024, help="bytes per file (default 1024)")
    parser.add_argument("--concurrency", type=int, default=10, help="downloads in flight (default 10)")
    parser.add_argument("--databases", help="comma-separated: sqlite,postgresql (default both; --million: postgresql)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="dropped and recreated for each run")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run with {QUICK_FILES} files")
    parser.add_argument("--memory", action="store_true", help="peak RSS of on_demand syncs of N and 10 N units")
    parser.add_argument("--large", action="store_true", help="throughput, stalls and peak RSS for large files")
    parser.add_argument("--large-files", type=int, default=16, help="--large: files per run (default 16)")
    parser.add_argument("--large-mib", type=int, default=64, help="--large: MiB per file (default 64)")
    parser.add_argument(
        "--compare-mib", type=int, default=16, help="--large: MiB per file of the second run, 0 for none (default 16)"
    )
    parser.add_argument(
        "--million", action="store_true", help="on_demand syncs of 100,000 and 1,000,000 units (PostgreSQL by default)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="raw limits: keep the fastest of N runs (default 3)")
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument("--no-install", action="store_true", help="never try to install nginx")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of every phase, raw download included (default asyncio; uvloop needs pendingops[fast])",
    )
    parser.add_argument("--profile", type=Path, metavar="DIR", help="record each sync with py-spy (slows it)")
    args = parser.parse_args(argv)
    if args.quick:
        args.files = QUICK_FILES
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        parser.error("--loop uvloop: uvloop is not installed (pip install 'pendingops[fast]')")
    # The phases inherit it: pendingops.loop reads it.
    os.environ[LOOP_ENV] = args.loop
    if sum((args.memory, args.large, args.million)) > 1:
        parser.error("choose one of --memory, --large and --million")
    if args.million:
        args.files = 100_000
    if args.databases is None:
        args.databases = "postgresql" if args.million else "sqlite,postgresql"
    if args.large and (args.large_files < 1 or args.large_mib < 1 or args.compare_mib < 0):
        parser.error("use --large-files >= 1, --large-mib >= 1 and --compare-mib >= 0")
    args.databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown or args.files < 10 or args.size < 32 or args.concurrency < 1 or args.repeat < 1:
        parser.error("use --databases sqlite,postgresql, --files >= 10, --size >= 32, --concurrency and --repeat >= 1")
    return args


def run_phase(spec: dict[str, Any], profile_to: Path | None = None) -> dict[str, Any]:
    """Run one phase in a new process and return what it reported.

    Each phase starts with no dirty pages left by the ones before (``os.sync``), so the kernel's
    writeback of earlier files does not compete with this phase's writes.
    """
    os.sync()
    command = [sys.executable, str(PHASE_SCRIPT), json.dumps(spec)]
    if profile_to is not None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        options = ["--format", "raw", "--rate", "200", "--threads", "--subprocesses", "-o", str(profile_to)]
        command = [py_spy, "record", *options, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise BenchError(f"phase {spec['kind']} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def admin_url(postgres_url: str) -> URL:
    """The server's maintenance database, with the driver pendingops uses (psycopg2)."""
    url = make_url(postgres_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return url.set(database="postgres")


def fresh_database(kind: str, folder: Path, postgres_url: str) -> str:
    """The URL of an empty database of ``kind``: a new SQLite file, or the PostgreSQL one recreated."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        path = folder / "bench.db"
        for leftover in folder.glob("bench.db*"):
            leftover.unlink()
        return f"sqlite:///{path}"
    name = make_url(postgres_url).database
    engine = create_engine(admin_url(postgres_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return postgres_url


def database_version(kind: str, postgres_url: str) -> str:
    """ "SQLite 3.40.1" or the PostgreSQL server's version; raises when PostgreSQL is unreachable."""
    if kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    engine = create_engine(admin_url(postgres_url), connect_args={"connect_timeout": 5})
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SHOW server_version").scalar()
    engine.dispose()
    return f"PostgreSQL {version}"


class Bench:
    """The state shared by the phases of one run: options, folders, the server and the rows."""

    def __init__(self, args: argparse.Namespace, work: Path, root: Path, server: Server) -> None:
        self.args = args
        self.work = work
        self.root = root
        self.server = server
        self.rows: list[Row] = []
        self.problems: list[str] = []
        self.package = ""  # where the measured pendingops was imported from

    @property
    def manifest_url(self) -> str:
        return self.server.base_url + MANIFEST

    def publish(self, entries: Sequence[Entry]) -> int:
        """Make the served PULP_MANIFEST list exactly ``entries``."""
        return write_manifest(self.root / MANIFEST, entries)

    def sync(
        self,
        phase: str,
        database: str,
        url: str,
        units: int,
        *,
        mirror: bool,
        policy: str = "immediate",
        expect: tuple[int, int] | None = None,
        raw: float | None = None,
        force: bool = False,
        unchanged: bool = False,
        keep: bool = True,
        manifest: str = MANIFEST,
        repository: str = "bench",
    ) -> Row:
        """Run one sync; ``keep``: add its row to the table (else the caller picks which to add)."""
        spec = {
            "kind": "sync",
            "db": url,
            "storage": str(self.work / database / "storage"),
            "url": self.server.base_url + manifest,
            "repository": repository,
            "policy": policy,
            "concurrency": self.args.concurrency,
            "mirror": mirror,
            "force": force,
        }
        profile = None
        if self.args.profile is not None:
            self.args.profile.mkdir(parents=True, exist_ok=True)
            profile = self.args.profile / f"{database}-{re.sub(r'[^a-z0-9]+', '-', phase.lower()).strip('-')}.txt"
        result = run_phase(spec, profile)
        self.package = result["package"]
        added, removed = result["added"], result["removed"]
        if result["failed"] or (expect is not None and (added, removed) != expect):
            self.problems.append(
                f"{phase} on {database}: added {added}, removed {removed}, failed {result['failed']} "
                f"(expected added {expect[0] if expect else '?'}, removed {expect[1] if expect else '?'}, failed 0)"
            )
        if result["remote_unchanged"] != unchanged:
            self.problems.append(f"{phase} on {database}: remote_unchanged is {result['remote_unchanged']}")
        row = Row(
            phase,
            database,
            units,
            result["wall"],
            result["peak_rss_mib"],
            result["statements"],
            result["stall"],
            f"+{added}/-{removed}",
            raw,
            cpu=result["cpu"],
            stall_cpu=result["stall_cpu"],
        )
        if keep:
            self.rows.append(row)
        print(f"  {phase}: {row.wall:.2f} s, peak RSS {row.rss_mib:.1f} MiB", flush=True)
        return row

    def fastest(
        self, spec: dict[str, Any], repeat: int | None = None, each: Callable[[int], dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The fastest of ``repeat`` (default ``--repeat``) runs of a raw phase: the limit the machine allows.

        ``each(number)`` adds to the spec what differs from one run to the next."""
        runs = self.args.repeat if repeat is None else repeat
        specs = ({**spec, **(each(number) if each else {})} for number in range(runs))
        return min((run_phase(one) for one in specs), key=lambda result: result["wall"])

    def download(
        self,
        phase: str,
        database: str,
        manifest: Path,
        raw: float | None = None,
        *,
        repeat: int | None = None,
        keep: bool = True,
    ) -> Row:
        dest = self.work / "downloads"
        spec = {
            "kind": "download",
            "manifest": str(manifest),
            "base_url": self.server.base_url,
            "concurrency": self.args.concurrency,
        }
        try:
            # Each run creates its files anew, as a sync does: a run writing over the files of the run
            # before it would reuse their inodes and blocks, which a sync never can.
            result = self.fastest(spec, repeat, each=lambda number: {"dest": str(dest / f"run-{number}")})
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        row = Row(phase, database, result["files"], result["wall"], result["peak_rss_mib"], None, result["stall"])
        row.raw = raw if raw is not None else row.wall
        row.cpu, row.stall_cpu = result["cpu"], result["stall_cpu"]
        if keep:
            self.rows.append(row)
        return row

    def insert(self, database: str, url: str, rows: int) -> Row:
        result = self.fastest({"kind": "insert", "db": url, "rows": rows})
        row = Row(RAW_INSERT, database, rows, result["wall"], result["peak_rss_mib"], result["statements"])
        row.cpu = result["cpu"]
        self.rows.append(row)
        return row


def run_speed(bench: Bench, databases: Sequence[str]) -> list[Target]:
    """Raw limits, then initial, no-op, unchanged (shortcut), mirror and additive syncs, for each database."""
    n, size = bench.args.files, bench.args.size
    k = max(1, n // 10)
    print(f"Writing {n + 2 * k} files of {size} bytes...", flush=True)
    entries = make_entries(bench.root, range(n + 2 * k + SMALL_FILES), size)
    # v1 is the initial state; v2 drops files 0..k-1 and adds n..n+k-1; v3 shifts by another k
    states = {
        name: [entries[i] for i in range(start, start + n)] for name, start in (("v1", 0), ("v2", k), ("v3", 2 * k))
    }
    full, new = bench.work / "full.manifest", bench.work / "new.manifest"
    write_manifest(full, states["v1"])
    write_manifest(new, [entries[i] for i in range(n, n + k)])
    for database in databases:
        print(f"{database}: raw limits...", flush=True)
        url = fresh_database(database, bench.work / database, bench.args.postgres_url)
        raw = bench.download(RAW_DOWNLOAD, database, full).wall
        bench.download(RAW_NEW, database, new, raw)
        bench.insert(database, url, n)
        print(f"{database}: syncs...", flush=True)
        bench.publish(states["v1"])
        bench.sync(INITIAL, database, url, n, mirror=True, expect=(n, 0), raw=raw)
        # force: the no-op resync measures the whole path, not the shortcut measured next
        bench.sync(NOOP, database, url, n, mirror=True, expect=(0, 0), raw=raw, force=True)
        bench.sync(SHORTCUT, database, url, n, mirror=True, expect=(0, 0), raw=raw, unchanged=True)
        bench.publish(states["v2"])
        bench.sync(MIRROR, database, url, n, mirror=True, expect=(k, k), raw=raw)
        bench.publish(states["v3"])
        bench.sync(ADDITIVE, database, url, n, mirror=False, expect=(k, 0), raw=raw)
        # the fixed cost of a sync, whatever its size: a 10-file remote into a repository of its own
        write_manifest(bench.root / SMALL_MANIFEST, [entries[i] for i in range(n + 2 * k, n + 2 * k + SMALL_FILES)])
        small = {"manifest": SMALL_MANIFEST, "repository": "small", "mirror": True}
        bench.sync(SMALL, database, url, SMALL_FILES, expect=(SMALL_FILES, 0), **small)
        bench.sync(SMALL_NOOP, database, url, SMALL_FILES, expect=(0, 0), force=True, **small)
    return speed_targets(bench.rows, databases)


def run_memory(bench: Bench, databases: Sequence[str], *, resync: bool = False) -> list[Target]:
    """Initial on_demand syncs (rows only, no downloads) of N and 10 N units, each in a fresh database.

    With ``resync`` (``--million``), the larger one is followed by its no-op resync, and the time
    ratio is a target too.
    """
    targets = []
    for database in databases:
        measured = []
        for n in (bench.args.files, bench.args.files * 10):
            print(f"{database}: on_demand initial sync of {n} units...", flush=True)
            bench.publish(list(make_entries(None, range(n), bench.args.size).values()))  # manifest only
            shutil.rmtree(bench.work / database, ignore_errors=True)
            url = fresh_database(database, bench.work / database, bench.args.postgres_url)
            name = _count(n)
            phase = f"on_demand initial {name}"
            measured.append(bench.sync(phase, database, url, n, mirror=False, policy="on_demand", expect=(n, 0)))
        if resync:
            print(f"{database}: no-op resync of {n} units...", flush=True)
            bench.sync(f"no-op resync {name}", database, url, n, mirror=False, policy="on_demand", expect=(0, 0))
            targets.append(scale_time_target(*measured, MILLION_TIME_LIMIT))
        targets.append(memory_target(*measured))
    return targets


def _count(n: int) -> str:
    """1000000 as "1M", 100000 as "100k"."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def run_large(bench: Bench, databases: Sequence[str]) -> list[Target]:
    """Raw download vs immediate sync of ``--large-files`` files of ``--large-mib`` and ``--compare-mib`` MiB.

    The files are written to the run's temporary folder (on disk, like a real remote's), each size in
    turn, and removed before the next. Raw downloads and syncs alternate ``--repeat`` times and the
    fastest of each counts: on a shared machine, a single sync against the best of three raw runs
    would measure the noise. Every sync starts from a fresh database and empty storage, and every
    phase starts with no dirty pages left by the one before (``os.sync``): otherwise the kernel's
    writeback of the previous phase's gigabyte competes with the next phase's writes.
    """
    args = bench.args
    sizes = [args.large_mib * MIB] + ([args.compare_mib * MIB] if args.compare_mib else [])
    runs: dict[str, list[tuple[int, Row, Row]]] = {database: [] for database in databases}
    for size in sizes:
        label = f"{size // MIB} MiB"
        print(f"Writing {args.large_files} files of {label}...", flush=True)
        entries = make_large_entries(bench.root, args.large_files, size)
        manifest = bench.work / "large.manifest"
        write_manifest(manifest, entries)
        bench.publish(entries)
        for database in databases:
            print(f"{database}: raw download and sync of {args.large_files} x {label}...", flush=True)
            raws, syncs = [], []
            for _ in range(args.repeat):
                shutil.rmtree(bench.work / database, ignore_errors=True)
                os.sync()
                raws.append(bench.download(f"raw download {label}", database, manifest, repeat=1, keep=False))
                url = fresh_database(database, bench.work / database, args.postgres_url)
                os.sync()
                n = len(entries)
                syncs.append(bench.sync(f"sync {label}", database, url, n, mirror=True, expect=(n, 0), keep=False))
            raw, sync = (min(rows, key=lambda row: row.wall) for rows in (raws, syncs))
            sync.raw = raw.wall
            bench.rows += [raw, sync]
            raw.unit_bytes = sync.unit_bytes = size
            runs[database].append((size, raw, sync))
        shutil.rmtree(bench.root / "large", ignore_errors=True)
    shutil.rmtree(bench.work / "sqlite", ignore_errors=True)
    return [target for database in databases for target in large_targets(runs[database])]


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {system}, Python {platform.python_version()}"


def source_revision(package: str) -> str:
    """The measured code: the checkout's commit (and whether pendingops/ has local changes), or its path."""
    checkout = BENCH_DIR.parent
    if Path(package).resolve() != checkout / "pendingops":
        return f"pendingops imported from {package}"

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "pendingops")
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (" + local changes in pendingops/" if dirty else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    databases = []
    versions = []
    for kind in args.databases:
        try:
            versions.append(database_version(kind, args.postgres_url))
            databases.append(kind)
        except Exception as exc:  # an unreachable server: measure the others
            print(f"skipping {kind}: {str(exc).splitlines()[0]}", flush=True)
    if not databases:
        print("no database to measure", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="pendingops-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        root = work / "remote"
        root.mkdir()
        (root / MANIFEST).write_text("", encoding="utf-8")
        with serve(root, work / "server", args.server, install=not args.no_install) as server:
            print(f"Serving {root} with {server.kind} at {server.base_url}", flush=True)
            bench = Bench(args, work, root, server)
            try:
                if args.large:
                    targets = run_large(bench, databases)
                elif args.memory or args.million:
                    targets = run_memory(bench, databases, resync=args.million)
                else:
                    targets = run_speed(bench, databases)
            except BenchError as exc:
                print(f"benchmark aborted: {exc}", file=sys.stderr)
                return 1
    mode = "speed"
    for flag in ("memory", "large", "million"):
        if getattr(args, flag):
            mode = f"{flag} mode (--{flag})"
    print()
    print(f"pendingops benchmark, {mode}: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {source_revision(bench.package)}")
    print(f"machine: {machine()}")
    print(f"server: {server.kind}; databases: {', '.join(versions)}; event loop: {loop_name()}")
    if args.large:
        sizes = " and ".join(f"{mib} MiB" for mib in (args.large_mib, args.compare_mib) if mib)
        print(f"files: {args.large_files} x {sizes}; download concurrency {args.concurrency}", end="")
    else:
        print(f"files: {args.files} x {args.size} bytes; download concurrency {args.concurrency}", end="")
    print("" if args.memory or args.million else f"; raw limits: fastest of {args.repeat} runs")
    print()
    print(table(bench.rows, server.kind, mib=args.large))
    print()
    print("Targets (MISSION.md):")
    print(targets_section(targets))
    if not (args.memory or args.million or args.large):
        print("- [not measured] peak RSS at 10x the units at most 1.25x: run with --memory")
    elif args.memory:
        print("- [not measured] speed, SQL and loop-stall targets: run without --memory")
    for problem in bench.problems:
        print(f"PROBLEM: {problem}")
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
