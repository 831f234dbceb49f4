"""The mutation check: plausible bugs that break the guarantees, each of which the tests must catch.

    python tools/mutants.py               run every mutant, print the table
    python tools/mutants.py --only ID ...  run some of them
    python tools/mutants.py --list        list the mutants (and check their patterns still match)
    python tools/mutants.py --baseline    the selected tests pass without any mutant, and two obvious
                                          mutants prove the scratch copy is what the tests import

The mutants are listed in ``tools/mutant_catalogue/``, one module per area of ``pendingops/`` they
mutate (``Mutant`` in ``_mutant.py``, the test paths several areas share in ``_test_paths.py``, the
two self checks of ``--baseline`` in ``self_checks.py``); this file runs them.

A mutant is one small bug: an exact ``old`` snippet of a file and its ``new`` replacement (a few
mutants change the same check in two places of one file). The snippet must occur exactly once in the
committed file, or the check fails loudly ("pattern not found" / "pattern ambiguous"), so the list
stays honest as the code changes. Each mutant is applied to a scratch copy of the committed tree
(``git archive HEAD``: uncommitted changes are not part of the check), and its own small selection
of tests runs there, with that copy first on ``PYTHONPATH`` so the console script and every other
subprocess the tests start import the mutated copy too. A mutant is killed when a test fails.

Mutants of a database-specific guarantee run their tests on PostgreSQL too and count as not run
when no PostgreSQL test ran. The exit status is non-zero when a mutant survived, a pattern is
missing, or a mutant could not be run. Not part of CI (it takes minutes): run it before resolving
an issue that adds a guarantee, and add a mutant for that guarantee.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# The catalogue of mutants sits next to this file: a package when imported as ``tools.mutants``,
# found through the script's folder (first on ``sys.path``) when run as ``python tools/mutants.py``.
if __package__:
    from .mutant_catalogue import MUTANTS, SELF_CHECKS, Mutant
else:
    from mutant_catalogue import MUTANTS, SELF_CHECKS, Mutant

ROOT = Path(__file__).resolve().parent.parent
#: per-test limit (pytest-timeout) inside a mutant's run: a mutant that makes a sync hang is caught by it
TEST_TIMEOUT = 120
#: a whole mutant run taking longer than this is stopped (and counted as killed: the suite hung)
RUN_TIMEOUT = 900


# -- running ---------------------------------------------------------------------------------------


class PatternError(Exception):
    """A mutant's snippet is missing from its file, or found more than once."""


@dataclass
class Outcome:
    mutant: Mutant
    result: str
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    detail: str = ""
    postgres_ran: bool = False
    #: pytest's one-line summary of each failed test
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result in ("killed", "killed (hang)", "passes")


def mutate(text: str, mutant: Mutant) -> str:
    """``text`` with the mutant's edits; PatternError if a snippet is not there exactly once."""
    for old, new in mutant.edits:
        count = text.count(old)
        if count != 1:
            problem = "pattern not found" if count == 0 else f"pattern ambiguous ({count} matches)"
            first = old.strip().splitlines()[0]
            raise PatternError(f"{mutant.id}: {problem} in {mutant.file}: {first!r}")
        text = text.replace(old, new)
    return text


