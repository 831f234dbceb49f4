"""Argument types several commands share."""

from __future__ import annotations

import argparse

from pendingops.db.names import check_repository_name


def repository_name(text: str) -> str:
    """A name a repository may be created with (``--repo`` of the commands that create one)."""
    try:
        return check_repository_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def port_number(text: str) -> int:
    """A TCP port number (0: any free port)."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)
