"""``pendingops diff|rollback|retain``, ``versions delete``, ``repos delete`` and ``sync --retain``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pendingops.cli._types import whole_count

if TYPE_CHECKING:
    from pendingops.maintenance.listing import StoredUnit

Command = Callable[[argparse.Namespace, Any], int]


def _number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def add_lifecycle_commands(commands: Any, *, versions: Any, repos: Any, sync: Any) -> None:
    """Register ``diff``, ``rollback`` and ``retain``, and the ``delete`` actions of ``versions`` and ``repos``."""
    diff = commands.add_parser("diff", help="what changed between two versions: added, removed, changed")
    diff.add_argument("repo", help="repository name")
    diff.add_argument("a", type=_number, metavar="A", help="the older version number")
    diff.add_argument("b", type=_number, metavar="B", help="the newer version number")
    diff.add_argument("--json", action="store_true")
    rollback = commands.add_parser("rollback", help="a new version with the content of an earlier one")
    rollback.add_argument("repo", help="repository name")
    rollback.add_argument("--to", type=_number, required=True, metavar="N", help="the version to go back to")
    rollback.add_argument("--json", action="store_true")
    retain = commands.add_parser("retain", help="remove all but the K latest versions")
    retain.add_argument("repo", help="repository name")
    retain.add_argument("--keep", type=_count, required=True, metavar="K")
    retain.add_argument("--json", action="store_true")
    versions.add_argument(
        "words", nargs="+", metavar="REPO | delete REPO N", help="list REPO's versions, or delete one"
    )
    repos.add_argument("words", nargs="*", metavar="delete NAME", help="remove repository NAME (asks unless --yes)")
    repos.add_argument("--yes", action="store_true", help="remove without asking")
    versions.usage = "%(prog)s [--json] REPO\n       %(prog)s delete REPO N [--json]"
    repos.usage = "%(prog)s [--json]\n       %(prog)s delete NAME [--yes] [--json]"
    sync.add_argument(
        "--retain",
        type=whole_count,
        metavar="K",
        help="after a successful sync keep only the K latest versions; remembered for the repository",
    )


def with_delete(list_command: Command, delete_command: Command, *, words: int) -> Command:
    """The command of ``versions``/``repos``: ``delete ...`` removes, anything else lists as before."""

    def command(args: argparse.Namespace, settings: Any) -> int:
        given = args.words
        if given and given[0] == "delete" and (words == 1 or len(given) > 1):
            if len(given) != words + 1:
                raise ValueError(f"usage: delete takes {words} argument(s), got {len(given) - 1}")
            args.words = given[1:]
            return delete_command(args, settings)
        if len(given) > (1 if words == 2 else 0):
            raise ValueError(f"unexpected argument(s): {' '.join(given)}")
        args.repo = given[0] if given else None
        return list_command(args, settings)

    return command


def _unit_line(unit: StoredUnit) -> str:
    return f"{unit.content_type}: {key_text(unit.natural_key)}"


def key_text(fields: dict[str, object]) -> str:
    """``name=value, ...``, as listings and diffs show a natural key."""
    return ", ".join(f"{name}={_value(value)}" for name, value in fields.items())


def _value(value: object) -> str:
    """A key field's value as a diff line shows it: an empty text as ``""``, so it does not vanish."""
    return '""' if value == "" else str(value)


