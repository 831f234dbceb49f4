"""``pendingops export|verify|orphans``: commands that read or change artifact storage."""

from __future__ import annotations

import argparse
import sys

from pendingops.cli._app import EXIT_FAILED, EXIT_OK, Settings
from pendingops.cli._progress import human_bytes
from pendingops.cli.repair import print_repair
from pendingops.maintenance.artifact_uses import describe_uses
from pendingops.maintenance.export import export_version
from pendingops.maintenance.fetch_missing import fetch_missing, unfetched_files
from pendingops.maintenance.orphans import remove_orphans
from pendingops.maintenance.repair import repair_artifacts
from pendingops.maintenance.verify import StorageProblem, count_unfetched, verify_storage


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.hardlink:
        print(
            "pendingops: warning: --hardlink: exported files share their bytes with storage; editing one changes the"
            " stored artifact ('pendingops verify' reports it, later exports ship it)",
            file=sys.stderr,
        )
    if not _fetch_before_export(args, settings):
        return EXIT_FAILED
    result = export_version(settings.db, settings.storage, args.repo, args.dest, args.version, hardlink=args.hardlink)
    print(
        f"exported version {result.version} of '{args.repo}' to {args.dest}: {result.files} files "
        f"({result.linked} hard-linked, {result.copied} copied)"
        + (f" and {', '.join(result.published)}" if result.published else "")
    )
    if result.skipped_not_stored:
        print(f"  {result.skipped_not_stored} file(s) not downloaded yet (on-demand) were left out")
    if result.superseded:
        print(f"  {result.superseded} older file(s) at a path a later version gave another file were left out")
    return EXIT_OK


def _fetch_before_export(args: argparse.Namespace, settings: Settings) -> bool:
    """Fetch the version's files not fetched yet (on_demand, streamed); False, saying why, if that fails."""
    if args.no_fetch:
        with settings.db.engine.connect() as conn:
            missing = [path for _, path in unfetched_files(conn, args.repo, args.version)]
        failed = [(path, "not fetched yet (--no-fetch)") for path in missing]
    else:
        report = fetch_missing(settings.db, settings.storage, args.repo, args.version)
        if report.fetched:
            print(f"fetched {report.fetched} file(s) not fetched before")
        failed = report.failed
    for path, reason in failed[:20]:
        print(f"pendingops: cannot export {path!r}: {reason}", file=sys.stderr)
    if len(failed) > 20:
        print(f"  ... and {len(failed) - 20} more", file=sys.stderr)
    return not failed


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    problems: list[StorageProblem] = []
    checked = 0
    for item in verify_storage(settings.db, settings.storage):
        if isinstance(item, StorageProblem):
            problems.append(item)
            print(f"BAD {item.sha256} ({item.location}): {item.problem}; {describe_uses(settings.db, item.sha256)}")
        else:
            checked = item
    print(f"checked {checked} artifacts: {len(problems)} problem(s)")
    unfetched = count_unfetched(settings.db)
    if unfetched:
        print(f"{unfetched} file(s) not fetched yet (on_demand or streamed): not a problem, fetched when served")
    if problems and args.repair:
        return print_repair(repair_artifacts(settings.db, settings.storage, problems))
    return EXIT_FAILED if problems else EXIT_OK


def cmd_orphans(args: argparse.Namespace, settings: Settings) -> int:
    report = remove_orphans(settings.db, settings.storage, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {report.content} content units and {report.artifacts} artifacts ({human_bytes(report.bytes)}), "
        f"and {report.stray_files} stray file(s) in storage"
        + (f"; removed {report.temp_files} temporary file(s) of dead syncs" if report.temp_files else "")
    )
    if report.kept_files:
        print(
            f"  kept {report.kept_files} file(s) no artifact records: written before this storage recorded its"
            " owning database, so another database may own them"
        )
    return EXIT_OK
