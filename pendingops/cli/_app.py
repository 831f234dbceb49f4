"""The ``pendingops`` command line: argument parsing, settings and the commands."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pendingops.cli._types import byte_size, repository_name
from pendingops.cli.db import add_db_commands
from pendingops.cli.lifecycle import add_lifecycle_commands
from pendingops.cli.manifest import add_manifest_commands
from pendingops.cli.plugin_options import add_option_argument
from pendingops.cli.schedule import add_schedule_commands
from pendingops.cli.serve import add_serve_commands
from pendingops.cli.tasks import add_task_commands
from pendingops.cli.workers import add_worker_commands
from pendingops.db.urls import mask_password
from pendingops.logs import FORMATS, LEVELS, configure
from pendingops.remote import POLICIES

if TYPE_CHECKING:
    from pendingops.db.database import Database
    from pendingops.storage.base import ArtifactStorage

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: errors that mean the user's input or settings are wrong (exit code 2), by the module defining them;
#: a command that never imported a module cannot have raised its errors, so it is not imported to check
_BAD_INPUT = {
    "pendingops.pending": ("PendingInputError",),
    "pendingops.db.database": ("DatabaseError",),
    "pendingops.storage.base": ("StorageError",),
    "pendingops.db.versions": ("VersionError",),
    "pendingops.plugins": ("PluginNotFound",),
    "pendingops.maintenance.export": ("ExportError",),
    "pendingops.loop": ("LoopUnavailable",),
    "builtins": ("ValueError",),
}


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for any other bad input
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _Version(argparse.Action):
    """``--version``: the installed package's version, read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("pendingops")
        except PackageNotFoundError:  # run from a source tree that was never installed
            found = "unknown"
        print(f"pendingops {found}")
        parser.exit()


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
    parser.add_argument(
        "--log-level", choices=LEVELS, default="info", help="least severe log lines written to stderr (default: info)"
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        help="log lines as text or one JSON object each; env PENDINGOPS_LOG_FORMAT; default: text",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    sync = commands.add_parser("sync", help="create a new repository version from a remote")
    sync.add_argument("url", help="the remote's URL (for the file plugin: its PULP_MANIFEST)")
    sync.add_argument("--repo", required=True, type=repository_name, help="repository name (created if needed)")
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
        type=byte_size,
        metavar="SIZE",
        help="largest file accepted, e.g. 512M or 2G (default: the plugin's; cookbook 256M, else 1G for files"
        " of undeclared size)",
    )
    sync.add_argument(
        "--allow-private-destinations",
        action=argparse.BooleanOptionalAction,
        help="let URLs the remote names (files, redirects) on other hosts than its own reach loopback, private or"
        " link-local addresses; remembered for the repository (default: what its last sync ran with, else no)",
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
        "--storage-retry-seconds",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long a storage request that meets an outage (no connection, a timeout, a 5xx answer) is retried"
        " before the sync fails (default: 30; 0: fail at once)",
    )
    sync.add_argument(
        "--window", type=_positive, default=5000, help="units the source may be ahead of the save (default: 5000)"
    )
    add_option_argument(sync)
    sync.add_argument(
        "--force",
        action="store_true",
        help="run the whole sync even when the remote's index and the settings are those of the previous sync"
        " and the repository has not changed since (without it, such a sync ends at once)",
    )
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
    export = commands.add_parser(
        "export",
        help="write a version's files under DEST with the index files its plugins publish "
        "(PULP_MANIFEST, universe, simple/, dists/...), servable by any static web server",
    )
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
    add_task_commands(commands)
    add_schedule_commands(commands)
    add_manifest_commands(commands)
    return parser


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


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
            from pendingops.plugins.database import open_database

            self.prepare_default_folder()
            self._db = open_database(self.db_url)
        return self._db

    def open_db(self, retry_seconds: float) -> Database:
        """The database, waiting up to ``retry_seconds`` for a server that is down or restarting."""
        from pendingops.db.database import DatabaseUnreachable
        from pendingops.db.retry import FIRST_PAUSE, LONGEST_PAUSE

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
            from pendingops.storage.factory import open_storage
            from pendingops.storage.owner import claim_storage

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


def _log_format_from_env() -> str:
    found = os.environ.get("PENDINGOPS_LOG_FORMAT") or "text"
    if found not in FORMATS:
        raise UsageError(f"PENDINGOPS_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {found!r}")
    return found


