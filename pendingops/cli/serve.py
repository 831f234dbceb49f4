"""``pendingops serve``: serve every repository's complete versions over HTTP."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_PORT = 24816
_MAX_WORKERS = 256
_MAX_FETCHES = 4096


def add_serve_commands(commands: Any) -> None:
    """Register ``serve`` on the CLI's sub-command parsers."""
    serve = commands.add_parser("serve", help="serve repositories over HTTP (Ctrl-C stops)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any free)")
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


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


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
    from pendingops.cli._app import _size

    return _size(text)


def _prefix(text: str) -> str:
    if not text.startswith("/") or any(c in text for c in "\r\n\x00?#"):
        raise argparse.ArgumentTypeError(f"not a URL path starting with '/': {text!r}")
    return text if text.endswith("/") else text + "/"


def cmd_serve(args: argparse.Namespace, settings: Any) -> int:
    import asyncio

    from pendingops.serve import ContentServer, serve
    from pendingops.serve.run import serve_processes

    def ready(url: str) -> None:
        shown = f" with {args.workers} processes" if args.workers > 1 else ""
        print(f"serving on {url}{shown} (Ctrl-C stops)", flush=True)

    def make_server() -> ContentServer:
        if args.workers > 1:  # connections made before the fork belong to the process that made them
            settings.db.engine.dispose(close=False)
        return ContentServer(
            settings.db,
            settings.storage,
            accel_redirect=args.accel_redirect,
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
    print("stopped", file=sys.stderr)
    return 0
