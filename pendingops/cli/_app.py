"""The ``pendingops`` command line: argument parsing, settings and the commands."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pendingops.cli._progress import ProgressPrinter, human_bytes, human_seconds
from pendingops.cli.db import add_db_commands, cmd_db
from pendingops.cli.history import history_json, history_text
from pendingops.cli.lifecycle import (
    LIFECYCLE_COMMANDS,
    add_lifecycle_commands,
    after_sync,
    cmd_delete_repository,
    cmd_delete_version,
    with_delete,
)
from pendingops.cli.manifest import add_manifest_commands, cmd_manifest
from pendingops.cli.plugin_options import add_option_argument, plugin_options
from pendingops.cli.repair import print_repair
from pendingops.cli.schedule import add_schedule_commands, cmd_schedule
from pendingops.cli.serve import add_serve_commands, cmd_serve
from pendingops.cli.workers import add_worker_commands, cmd_enqueue, cmd_tasks, cmd_worker
from pendingops.context import SyncFailed, SyncResult
from pendingops.db.database import (
    Database,
    DatabaseError,
    DatabaseUnreachable,
    connection_lost,
    mask_password,
    open_database,
)
from pendingops.db.retry import FIRST_PAUSE, LONGEST_PAUSE
from pendingops.db.versions import VersionError, list_versions
from pendingops.declarative import sync_remote
from pendingops.download.fetcher import DownloadError
from pendingops.loop import run as run_loop
from pendingops.maintenance.by_key import iter_version_content_by_key
from pendingops.maintenance.export import ExportError, export_version
from pendingops.maintenance.fetch_missing import fetch_missing, unfetched_files
from pendingops.maintenance.history import version_history
from pendingops.maintenance.listing import list_repositories
from pendingops.maintenance.orphans import remove_orphans
from pendingops.maintenance.repair import repair_artifacts
from pendingops.maintenance.verify import StorageProblem, count_unfetched, verify_storage
from pendingops.pending import PendingInputError, describe_error
from pendingops.plugins import PluginNotFound, available_plugins, get_plugin, load_plugins
from pendingops.plugins.options import options_for_sync, remember_options
from pendingops.progress import ProgressSnapshot
from pendingops.remote import POLICIES, RemoteConfig
from pendingops.storage.base import ArtifactStorage, StorageError
from pendingops.storage.factory import open_storage
from pendingops.storage.owner import claim_storage

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: errors that mean the user's input or settings are wrong (exit code 2)
_BAD_INPUT = (PendingInputError, DatabaseError, StorageError, VersionError, PluginNotFound, ExportError, ValueError)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for any other bad input
        raise UsageError(f"{message} (see '{self.prog} --help')")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "pendingops"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pendingops", description="Sync content repositories into versioned local storage.")
    data = default_data_dir()
    db_url = os.environ.get("PENDINGOPS_DB") or f"sqlite:///{data / 'pendingops.db'}"
    shown_db_url = mask_password(db_url).replace("%", "%%")
    parser.add_argument(
        "--db",
        default=db_url,
        help=f"database URL (sqlite:///PATH or postgresql://...); env PENDINGOPS_DB; default: {shown_db_url}",
    )
    parser.add_argument(
        "--storage",
        default=os.environ.get("PENDINGOPS_STORAGE") or str(data / "storage"),
        help="artifact storage: a directory, file:///PATH or s3://BUCKET/PREFIX (endpoint and credentials from the"
        " usual AWS_* settings); env PENDINGOPS_STORAGE; default: %(default)s",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    sync = commands.add_parser("sync", help="create a new repository version from a remote")
    sync.add_argument("url", help="the remote's URL (for the file plugin: its PULP_MANIFEST)")
    sync.add_argument("--repo", required=True, help="repository name (created if needed)")
    mode = sync.add_mutually_exclusive_group()
    mode.add_argument("--mirror", action="store_true", help="the version holds exactly what the remote lists")
    mode.add_argument("--additive", action="store_true", help="keep what the repository had (the default)")
    sync.add_argument("--plugin", default="file", help="content type plugin (default: file)")
    sync.add_argument("--concurrency", type=_positive, default=10, help="downloads at once (default: 10)")
    sync.add_argument(
        "--on-error", choices=("fail", "skip"), default="fail", help="failed unit: fail the sync or skip it"
    )
    sync.add_argument(
        "--policy",
        choices=POLICIES,
        default="immediate",
        help="download now, or record where to and fetch when served (on_demand stores it then, streamed never)",
    )
    sync.add_argument("--retries", type=_non_negative, default=3, help="retries per download (default: 3)")
    sync.add_argument(
        "--max-file-size",
        type=_size,
        metavar="SIZE",
        help="largest file accepted, e.g. 512M or 2G (default: the plugin's; cookbook 256M, else 1G for files"
        " of undeclared size)",
    )
    sync.add_argument("--batch-size", type=_positive, default=1000, help="units per database batch")
    sync.add_argument(
        "--db-retry-seconds",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long a database step that lost its connection (a restart, a failover) is retried on a fresh one"
        " before the sync fails (default: 30; 0: fail at once)",
    )
    sync.add_argument(
        "--window", type=_positive, default=5000, help="units the source may be ahead of the save (default: 5000)"
    )
    add_option_argument(sync)
    sync.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    sync.add_argument("--json", action="store_true", help="print the summary as JSON")

    commands.add_parser("plugins", help="list installed content-type plugins")
    repos = commands.add_parser("repos", help="list repositories")
    repos.add_argument("--json", action="store_true")
    versions = commands.add_parser("versions", help="list a repository's versions")
    versions.add_argument("--json", action="store_true")
    content = commands.add_parser("content", help="list a version's content")
    content.add_argument("repo", help="repository name")
    content.add_argument("--version", type=_non_negative, help="version number (default: latest)")
    content.add_argument("--json", action="store_true")
    export = commands.add_parser("export", help="write a version's files and a PULP_MANIFEST under DEST")
    export.add_argument("repo", help="repository name")
    export.add_argument("dest", type=Path, help="the folder to write (created if needed)")
    export.add_argument("--version", type=_non_negative, help="version number (default: latest)")
    export.add_argument(
        "--no-fetch", action="store_true", help="fail, listing them, if files of the version are not fetched yet"
    )
    export.add_argument(
        "--hardlink",
        action="store_true",
        help="hard-link files to storage instead of copying them (faster; editing an exported file then corrupts"
        " storage)",
    )
    verify = commands.add_parser("verify", help="check every stored artifact against its recorded size and digest")
    verify.add_argument(
        "--repair",
        action="store_true",
        help="fetch bad or missing artifacts again from their remotes; quarantine those no remote gives back",
    )
    orphans = commands.add_parser("orphans", help="remove content and artifacts no version references")
    orphans.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    demo = commands.add_parser("demo", help="serve a generated repository on 127.0.0.1, sync, change, resync")
    demo.add_argument("--files", type=_positive, default=40, help="files in the demo repository (default: 40)")
    demo.add_argument(
        "--data",
        type=Path,
        default=default_data_dir() / "demo",
        help="the demo's own folder (database and storage), emptied at each run; --db and --storage are not used"
        " (default: %(default)s)",
    )
    add_db_commands(commands)
    add_serve_commands(commands)
    add_lifecycle_commands(commands, versions=versions, repos=repos, sync=sync)
    add_worker_commands(commands)
    add_schedule_commands(commands)
    add_manifest_commands(commands)
    return parser


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def _size(text: str) -> int:
    """A size in bytes: a whole number, optionally with a binary K, M, G or T suffix."""
    match = _SIZE.fullmatch(text.strip())
    if not match or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 1048576, 512M, 2G)")
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, at least 0, got {text}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


class Settings:
    """The database and storage the commands share, opened on first use."""

    def __init__(self, db_url: str, storage_dir: str) -> None:
        self.db_url = db_url
        self.storage_dir = storage_dir
        self._db: Database | None = None
        self._storage: ArtifactStorage | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self.prepare_default_folder()
            self._db = open_database(self.db_url)
        return self._db

    def open_db(self, retry_seconds: float) -> Database:
        """The database, waiting up to ``retry_seconds`` for a server that is down or restarting."""
        deadline = time.monotonic() + retry_seconds
        pause = FIRST_PAUSE
        while True:
            try:
                return self.db
            except DatabaseUnreachable as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                if pause == FIRST_PAUSE:
                    print(f"pendingops: {exc}; trying again for up to {left:.0f} s", file=sys.stderr)
                time.sleep(min(pause, left))
                pause = min(pause * 2, LONGEST_PAUSE)

    def prepare_default_folder(self) -> None:
        """Create the default SQLite database's folder (the only one we create unasked)."""
        if self.db_url.startswith("sqlite:///") and self.db_url == _default_sqlite_url():
            default_data_dir().mkdir(parents=True, exist_ok=True)

    @property
    def storage(self) -> ArtifactStorage:
        if self._storage is None:
            # Downloads to a remote storage are staged in the data folder, on this host.
            storage = open_storage(self.storage_dir, temp_dir=default_data_dir() / "staging")
            try:
                claim_storage(self.db, storage)  # one line and exit 2 when another database owns it
            except BaseException:
                storage.close()
                raise
            self._storage = storage
        return self._storage

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._storage is not None:
            self._storage.close()


