"""``pendingops db``: schema status, upgrade and downgrade (core and plugins, through Alembic)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pendingops.db.database import Database


def add_db_commands(commands: Any) -> None:
    """Register ``db status|upgrade|downgrade`` on the CLI's sub-command parsers."""
    db = commands.add_parser("db", help="database schema: status, upgrade (after installing a new release)")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=type(db))
    actions.required = True
    status = actions.add_parser("status", help="current and available schema revisions (core and plugins)")
    status.add_argument("--json", action="store_true")
    actions.add_parser("upgrade", help="apply pending migrations; syncs wait meanwhile")
    downgrade = actions.add_parser("downgrade", help="go back to a revision (e.g. core_0001, file@-1)")
    downgrade.add_argument("revision", help="where to go: a revision id, or BRANCH@-N (e.g. core@-1)")


@contextmanager
def _schema_database(url: str) -> Iterator[Database]:
    """The database opened without the version check (that is what these commands are for)."""
    from sqlalchemy.exc import DBAPIError

    from pendingops.db.database import DatabaseError
    from pendingops.plugins.database import open_database

    db = open_database(url, create=False)
    try:
        yield db
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        raise DatabaseError(
            f"cannot use database {db.engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from None
    finally:
        db.close()


def cmd_db(args: argparse.Namespace, settings: Any) -> int:
    action: Callable[[argparse.Namespace, Database], int] = _ACTIONS[args.db_command]
    settings.prepare_default_folder()
    with _schema_database(settings.db_url) as db:
        return action(args, db)


def _status(args: argparse.Namespace, db: Database) -> int:
    from pendingops.db.migrations.runner import status

    report = status(db)
    # drift is refused by every command that opens the database: status says so with the same exit code
    refused = 2 if report["drift"] else 0
    if args.json:
        print(json.dumps(report, indent=2))
        return refused
    print(f"database: {report['database']}")
    print(f"{'branch':<12} {'current':<16} {'head':<16} state")
    for b in report["branches"]:
        pending = len(b["pending"])
        state = {
            "current": "up to date",
            "behind": f"{pending} pending",
            "unversioned": f"created before schema versions; {pending} pending",
            "missing": "not created yet (created at head on first use)",
        }[b["state"]]
        print(f"{b['name']:<12} {b['current'] or '-':<16} {b['head']:<16} {state}")
        if b["state"] in ("behind", "unversioned"):
            for r in b["pending"]:
                print(f"  pending {r['revision']}: {r['description']}")
    for found in report["drift"]:
        what = f"{found['table']}.{found['column']}" if found["column"] else f"table {found['table']}"
        print(f"drift: {what} missing (branch {found['owner'] or 'none'}: no migration creates it)")
    for revision in report["unknown_revisions"]:
        print(f"unknown revision {revision}: from a newer pendingops or a plugin not installed")
    print("schema is up to date" if report["up_to_date"] else report["problem"])
    return refused


def _upgrade(args: argparse.Namespace, db: Database) -> int:
    from pendingops.db.migrations.runner import upgrade

    def waiting() -> None:
        print("waiting for running syncs and orphan cleanups to finish...", file=sys.stderr, flush=True)

    outcome = upgrade(db, on_wait=waiting)
    changed = False
    for name, after in outcome.after.items():
        before = outcome.before.get(name)
        if name in outcome.created:
            print(f"{name}: created at {after}")
            changed = True
        elif before != after:
            print(f"{name}: {before or 'unversioned'} -> {after}")
            changed = True
    if not changed:
        print("schema is up to date; nothing to do")
    return 0


def _downgrade(args: argparse.Namespace, db: Database) -> int:
    from pendingops.db.migrations.runner import downgrade

    outcome = downgrade(db, args.revision)
    for name, after in outcome.after.items():
        before = outcome.before.get(name)
        if before != after:
            print(f"{name}: {before} -> {after or 'nothing'}")
    return 0


_ACTIONS: dict[str, Callable[[argparse.Namespace, Database], int]] = {
    "status": _status,
    "upgrade": _upgrade,
    "downgrade": _downgrade,
}
