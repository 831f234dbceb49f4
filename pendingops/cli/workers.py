"""``pendingops worker`` and ``sync ... --enqueue``: syncs run by worker processes (``tasks``: cli/tasks.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pendingops.cli._types import port_number


def add_worker_commands(commands: Any) -> None:
    """Register ``worker``, and ``--enqueue`` on ``sync``."""
    commands.choices["sync"].add_argument(
        "--enqueue", action="store_true", help="queue the sync for a worker (PostgreSQL) and print its task number"
    )
    worker = commands.add_parser("worker", help="run queued syncs (PostgreSQL); stops cleanly on SIGTERM")
    worker.add_argument("--concurrency", type=_count, default=1, help="syncs at once (default: 1)")
    worker.add_argument("--heartbeat", type=_seconds, default=5.0, help="seconds between heartbeats (default: 5)")
    worker.add_argument(
        "--stalled-after",
        type=_seconds,
        default=30.0,
        help="a running sync whose worker sent no heartbeat for this long is queued again (default: 30)",
    )
    worker.add_argument(
        "--grace",
        type=_seconds,
        default=60.0,
        help="on SIGTERM, seconds the running syncs may take to finish before they are stopped and queued"
        " again (default: 60)",
    )
    worker.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (0: a free port; the URL is printed)",
    )
    worker.add_argument(
        "--metrics-host", default="127.0.0.1", help="address the metrics listen on (default: 127.0.0.1)"
    )
    worker.add_argument(
        "--schedule-tick",
        type=_tick,
        default=60,
        metavar="SECONDS",
        help="how often schedules are checked, a divisor of 60 (default: 60)",
    )


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def _tick(text: str) -> int:
    if not text.isdigit() or int(text) < 1 or 60 % int(text):
        raise argparse.ArgumentTypeError(f"must divide 60 (1, 2, 5, 10, 15, 30, 60), got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {text}")
    return value


def cmd_enqueue(args: argparse.Namespace, settings: Any) -> int:
    import asyncio

    from pendingops.cli._request import sync_request
    from pendingops.cli.plugin_options import plugin_options
    from pendingops.plugins import get_plugin
    from pendingops.sync.request import refuse_stored_password
    from pendingops.sync.run import bind
    from pendingops.workers.queue import enqueue, ensure_queue_schema, make_app, require_postgresql
    from pendingops.workers.tasks import task_number

    require_postgresql(settings.db_url, "--enqueue")
    refuse_stored_password(args.url)  # before anything is written
    given = plugin_options(args.option, get_plugin(args.plugin))  # checked now, not by the worker
    request = settings.db.transact(bind, sync_request(args, plugin_options=given, storage=settings.storage_dir))
    app = make_app(settings.db_url)
    ensure_queue_schema(settings.db, app)

    async def queue() -> tuple[int, bool]:
        async with app.open_async():
            return await enqueue(app, request)

    job_id, new = asyncio.run(queue())
    number = task_number(settings.db, job_id)
    if not new:
        print(f"pendingops: a sync of {args.repo} is already queued: task {number}", file=sys.stderr)
    print(json.dumps({"task": number}) if args.json else f"queued task {number}")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.loop import run as run_loop
    from pendingops.workers.metrics import serve_metrics
    from pendingops.workers.observe import quiet_procrastinate_job_lines
    from pendingops.workers.queue import SYNC_TASK, WorkerRuntime, ensure_queue_schema, make_app, require_postgresql
    from pendingops.workers.runner import WorkerSettings, run_worker
    from pendingops.workers.schedule import register_tick

    require_postgresql(settings.db_url, "worker")
    app = make_app(settings.db_url)
    register_tick(app, args.schedule_tick)
    created = ensure_queue_schema(settings.db, app)
    runtime = WorkerRuntime(settings.db, settings.storage)
    quiet_procrastinate_job_lines(SYNC_TASK)
    metrics, stop_metrics = "", None
    if args.metrics_port is not None:
        try:
            url, stop_metrics = serve_metrics(args.metrics_host, args.metrics_port)
        except OSError as exc:
            where = f"{args.metrics_host} port {args.metrics_port}"
            print(f"pendingops: error: cannot serve metrics on {where}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        metrics = f"; metrics on {url}"
    queue = " (created the task queue's tables)" if created else ""
    print(f"worker {runtime.name}: waiting for syncs, {args.concurrency} at once{queue}{metrics}", flush=True)
    worker = WorkerSettings(args.concurrency, args.heartbeat, args.stalled_after, args.grace)
    try:
        run_loop(run_worker(app, runtime, worker))
    finally:
        if stop_metrics is not None:
            stop_metrics()
    print(f"worker {runtime.name}: stopped", flush=True)
    return 0