def committed_tree(dest: Path) -> str:
    """Extract the tree of HEAD into ``dest``; return HEAD's short commit id."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return head.stdout.strip()


def check_patterns(base: Path, mutants: Sequence[Mutant]) -> list[str]:
    """The pattern problems of ``mutants`` against the committed files in ``base``."""
    problems = []
    for mutant in mutants:
        path = base / mutant.file
        if not path.is_file():
            problems.append(f"{mutant.id}: file not found: {mutant.file}")
            continue
        try:
            mutated = mutate(path.read_text(encoding="utf-8"), mutant)
            compile(mutated, str(path), "exec")
        except PatternError as exc:
            problems.append(str(exc))
        except SyntaxError as exc:
            problems.append(f"{mutant.id}: the mutated {mutant.file} does not compile: {exc}")
    return problems


def postgres_reachable() -> bool:
    """Whether the tests' PostgreSQL server answers (the same check the tests make)."""
    probe = (
        "import os, sqlalchemy\n"
        "url = os.environ.get('PENDINGOPS_TEST_POSTGRES', 'postgresql+psycopg2://postgres@127.0.0.1:5432/test')\n"
        "url = sqlalchemy.engine.make_url(url).set(database='postgres')\n"
        "sqlalchemy.create_engine(url, connect_args={'connect_timeout': 3}).connect().close()\n"
    )
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["HYPOTHESIS_PROFILE"] = "ci"  # derandomized: the same examples on every run
    env["COLUMNS"] = "400"  # pytest cuts its one-line failure summaries to the terminal's width
    # A skipped PostgreSQL test must stay a skip (counted by this tool), not become a failure.
    env.pop("PENDINGOPS_REQUIRE_POSTGRES", None)
    return env


