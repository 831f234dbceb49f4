"""``pendingops sync``: run a sync (or queue it) and print what came out."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pendingops.cli._progress import ProgressPrinter, human_bytes, human_seconds, print_failures, transfer_counts
from pendingops.cli._request import sync_request
from pendingops.cli.plugin_options import plugin_options
from pendingops.context import SyncResult
from pendingops.loop import run as run_loop
from pendingops.pending import PendingInputError
from pendingops.plugins import available_plugins, get_plugin
from pendingops.progress import ProgressSnapshot
from pendingops.sync import run_sync

#: what a sync that ended at once prints (same index and settings as the previous sync, repository unchanged)
REMOTE_UNCHANGED = "remote unchanged, no new version"


def cmd_sync(args: argparse.Namespace, settings: Any) -> int:
    if args.enqueue:
        from pendingops.cli.workers import cmd_enqueue

        return cmd_enqueue(args, settings)
    given = plugin_options(args.option, get_plugin(args.plugin))  # checked before anything is opened
    request = sync_request(
        args,
        plugin_options=given,
        storage=settings.storage_dir,
        window=args.window,
        db_retry_seconds=args.db_retry_seconds,
    )
    db = settings.open_db(args.db_retry_seconds)
    recorder = SnapshotRecorder(None if args.quiet or args.json else ProgressPrinter())
    try:
        outcome = run_loop(
            run_sync(
                request,
                db=db,
                storage=settings.storage,
                on_progress=recorder,
                progress_interval=0.2,
                announce=None if args.json else print,
            )
        )
    except PendingInputError as exc:  # a remote this plugin cannot read: name the --plugin it looks like
        from pendingops.plugins.guess import with_plugin_hint

        raise with_plugin_hint(exc, args.url, available_plugins(), args.plugin) from None
    result, retired = outcome.result, outcome.removed_versions
    if args.json:
        counts = transfer_counts(recorder.last)
        print(json.dumps({**_result_json(result), **counts, "removed_versions": retired}, indent=2))
    else:
        print_summary(result, outcome.remote.url, outcome.plugin, args.mirror, recorder.last)
        if retired:
            print(f"  retention: removed version(s) {', '.join(map(str, retired))}")
    if result.failed_count:
        print_failures(result.failures)
    return 0


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
    if progress is not None and progress.stages["filled"].done:
        print(f"  filled {progress.stages['filled'].done}: stored unit(s) given a field added since saved", file=out)
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
