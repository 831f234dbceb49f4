"""The ``SyncRequest`` that ``sync``, ``sync --enqueue`` and ``schedule add`` build from their arguments."""

from __future__ import annotations

import argparse
from typing import Any

from pendingops.sync.request import SyncRequest


def sync_request(args: argparse.Namespace, **more: Any) -> SyncRequest:
    """The request the arguments describe; a command without an option leaves the request's default."""
    given = {
        "repository": args.repo,
        "url": args.url,
        "plugin": args.plugin,
        "mirror": args.mirror,
        "policy": args.policy,
        "on_error": args.on_error,
        "concurrency": args.concurrency,
        "force": args.force,
    }
    carried = ("retries", "max_file_size", "batch_size", "allow_private_destinations", "retain")
    carried += ("storage_retry_seconds",)
    for name in carried:
        if getattr(args, name, None) is not None:
            given[name] = getattr(args, name)
    return SyncRequest(**given, **more)