def cmd_diff(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.maintenance import lifecycle
    from pendingops.plugins import available_plugins

    available_plugins()  # imports every content type, so units' fields can be read
    result = lifecycle.diff_versions(settings.db, args.repo, args.a, args.b)
    if args.json:
        print(json.dumps(result.as_json(), indent=2, default=str))
        return 0
    for unit in result.added:
        print(f"+ {_unit_line(unit)}")
    for unit in result.removed:
        print(f"- {_unit_line(unit)}")
    for before, after in result.changed:
        changed = {
            k: (v, after.natural_key.get(k)) for k, v in before.natural_key.items() if after.natural_key.get(k) != v
        }
        same = key_text({k: v for k, v in before.natural_key.items() if k not in changed})
        moves = ", ".join(f"{k} {_value(old)} -> {_value(new)}" for k, (old, new) in changed.items())
        print(f"~ {before.content_type}: {same}: {moves}")
    print(
        f"'{args.repo}' version {args.a} -> {args.b}: {len(result.added)} added, {len(result.removed)} removed,"
        f" {len(result.changed)} changed"
    )
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.maintenance import lifecycle

    outcome = lifecycle.rollback(settings.db, args.repo, args.to)
    if args.json:
        print(
            json.dumps(
                {
                    "repository": outcome.repository,
                    "target": outcome.target,
                    "created": outcome.number is not None,
                    "version": outcome.number if outcome.number is not None else outcome.latest,
                    "added": outcome.added,
                    "removed": outcome.removed,
                },
                indent=2,
            )
        )
    elif outcome.number is None:
        print(
            f"'{args.repo}' already holds the content of version {args.to} (latest is version {outcome.latest});"
            " no new version"
        )
    else:
        print(
            f"'{args.repo}' new version {outcome.number}: the content of version {args.to} "
            f"(+{outcome.added} added, -{outcome.removed} removed)"
        )
    return 0


def _print_removed(repo: str, removed: list[int], as_json: bool, **extra: Any) -> None:
    if as_json:
        print(json.dumps({"repository": repo, "removed_versions": removed, **extra}, indent=2))
    elif removed:
        print(
            f"removed version(s) {', '.join(map(str, removed))} of '{repo}'; 'pendingops orphans' frees their content"
        )
    else:
        print(f"'{repo}': no version to remove")


def cmd_retain(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.maintenance import lifecycle

    removed = lifecycle.retain(settings.db, args.repo, args.keep)
    _print_removed(args.repo, removed, args.json, keep=args.keep)
    return 0


def cmd_delete_version(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.maintenance import lifecycle

    repo, text = args.words
    lifecycle.delete_version(settings.db, repo, _version_argument(text))
    _print_removed(repo, [int(text)], args.json)
    return 0


def _version_argument(text: str) -> int:
    try:
        return _number(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


def cmd_delete_repository(args: argparse.Namespace, settings: Any) -> int:
    from pendingops.maintenance import lifecycle
    from pendingops.readable import counted

    (name,) = args.words
    found = lifecycle.describe_repository(settings.db, name)
    queued, schedules = _queue_of(settings, name)
    if not args.yes:
        if queued or schedules:
            raise ValueError(
                f"repository {name!r} has {len(queued)} queued sync(s) and {schedules} schedule(s);"
                " --yes cancels and removes them with it"
            )
        if not sys.stdin.isatty():
            raise ValueError(f"removing repository {name!r} ({counted(found.versions, 'version')}) needs --yes")
        answer = input(f"remove repository {name!r} and its {counted(found.versions, 'version')}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 0
    cancelled, unscheduled = _forget_queue(settings, name, queued)
    removed = lifecycle.delete_repository(settings.db, name)
    if args.json:
        print(
            json.dumps(
                {
                    "repository": name,
                    "removed": True,
                    "versions": removed.versions,
                    "cancelled_syncs": cancelled,
                    "removed_schedules": unscheduled,
                },
                indent=2,
            )
        )
    else:
        shown = counted(removed.versions, "version")
        print(f"removed repository '{name}' ({shown}); 'pendingops orphans' frees its content")
        if cancelled or unscheduled:
            print(f"  cancelled {cancelled} queued sync(s), removed {unscheduled} schedule(s)")
    return 0


def _queue_of(settings: Any, name: str) -> tuple[list[int], int]:
    """The ids of the repository's queued syncs and the number of its schedules."""
    from pendingops.workers.queue import queued_syncs
    from pendingops.workers.schedule import count_repository_schedules

    return queued_syncs(settings.db, name), settings.db.transact(count_repository_schedules, name)


def _forget_queue(settings: Any, name: str, queued: list[int]) -> tuple[int, int]:
    """Remove the repository's schedules, then cancel its queued syncs: none is left to bring it back."""
    import asyncio

    from pendingops.workers.queue import cancel_all, make_app, queued_syncs
    from pendingops.workers.schedule import remove_repository_schedules

    unscheduled = settings.db.transact(remove_repository_schedules, name)
    queued = sorted(set(queued) | set(queued_syncs(settings.db, name)))  # one a schedule queued meanwhile too
    cancelled = asyncio.run(cancel_all(make_app(settings.db_url), queued)) if queued else 0
    return cancelled, unscheduled
