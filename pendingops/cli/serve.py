"""``pendingops serve``: serve every repository's complete versions over HTTP."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_PORT = 24816


def add_serve_commands(commands: Any) -> None:
    """Register ``serve`` on the CLI's sub-command parsers."""
    serve = commands.add_parser("serve", help="serve repositories over HTTP (Ctrl-C stops)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any free)")


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def cmd_serve(args: argparse.Namespace, settings: Any) -> int:
    import asyncio

    from pendingops.serve import ContentServer, serve

    server = ContentServer(settings.db, settings.storage)

    def ready(url: str) -> None:
        print(f"serving on {url} (Ctrl-C stops)", flush=True)

    try:
        asyncio.run(serve(server, args.host, args.port, on_ready=ready))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"pendingops: error: cannot listen on {args.host} port {args.port}: {reason}", file=sys.stderr)
        return 1
    print("stopped", file=sys.stderr)
    return 0
