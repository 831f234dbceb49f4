"""Argument types several commands share."""

from __future__ import annotations

import argparse
import re

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


_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def byte_size(text: str) -> int:
    """A size in bytes: a whole number, optionally with a binary K, M, G or T suffix."""
    match = _SIZE.fullmatch(text.strip())
    if not match or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 1048576, 512M, 2G)")
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


def whole_count(text: str) -> int:
    """A whole number of at least 1 (``--retain K``)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)
