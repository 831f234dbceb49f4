"""``pendingops plugins|repos|versions|content``: what is installed and what is stored."""

from __future__ import annotations

import argparse
import json

from pendingops.cli._app import EXIT_OK, Settings
from pendingops.cli.history import history_json, history_text
from pendingops.cli.lifecycle import cmd_delete_repository, cmd_delete_version, key_text, with_delete
from pendingops.db.versions import list_versions
from pendingops.maintenance.by_key import iter_version_content_by_key
from pendingops.maintenance.history import version_history
from pendingops.maintenance.listing import list_repositories


def cmd_plugins(args: argparse.Namespace, settings: Settings) -> int:
    from pendingops.plugins import load_plugins

    found, broken = load_plugins()
    for name, plugin in sorted(found.items()):
        print(f"{name:<12} {getattr(plugin, 'description', '')}")
    for name, reason in sorted(broken.items()):
        print(f"{name:<12} cannot be loaded: {reason}")
    return EXIT_OK


def _list_repos(args: argparse.Namespace, settings: Settings) -> int:
    with settings.db.engine.connect() as conn:
        repos = list_repositories(conn)
    if args.json:
        print(json.dumps(repos, indent=2))
        return EXIT_OK
    if not repos:
        print("no repositories yet")
    for repo in repos:
        print(f"{repo['name']:<24} version {repo['latest_version']:<5} {repo['content_count']} units")
    return EXIT_OK


def _list_versions(args: argparse.Namespace, settings: Settings) -> int:
    with settings.db.engine.connect() as conn:
        versions = list_versions(conn, args.repo)
        history = version_history(conn, args.repo)
    if args.json:
        rows = [
            {
                "number": v.number,
                "content_count": v.content_count,
                "added": v.added,
                "removed": v.removed,
                "base": v.base_number,
                "rolled_back_to": v.rolled_back_to,
                **history_json(history.get(v.number)),
            }
            for v in versions
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'version':>7} {'units':>8} {'added':>8} {'removed':>8}  {'created (UTC)':<19}  sync runs")
    for v in versions:
        made = f"  (rollback to version {v.rolled_back_to})" if v.rolled_back_to is not None else ""
        counts = f"{v.number:>7} {v.content_count:>8} {v.added:>8} {v.removed:>8}"
        print(f"{counts}  {history_text(history.get(v.number))}{made}")
    return EXIT_OK


def cmd_content(args: argparse.Namespace, settings: Settings) -> int:
    from pendingops.plugins import available_plugins

    available_plugins()  # imports every plugin's content type, so its fields can be read
    units = iter_version_content_by_key(settings.db, args.repo, args.version)
    if args.json:
        print("[", end="")
        for index, unit in enumerate(units):
            print(("," if index else "") + "\n  " + json.dumps(unit.as_json(), default=str), end="")
        print("\n]")
        return EXIT_OK
    for unit in units:
        key = key_text(unit.natural_key)
        stored = all(f.location for f in unit.files)
        print(f"{unit.content_type}: {key}{'' if stored else '  (not downloaded)'}")
    return EXIT_OK


cmd_repos = with_delete(_list_repos, cmd_delete_repository, words=1)
cmd_versions = with_delete(_list_versions, cmd_delete_version, words=2)
