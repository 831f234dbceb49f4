"""``pendingops sync``: run a sync (or queue it) and print what came out."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from pendingops.cli._app import EXIT_OK, Settings
from pendingops.cli._progress import ProgressPrinter, human_bytes, human_seconds, transfer_counts
from pendingops.cli.lifecycle import after_sync
from pendingops.cli.plugin_options import plugin_options
from pendingops.context import SyncResult
from pendingops.db import private_destinations
from pendingops.declarative import sync_remote
from pendingops.loop import run as run_loop
from pendingops.plugins import get_plugin
from pendingops.plugins.options import options_for_sync, remember_options
from pendingops.progress import ProgressSnapshot
from pendingops.remote import RemoteConfig

#: what a sync that ended at once prints (same index and settings as the previous sync, repository unchanged)
REMOTE_UNCHANGED = "remote unchanged, no new version"

def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    if args.enqueue:
        from pendingops.cli.workers import cmd_enqueue

        return cmd_enqueue(args, settings)
    plugin = get_plugin(args.plugin)
    given = plugin_options(args.option, plugin)  # checked before anything is opened
    db = settings.open_db(args.db_retry_seconds)
    options = options_for_sync(db, args.repo, plugin, given)
    if given is None and options and not args.json:
        shown = " ".join(f"{key}={value}" for key, value in sorted(options.items()))
        print(f"plugin options remembered for '{args.repo}': {shown}")
    allow_private = private_destinations.for_sync(db, args.repo, args.allow_private_destinations)
    if args.allow_private_destinations is None and allow_private and not args.json:
        print(f"private destinations allowed, as remembered for '{args.repo}' (--no-allow-private-destinations stops)")
    remote = RemoteConfig(
        url=args.url,
        policy=args.policy,
        download_concurrency=args.concurrency,
        retries=args.retries,
        max_file_size=args.max_file_size,
        allow_private_destinations=allow_private,
        options=options,
    )
    recorder = SnapshotRecorder(None if args.quiet or args.json else ProgressPrinter())
    result = run_loop(
        sync_remote(
            plugin,
            remote,
            db=db,
            storage=settings.storage,
            repository=args.repo,
            mirror=args.mirror,
            on_error=args.on_error,
            batch_size=args.batch_size,
            db_retry_seconds=args.db_retry_seconds,
            storage_retry_seconds=args.storage_retry_seconds,
            window=args.window,
            on_progress=recorder,
            progress_interval=0.2,
            force=args.force,
        )
    )
    if given is not None:
        remember_options(db, args.repo, given)
    retired = after_sync(settings, args.repo, args.retain)
    if args.json:
        counts = transfer_counts(recorder.last)
        print(json.dumps({**_result_json(result), **counts, "removed_versions": retired}, indent=2))
    else:
        print_summary(result, remote.url, plugin.name, args.mirror, recorder.last)
        if retired:
            print(f"  retention: removed version(s) {', '.join(map(str, retired))}")
    if result.failed_count:
        print_failures(result.failures)
    return EXIT_OK


def _result_json(result: SyncResult) -> dict[str, Any]:
    return {
        "repository": result.version.repository,
        "version": result.version.number,
        "created": result.created,
        "content_count": result.version.content_count,
        "added": result.added,
        "removed": result.removed,
        "failed": result.failed_count,
        "filtered": result.filtered,
        "remote_unchanged": result.remote_unchanged,
        "failures": [{"unit": f.unit, "stage": f.stage, "reason": f.reason} for f in result.failures],
    }


class SnapshotRecorder:
    """Keeps the latest progress snapshot and passes each one on to a printer, if any."""

    def __init__(self, printer: ProgressPrinter | None) -> None:
        self.printer = printer
        self.last: ProgressSnapshot | None = None

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        self.last = snapshot
        if self.printer is not None:
            self.printer(snapshot)


def print_summary(
    result: SyncResult, url: str, plugin: str, mirror: bool, progress: ProgressSnapshot | None, out: Any = None
) -> None:
    """The end-of-sync summary: what version came out, and what each stage did."""
    out = out or sys.stdout
    version = result.version
    if result.remote_unchanged:
        print(REMOTE_UNCHANGED, file=out)
        print(f"  '{version.repository}' stays at version {version.number} ({version.content_count} units)", file=out)
        return
    mode = "mirror" if mirror else "additive"
    print(f"Synced {url} into '{version.repository}' ({plugin} plugin, {mode})", file=out)
    if result.created:
        print(
            f"  new version {version.number}: {version.content_count} units "
            f"(+{result.added} added, -{result.removed} removed)",
            file=out,
        )
    else:
        print(
            f"  nothing changed: '{version.repository}' stays at version {version.number} "
            f"({version.content_count} units)",
            file=out,
        )
    if result.failed_count:
        print(f"  {result.failed_count} unit(s) failed and were skipped", file=out)
    if result.filtered:
        print(f"  filtered {result.filtered}: unit(s) an operator dropped, not declared", file=out)
    if progress is not None:
        stages = progress.stages
        print(
            f"  seen {stages['seen'].done}, already present {stages['present'].done}, "
            f"linked to stored content {stages['linked'].done}, "
            f"downloaded {stages['downloaded'].done} ({human_bytes(stages['downloaded'].bytes)}), "
            f"adopted {stages['adopted'].done} (already stored, checked), "
            f"saved {stages['saved'].done} new, associated {stages['associated'].done}, "
            f"removed {stages['removed'].done}, failed {stages['failed'].done} in {human_seconds(progress.elapsed)}",
            file=out,
        )


def print_failures(failures: Sequence[Any], limit: int = 10) -> None:
    for failure in failures[:limit]:
        print(f"  failed: {failure.unit}: {failure.stage}: {failure.reason}", file=sys.stderr)
    if len(failures) > limit:
        print(f"  ... and {len(failures) - limit} more", file=sys.stderr)