def _imported_from(copy: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import pendingops; print(pendingops.__file__)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or done.stderr.strip()


def run_tests(mutant: Mutant, copy: Path, outcome: Outcome) -> int | None:
    """Run the mutant's tests in ``copy``; fill ``outcome``'s counts; return pytest's exit code (None: hung)."""
    env = _environment(copy)
    imported = _imported_from(copy, env)
    if not imported.startswith(str(copy)):
        outcome.detail = f"pendingops is imported from {imported}, not from the scratch copy"
        return -1
    report = copy / "mutant-report.xml"
    markers = {"sqlite": ["-m", "not postgres"], "postgresql": ["-m", "postgres"], "both": []}[mutant.databases]
    # A database-independent mutant stops at its first failing test; a database-specific one runs its
    # tests on every database, so the table shows where it is caught.
    stop = ["-x"] if mutant.databases == "sqlite" else []
    command = [
        sys.executable,
        "-m",
        "pytest",
        *stop,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--timeout={TEST_TIMEOUT}",
        f"--junitxml={report}",
        *markers,
        *mutant.tests,
    ]
    process = subprocess.Popen(
        command, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        code = None
    _read_report(report, outcome)
    outcome.failures = [line for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    if code not in (0, 1):
        outcome.detail = output.strip().splitlines()[-1] if output.strip() else f"pytest exit code {code}"
    return code


def _read_report(report: Path, outcome: Outcome) -> None:
    if not report.exists():
        return
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("skipped") is not None:
            outcome.skipped += 1
            continue
        outcome.ran += 1
        if "postgresql" in name:  # a "[postgresql]" parameter, or a PostgreSQL-only test
            outcome.postgres_ran = True
        if case.find("failure") is not None or case.find("error") is not None:
            outcome.failed += 1


def run_one(mutant: Mutant, base: Path, scratch: Path, *, apply: bool) -> Outcome:
    """Copy ``base``, apply ``mutant`` (unless ``apply`` is false: the baseline), run its tests."""
    started = time.monotonic()
    outcome = Outcome(mutant, "ERROR")
    copy = Path(tempfile.mkdtemp(prefix=f"{mutant.id}-", dir=scratch))
    try:
        shutil.copytree(base, copy, dirs_exist_ok=True)
        if apply:
            target = copy / mutant.file
            target.write_text(mutate(target.read_text(encoding="utf-8"), mutant), encoding="utf-8")
        code = run_tests(mutant, copy, outcome)
    except PatternError as exc:
        outcome.detail = str(exc)
        outcome.result = "PATTERN NOT FOUND"
        return outcome
    finally:
        outcome.seconds = time.monotonic() - started
        shutil.rmtree(copy, ignore_errors=True)
    wants_postgres = mutant.databases != "sqlite"
    if code is None:
        outcome.result = "killed (hang)" if apply else "HANGS"
    elif code == -1:
        outcome.result = "ERROR"
    elif code not in (0, 1) or outcome.ran == 0:
        outcome.result = "ERROR"
        outcome.detail = outcome.detail or "no test ran: is the selection stale?"
    elif wants_postgres and not outcome.postgres_ran and code == 0:
        outcome.result = "NOT RUN ON POSTGRESQL"
        outcome.detail = "the guarantee is database-specific and no PostgreSQL test ran"
    elif apply:
        outcome.result = "killed" if code == 1 else "SURVIVED"
    else:
        outcome.result = "passes" if code == 0 else "FAILS UNMUTATED"
    return outcome


def print_table(outcomes: Sequence[Outcome], *, show_failures: bool = False) -> None:
    """The table of outcomes; with ``show_failures``, the line pytest gave each failed test."""
    rows = [("id", "guarantee", "file", "result", "tests run", "seconds")]
    for o in outcomes:
        tests = (
            f"{o.ran}" + (f" ({o.failed} failed)" if o.failed else "") + (f", {o.skipped} skipped" if o.skipped else "")
        )
        rows.append((o.mutant.id, o.mutant.guarantee, o.mutant.file, o.result, tests, f"{o.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("-+-".join("-" * width for width in widths))
    for o in outcomes:
        if o.detail:
            print(f"  {o.mutant.id}: {o.detail}")
        for line in o.failures if show_failures else ():
            print(f"  {o.mutant.id}: {_shorten(line)}")


def _shorten(text: str, limit: int = 220) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choose(ids: Sequence[str] | None) -> list[Mutant]:
    if not ids:
        return list(MUTANTS)
    known = {m.id: m for m in (*MUTANTS, *SELF_CHECKS)}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise SystemExit(f"unknown mutant id(s): {', '.join(unknown)} (see --list)")
    return [known[i] for i in ids]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and check their patterns")
    parser.add_argument("--baseline", action="store_true", help="check the selected tests pass without mutants")
    parser.add_argument("--why", action="store_true", help="show the failure that killed each mutant")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1: timing stays honest)")
    args = parser.parse_args(argv)
    mutants = choose(args.only)

    with tempfile.TemporaryDirectory(prefix="pendingops-mutants-") as scratch_dir:
        scratch = Path(scratch_dir)
        base = scratch / "base"
        base.mkdir()
        head = committed_tree(base)
        problems = check_patterns(base, [*mutants, *SELF_CHECKS])
        for problem in problems:
            print(f"ERROR {problem}", file=sys.stderr)
        if args.list:
            for m in mutants:
                print(f"{m.id:32} {m.guarantee:40} {m.file}\n{'':32} {m.why}")
                print(f"{'':32} tests ({m.databases}): {' '.join(m.tests)}")
            print(f"{len(mutants)} mutants; patterns checked against the committed tree at {head}")
            return 1 if problems else 0
        if problems:
            print("the mutant list no longer matches the code: fix the patterns first", file=sys.stderr)
            return 2
        if subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True).stdout:
            print(f"note: uncommitted changes are not part of the check (it runs the tree at {head})")
        if any(m.databases != "sqlite" for m in mutants) and not postgres_reachable():
            print("note: PostgreSQL does not answer: database-specific mutants cannot be run", file=sys.stderr)

        started = time.monotonic()
        apply = not args.baseline
        runs = mutants if apply else [*mutants, *(check for check in SELF_CHECKS if check not in mutants)]

        def job(mutant: Mutant) -> Outcome:
            # The baseline runs the self checks mutated: each must be killed to prove the copy is imported.
            outcome = run_one(mutant, base, scratch, apply=apply or mutant in SELF_CHECKS)
            print(f"  {mutant.id}: {outcome.result} ({outcome.seconds:.1f} s)", flush=True)
            return outcome

        print(f"{'mutants' if apply else 'baseline'} at {head}: {len(runs)} runs", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(job, runs))
        elapsed = time.monotonic() - started

    print()
    print_table(outcomes, show_failures=args.why)
    good = sum(o.ok for o in outcomes)
    if apply:
        killed = sum(o.result.startswith("killed") for o in outcomes)
        print(f"\n{killed}/{len(outcomes)} mutants killed in {elapsed:.0f} s (tree at {head})")
    else:
        print(f"\n{good}/{len(outcomes)} as expected in {elapsed:.0f} s (tree at {head})")
    return 0 if good == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
