"""``pendingops serve``: serve every repository's complete versions over HTTP."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pendingops.cli._types import byte_size, port_number
from pendingops.db.names import check_repository_name

DEFAULT_PORT = 24816
_MAX_WORKERS = 256
_MAX_FETCHES = 4096


def add_serve_commands(commands: Any) -> None:
    """Register ``serve`` on the CLI's sub-command parsers."""
    serve = commands.add_parser("serve", help="serve repositories over HTTP (Ctrl-C stops)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any free)"
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="server processes sharing the port (default: 1; more use more CPU cores for many small files)",
    )
    serve.add_argument(
        "--on-demand-concurrency",
        type=_fetches,
        default=16,
        metavar="N",
        help="files fetched from their remotes at once (on_demand, streamed); a request waits at most 30 s for its"
        " turn, then gets 503 (default: 16)",
    )
    serve.add_argument(
        "--verify-before-send",
        type=_verify_size,
        default=8 * 1024**2,
        metavar="SIZE",
        help="files fetched on request up to SIZE (e.g. 8M) are checked whole before their first byte goes out;"
        " larger ones stream and are cut on a mismatch (default: 8M; 0: stream all)",
    )
    serve.add_argument(
        "--accel-redirect",
        metavar="PREFIX",
        type=_prefix,
        help="behind nginx: answer stored files with 'X-Accel-Redirect: PREFIX<location>' for nginx to send",
    )
    serve.add_argument(
        "--repos",
        type=_names,
        metavar="NAME[,NAME...]",
        help="serve only these repositories (the others are not found, nor listed)",
    )
    serve.add_argument(
        "--htpasswd",
        type=Path,
        metavar="FILE",
        help="require HTTP Basic authentication (bcrypt entries, as 'htpasswd -B' writes them) for everything but"
        " /-/health; the file is read again when it changes",
    )
    serve.add_argument(
        "--no-access-log", action="store_true", help="no log line per request (they go to stderr by default)"
    )


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= _MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"not a number of processes from 1 to {_MAX_WORKERS}: {text!r}")
    return int(text)


def _fetches(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= _MAX_FETCHES:
        raise argparse.ArgumentTypeError(f"not a number of fetches from 1 to {_MAX_FETCHES}: {text!r}")
    return int(text)


def _verify_size(text: str) -> int:
    if text.strip() == "0":
        return 0
    return byte_size(text)


def _prefix(text: str) -> str:
    if not text.startswith("/") or any(c in text for c in "\r\n\x00?#"):
        raise argparse.ArgumentTypeError(f"not a URL path starting with '/': {text!r}")
    return text if text.endswith("/") else text + "/"


def _names(text: str) -> frozenset[str]:
    names = text.split(",")
    if not all(names):
        raise argparse.ArgumentTypeError(f"not a comma-separated list of repository names: {text!r}")
    try:
        return frozenset(check_repository_name(name) for name in names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_serve(args: argparse.Namespace, settings: Any) -> int:
    import tempfile

    if args.workers == 1:
        return _serve(args, settings)
    # The processes share their metrics through files; prometheus_client must find the folder
    # named before it is first imported.
    with tempfile.TemporaryDirectory(prefix="pendingops-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        try:
            return _serve(args, settings)
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _serve(args: argparse.Namespace, settings: Any) -> int:
    import asyncio
    import logging

    from pendingops.serve import ContentServer, serve
    from pendingops.serve.auth import BasicAuth, read_htpasswd
    from pendingops.serve.operating import Operating
    from pendingops.serve.run import serve_processes
    from pendingops.storage.base import set_retry_seconds

    log = logging.getLogger("pendingops.serve")
    if args.htpasswd is not None:
        users = len(read_htpasswd(args.htpasswd))  # a bad file: one line, exit 2
        log.info("HTTP Basic authentication required: %d user(s) in %s", users, args.htpasswd)
    if args.repos is not None:
        log.info("serving only %s", ", ".join(sorted(args.repos)))

    def ready(url: str) -> None:
        shown = f" with {args.workers} processes" if args.workers > 1 else ""
        print(f"serving on {url}{shown} (Ctrl-C stops)", flush=True)

    def make_server() -> ContentServer:
        if args.workers > 1:  # connections made before the fork belong to the process that made them
            settings.db.engine.dispose(close=False)
        auth = None if args.htpasswd is None else BasicAuth(args.htpasswd)
        # A request is not held through a storage outage: it gets a 503 with Retry-After at once.
        set_retry_seconds(settings.storage, 0.0)
        operating = Operating(settings.db, settings.storage, access_log=not args.no_access_log, auth=auth)
        return ContentServer(
            settings.db,
            settings.storage,
            accel_redirect=args.accel_redirect,
            repositories=args.repos,
            operating=operating,
            on_demand_concurrency=args.on_demand_concurrency,
            verify_before_send=args.verify_before_send,
        )

    try:
        if args.workers > 1:
            serve_processes(make_server, args.host, args.port, args.workers, on_ready=ready)
        else:
            asyncio.run(serve(make_server(), args.host, args.port, on_ready=ready))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"pendingops: error: cannot listen on {args.host} port {args.port}: {reason}", file=sys.stderr)
        return 1
    log.info("stopped")
    return 0
