"""How long the command line takes to start and answer, per command (goal: ``--help`` within 0.2 s,
``versions REPO`` within 0.5 s).

    .venv/bin/python benchmarks/cli_startup.py [--runs 20]

Uses hyperfine (Debian's ``hyperfine``) when installed, else a timing loop. The commands run with
bytecode caching on (in a private cache folder), as an installed package does. Also prints the CPU time of
each command (user + system, from ``os.wait4``), which a busy machine inflates far less than wall time,
and the slowest imports of ``versions`` from ``python -X importtime``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS = {"--help": 0.2, "versions": 0.5}


def _prepare(folder: Path) -> list[str]:
    """A SQLite database with one repository, created once (so no run pays for creating the schema)."""
    from pendingops import open_database
    from pendingops.db.versions import ensure_repository

    url = f"sqlite:///{folder / 'startup.db'}"
    db = open_database(url)
    db.transact(ensure_repository, "startup")
    db.close()
    return ["--db", url, "--storage", str(folder / "storage")]


def _commands(settings: list[str]) -> dict[str, list[str]]:
    script = str(Path(sys.executable).with_name("pendingops"))
    return {
        "--help": [script, "--help"],
        "plugins": [script, "plugins"],
        "versions": [script, *settings, "versions", "startup"],
    }


def _environment(folder: Path) -> dict[str, str]:
    """Ours, with bytecode written and read (an editable install under PYTHONDONTWRITEBYTECODE has none)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(folder / "pycache")}


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return wall, usage.ru_utime + usage.ru_stime


def _hyperfine(commands: dict[str, list[str]], runs: int, folder: Path, env: dict[str, str]) -> dict[str, float]:
    export = folder / "hyperfine.json"
    subprocess.run(
        [
            "hyperfine",
            "--shell=none",
            "--warmup",
            "2",
            "--runs",
            str(runs),
            "--export-json",
            str(export),
            "--style",
            "basic",
            *[" ".join(c) for c in commands.values()],
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    results = json.loads(export.read_text())["results"]
    return {name: result["median"] for name, result in zip(commands, results, strict=True)}


def _slowest_imports(command: list[str], env: dict[str, str], top: int = 8) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pendingops.cli", *command[1:]],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        commands = _commands(_prepare(folder))
        env = _environment(folder)
        for command in commands.values():  # fills the bytecode cache
            _timed(command, env)
        samples = {name: [_timed(command, env) for _ in range(args.runs)] for name, command in commands.items()}
        median_wall = (
            _hyperfine(commands, args.runs, folder, env)
            if shutil.which("hyperfine")
            else {name: statistics.median(w for w, _ in runs) for name, runs in samples.items()}
        )
        timer = "hyperfine" if shutil.which("hyperfine") else "a timing loop"
        print(f"{args.runs} runs each, median wall time by {timer}; CPU time (user + system) from our own loop")
        print(f"{'command':<10} {'wall s':>8} {'CPU s':>8}  goal")
        for name, runs in samples.items():
            cpu = statistics.median(c for _, c in runs)
            goal = GOALS.get(name)
            verdict = "-" if goal is None else f"{goal} s: {'met' if median_wall[name] <= goal else 'NOT MET'}"
            print(f"{name:<10} {median_wall[name]:>8.3f} {cpu:>8.3f}  {verdict}")
        print("\nslowest imports of 'versions' (cumulative microseconds, python -X importtime):")
        for micros, module in _slowest_imports(commands["versions"], env):
            print(f"  {micros:>9}  {module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