def _default_sqlite_url() -> str:
    return f"sqlite:///{default_data_dir() / 'pendingops.db'}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        configure(args.log_level, args.log_format or _log_format_from_env())
    except UsageError as exc:
        print(f"pendingops: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = Settings(args.db, args.storage)
    try:
        module, name = COMMANDS[args.command]
        return getattr(import_module(module), name)(args, settings)
    except KeyboardInterrupt:
        print("pendingops: interrupted; the version being built was not made visible", file=sys.stderr)
        return 130
    except Exception as exc:
        code = _explain(exc, args.command)
        if code is not None:
            return code
        if os.environ.get("PENDINGOPS_DEBUG"):
            raise
        from pendingops.pending import describe_error

        print(
            f"pendingops: internal error: {describe_error(exc)} (PENDINGOPS_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        settings.close()


def _explain(exc: Exception, command: str) -> int | None:
    """Say in one line why ``command`` stopped, with its exit code; None for an error that is a bug."""
    if isinstance(exc, _loaded({"pendingops.context": ("SyncFailed",)})):
        from pendingops.cli._progress import print_failures

        print(f"pendingops: sync failed: {exc}", file=sys.stderr)
        print_failures(exc.failures)
        return EXIT_FAILED
    if isinstance(exc, _loaded({"pendingops.download.fetcher": ("DownloadError",)})):
        print(f"pendingops: sync failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(exc, _loaded({"pendingops.storage.base": ("StorageUnavailable", "StorageFull")})):
        print(f"pendingops: error: {exc}; {command} stopped; run it again", file=sys.stderr)
        return EXIT_FAILED  # an outage or a full disk, not bad input
    if isinstance(exc, _loaded(_BAD_INPUT)):
        print(f"pendingops: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, BrokenPipeError):  # the reader went away (`| head`): a normal end
        _silence_stdout()
        return EXIT_OK
    if isinstance(exc, OSError):
        print(f"pendingops: error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return EXIT_FAILED
    lost = _connection_lost(exc)
    if lost is not None:  # an outage, not a bug: the command's transactions were rolled back
        print(f"pendingops: error: {lost}; {command} stopped; run it again", file=sys.stderr)
        return EXIT_FAILED
    return None


def _connection_lost(exc: Exception) -> str | None:
    database = sys.modules.get("pendingops.db.database")
    return None if database is None else database.connection_lost(exc)


def _loaded(classes: dict[str, tuple[str, ...]]) -> tuple[type[BaseException], ...]:
    """The named exception classes of the modules already imported: no other can have been raised."""
    return tuple(
        getattr(sys.modules[module], name)
        for module, names in classes.items()
        if module in sys.modules
        for name in names
    )


def _silence_stdout() -> None:
    """Send what is still buffered for a closed pipe nowhere, so exiting does not complain about it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


#: each command's function, as (module, name): a command imports only what it needs
COMMANDS: dict[str, tuple[str, str]] = {
    "sync": ("pendingops.cli.sync", "cmd_sync"),
    "plugins": ("pendingops.cli.listing", "cmd_plugins"),
    "repos": ("pendingops.cli.listing", "cmd_repos"),
    "versions": ("pendingops.cli.listing", "cmd_versions"),
    "content": ("pendingops.cli.listing", "cmd_content"),
    "export": ("pendingops.cli.storage", "cmd_export"),
    "verify": ("pendingops.cli.storage", "cmd_verify"),
    "orphans": ("pendingops.cli.storage", "cmd_orphans"),
    "demo": ("pendingops.cli._demo", "cmd_demo"),
    "db": ("pendingops.cli.db", "cmd_db"),
    "serve": ("pendingops.cli.serve", "cmd_serve"),
    "diff": ("pendingops.cli.lifecycle", "cmd_diff"),
    "rollback": ("pendingops.cli.lifecycle", "cmd_rollback"),
    "retain": ("pendingops.cli.lifecycle", "cmd_retain"),
    "worker": ("pendingops.cli.workers", "cmd_worker"),
    "tasks": ("pendingops.cli.tasks", "cmd_tasks"),
    "schedule": ("pendingops.cli.schedule", "cmd_schedule"),
    "manifest": ("pendingops.cli.manifest", "cmd_manifest"),
}
