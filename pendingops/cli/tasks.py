"""``pendingops tasks [--state STATE]``, ``tasks show|wait|cancel N``: queued syncs, by task number."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

#: seconds between two looks at the database while ``tasks wait`` waits
_POLL = 0.5
_MIB = 1024 * 1024


def add_task_commands(commands: Any) -> None:
    """Register ``tasks`` and its actions (the queue is imported when they run, not here: startup stays light)."""
    tasks = commands.add_parser("tasks", help="list queued syncs: state, progress, worker, version, error")
    tasks.add_argument("--json", action="store_true")
    tasks.add_argument(
        "--state", help="only the tasks in this state: queued, running, succeeded, failed or cancelled"
    )
    actions = tasks.add_subparsers(dest="tasks_command", metavar="ACTION", parser_class=type(tasks))
    cancel_parser = actions.add_parser("cancel", help="cancel a queued sync, or stop a running one")
    cancel_parser.add_argument("id", type=_number, help="the task number (sync --enqueue prints it; tasks lists it)")
    show = actions.add_parser("show", help="one task's whole record: options, progress, outcome, reason, version")
    show.add_argument("id", type=_number, help="the task number")
    show.add_argument("--json", action="store_true")
    wait = actions.add_parser(
        "wait", help="wait for a task to end: exit 0 if it succeeded, 1 if it failed or was cancelled, 2 on timeout"
    )
    wait.add_argument("id", type=_number, help="the task number")
    wait.add_argument("--timeout", type=_timeout, metavar="S", help="give up after S seconds (exit 2; default: never)")


def _number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < 10**9:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more, got {text}")
    return value


def cmd_tasks(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.workers.queue import require_postgresql
    from pendingops.workers.tasks import TASK_STATES, task_views

    require_postgresql(settings.db_url, "tasks")
    if args.tasks_command == "cancel":
        return _cancel(args.id, settings)
    if args.tasks_command == "show":
        return _show(args.id, args.json, settings)
    if args.tasks_command == "wait":
        return _wait(args.id, args.timeout, settings)
    if args.state is not None and args.state not in TASK_STATES:
        raise ValueError(f"no task state {args.state!r} (one of: {', '.join(TASK_STATES)})")
    tasks = task_views(settings.db, state=args.state)
    if args.json:
        listed = [{k: v for k, v in asdict(task).items() if k != "options"} for task in tasks]
        print(json.dumps(listed, indent=2, default=_iso))
        return 0
    print(f"{'task':>6} {'state':<10} {'repository':<20} {'version':>7} {'worker':<24} url")
    for task in tasks:
        version = "" if task.version is None else str(task.version)
        print(f"{task.task:>6} {task.state:<10} {task.repository:<20} {version:>7} {task.worker or '':<24} {task.url}")
        if task.state == "running":
            print(f"{'':>6} {_progress(task)}")
        if task.error:
            print(f"{'':>6} error: {task.error}")
    return 0


def _progress(task: Any) -> str:
    """``12 / 40 units, 3.2 MiB, 1 min 05 s``: how far a running sync is, from its progress record."""
    from pendingops.readable import human_seconds

    elapsed = human_seconds(task.elapsed_s) if task.elapsed_s is not None else "-"
    if task.units_done is None:
        return f"starting, {elapsed}"
    total = "?" if task.units_total is None else str(task.units_total)
    return f"{task.units_done} / {total} units, {(task.downloaded_bytes or 0) / _MIB:.1f} MiB, {elapsed}"


def _show(number: int, as_json: bool, settings: Any) -> int:
    from pendingops.workers.tasks import task_views

    (task,) = task_views(settings.db, number=number)
    record = asdict(task)
    if as_json:
        print(json.dumps(record, indent=2, default=_iso))
        return 0
    options = record.pop("options") or {}
    for key, value in record.items():
        print(f"{key + ':':<17} {'' if value is None else _iso(value) if hasattr(value, 'isoformat') else value}")
    if task.state == "running":
        print(f"{'progress:':<17} {_progress(task)}")
    print("options:")
    for key, value in sorted(options.items()):
        print(f"  {key + ':':<27} {json.dumps(value)}")
    return 0


def _wait(number: int, timeout: float | None, settings: Any) -> int:
    """Exit 0 when task ``number`` succeeded, 1 when it failed or was cancelled, 2 when ``timeout`` passed."""
    from pendingops.workers.tasks import FINISHED, task_views

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        (task,) = task_views(settings.db, number=number)
        if task.state in FINISHED:
            reason = f": {task.error}" if task.error else ""
            made = f" (version {task.version})" if task.version is not None else ""
            print(f"task {number} {task.state}{made}{reason}")
            return 0 if task.state == "succeeded" else 1
        if deadline is not None and time.monotonic() >= deadline:
            print(f"pendingops: task {number} is still {task.state} after {timeout:g} s", file=sys.stderr)
            return 2
        time.sleep(_POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic())))


def _cancel(number: int, settings: Any) -> int:
    import asyncio

    from pendingops.workers.queue import SYNC_TASK, cancel, make_app
    from pendingops.workers.task_numbers import job_of
    from pendingops.workers.tasks import task_views

    (found,) = task_views(settings.db, number=number)
    job_id = settings.db.transact(job_of, number, SYNC_TASK)
    app = make_app(settings.db_url)

    async def run() -> bool:
        async with app.open_async():
            return await cancel(app, job_id)

    if not asyncio.run(run()):
        print(f"task {number} is {found.state}: nothing to cancel")
        return 1
    state = "cancelled" if found.state == "queued" else "asked to stop (its version is discarded)"
    print(f"task {number} {state}")
    return 0


def _iso(value: Any) -> str:
    return value.isoformat()