def _default_sqlite_url() -> str:
    return f"sqlite:///{default_data_dir() / 'pendingops.db'}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"pendingops: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = Settings(args.db, args.storage)
    try:
        return COMMANDS[args.command](args, settings)
    except SyncFailed as exc:
        print(f"pendingops: sync failed: {exc}", file=sys.stderr)
        _print_failures(exc.failures)
        return EXIT_FAILED
    except DownloadError as exc:
        print(f"pendingops: sync failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except _BAD_INPUT as exc:
        print(f"pendingops: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`| head`): a normal end
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print("pendingops: interrupted; the version being built was not made visible", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"pendingops: error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        lost = connection_lost(exc)
        if lost is not None:  # an outage, not a bug: the command's transactions were rolled back
            print(f"pendingops: error: {lost}; {args.command} stopped; run it again", file=sys.stderr)
            return EXIT_FAILED
        if os.environ.get("PENDINGOPS_DEBUG"):
            raise
        print(
            f"pendingops: internal error: {describe_error(exc)} (PENDINGOPS_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        settings.close()


def _silence_stdout() -> None:
    """Send what is still buffered for a closed pipe nowhere, so exiting does not complain about it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _print_failures(failures: Sequence[Any], limit: int = 10) -> None:
    for failure in failures[:limit]:
        print(f"  failed: {failure.unit}: {failure.stage}: {failure.reason}", file=sys.stderr)
    if len(failures) > limit:
        print(f"  ... and {len(failures) - limit} more", file=sys.stderr)


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    if args.enqueue:
        return cmd_enqueue(args, settings)
    plugin = get_plugin(args.plugin)
    given = plugin_options(args.option, plugin)  # checked before anything is opened
    db = settings.open_db(args.db_retry_seconds)
    options = options_for_sync(db, args.repo, plugin, given)
    if given is None and options and not args.json:
        shown = " ".join(f"{key}={value}" for key, value in sorted(options.items()))
        print(f"plugin options remembered for '{args.repo}': {shown}")
    remote = RemoteConfig(
        url=args.url,
        policy=args.policy,
        download_concurrency=args.concurrency,
        retries=args.retries,
        max_file_size=args.max_file_size,
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
            window=args.window,
            on_progress=recorder,
            progress_interval=0.2,
        )
    )
    if given is not None:
        remember_options(db, args.repo, given)
    retired = after_sync(settings, args.repo, args.retain)
    if args.json:
        print(json.dumps({**_result_json(result), "removed_versions": retired}, indent=2))
    else:
        print_summary(result, remote.url, plugin.name, args.mirror, recorder.last)
        if retired:
            print(f"  retention: removed version(s) {', '.join(map(str, retired))}")
    if result.failed_count:
        _print_failures(result.failures)
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
            f"saved {stages['saved'].done} new, associated {stages['associated'].done}, "
            f"removed {stages['removed'].done}, failed {stages['failed'].done} in {human_seconds(progress.elapsed)}",
            file=out,
        )


def cmd_plugins(args: argparse.Namespace, settings: Settings) -> int:
    found, broken = load_plugins()
    for name, plugin in sorted(found.items()):
        print(f"{name:<12} {getattr(plugin, 'description', '')}")
    for name, reason in sorted(broken.items()):
        print(f"{name:<12} cannot be loaded: {reason}")
    return EXIT_OK


def cmd_repos(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_versions(args: argparse.Namespace, settings: Settings) -> int:
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
                **history_json(history.get(v.number)),
            }
            for v in versions
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'version':>7} {'units':>8} {'added':>8} {'removed':>8}  {'created (UTC)':<19}  sync runs")
    for v in versions:
        print(f"{v.number:>7} {v.content_count:>8} {v.added:>8} {v.removed:>8}  {history_text(history.get(v.number))}")
    return EXIT_OK


def cmd_content(args: argparse.Namespace, settings: Settings) -> int:
    available_plugins()  # imports every plugin's content type, so its fields can be read
    units = iter_version_content_by_key(settings.db, args.repo, args.version)
    if args.json:
        print("[", end="")
        for index, unit in enumerate(units):
            print(("," if index else "") + "\n  " + json.dumps(unit.as_json(), default=str), end="")
        print("\n]")
        return EXIT_OK
    for unit in units:
        key = ", ".join(f"{k}={v}" for k, v in unit.natural_key.items())
        stored = all(f.location for f in unit.files)
        print(f"{unit.content_type}: {key}{'' if stored else '  (not downloaded)'}")
    return EXIT_OK


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
            print(f"BAD {item.sha256} ({item.location}): {item.problem}")
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


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from pendingops.cli._demo import run_demo

    return run_demo(args.data, args.files)


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "sync": cmd_sync,
    "plugins": cmd_plugins,
    "repos": with_delete(cmd_repos, cmd_delete_repository, words=1),
    "versions": with_delete(cmd_versions, cmd_delete_version, words=2),
    "content": cmd_content,
    "export": cmd_export,
    "verify": cmd_verify,
    "orphans": cmd_orphans,
    "demo": cmd_demo,
    "db": cmd_db,
    "serve": cmd_serve,
    **LIFECYCLE_COMMANDS,
    "worker": cmd_worker,
    "tasks": cmd_tasks,
    "schedule": cmd_schedule,
    "manifest": cmd_manifest,
}
