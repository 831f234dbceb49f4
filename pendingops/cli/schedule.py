"""``pendingops schedule add|list|remove``: syncs the workers queue at fixed periods or cron times."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from pendingops.cli._request import sync_request
from pendingops.cli._types import repository_name, whole_count
from pendingops.cli.plugin_options import add_option_argument, plugin_options
from pendingops.remote import POLICIES


def add_schedule_commands(commands: Any) -> None:
    schedule = commands.add_parser("schedule", help="syncs queued at fixed periods or cron times (PostgreSQL)")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION", parser_class=type(schedule))
    actions.required = True
    add = actions.add_parser("add", help="queue a sync of URL into REPO every period or at cron times")
    add.add_argument("name", help="the schedule's name (unique)")
    add.add_argument("url", help="the remote's URL, as for sync")
    add.add_argument("--repo", required=True, type=repository_name)
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=_every, metavar="PERIOD", help="e.g. 15m, 6h, 1d (from now on)")
    when.add_argument("--cron", type=_cron, metavar="EXPR", help="5-field cron expression, in UTC")
    add.add_argument("--mirror", action="store_true", help="the version holds exactly what the remote lists")
    add.add_argument("--plugin", default="file")
    add.add_argument("--policy", choices=POLICIES, default="immediate")
    add.add_argument("--on-error", choices=("fail", "skip"), default="fail")
    add.add_argument("--concurrency", type=int, default=10, help="downloads at once (default: 10)")
    add_option_argument(add)
    add.add_argument(
        "--force", action="store_true", help="run each sync whole, even when the remote is unchanged (see sync --force)"
    )
    add.add_argument(
        "--retain",
        type=whole_count,
        metavar="K",
        help="after each successful sync keep only the K latest versions; remembered for the repository",
    )
    listing = actions.add_parser("list", help="schedules with their last and next due times")
    listing.add_argument("--json", action="store_true")
    remove = actions.add_parser("remove", help="delete a schedule (queued syncs stay queued)")
    remove.add_argument("name", help="the schedule's name")


def _every(text: str) -> int:
    from pendingops.workers.schedule import parse_every

    try:
        return parse_every(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--every: ")) from None


def _cron(text: str) -> str:
    from pendingops.workers.schedule import check_cron

    try:
        return check_cron(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--cron: ")) from None


def cmd_schedule(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.workers.queue import require_postgresql
    from pendingops.workers.schedule import add_schedule, list_schedules, remove_schedule

    require_postgresql(settings.db_url, "schedule")
    db = settings.db
    if args.schedule_command == "add":
        from pendingops.plugins import get_plugin
        from pendingops.sync.request import refuse_stored_password
        from pendingops.sync.run import bind

        refuse_stored_password(args.url)
        given = plugin_options(args.option, get_plugin(args.plugin))  # checked now, not when it is due
        request = sync_request(args, plugin_options=given, storage=settings.storage_dir)
        db.transact(add_schedule, args.name, request, args.every, args.cron, register=bind)
        print(f"schedule {args.name} added")
    elif args.schedule_command == "remove":
        db.transact(remove_schedule, args.name)
        print(f"schedule {args.name} removed")
    else:
        found = db.transact(list_schedules)
        if args.json:
            print(json.dumps([asdict(item) for item in found], indent=2, default=lambda v: v.isoformat()))
            return 0
        print(f"{'name':<20} {'repository':<20} {'when':<16} {'next due (UTC)':<20} {'plugin':<10} {'mode':<9} url")
        for item in found:
            when = f"every {item.every}" if item.every else item.cron or ""
            next_due = item.next_due.strftime("%Y-%m-%d %H:%M:%S")
            mode = "mirror" if item.mirror else "additive"
            where = f"{item.name:<20} {item.repository:<20} {when:<16} {next_due:<20}"
            print(f"{where} {item.plugin:<10} {mode:<9} {item.url}")
            given = " ".join(f"{key}={value}" for key, value in sorted((item.plugin_options or {}).items()))
            print(f"{'':<20} policy {item.policy}" + (f", options {given}" if given else ""))
    return 0
