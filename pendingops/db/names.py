"""Repository names: the one ``pendingops serve`` keeps for its own pages (``/-/health``, ``/-/metrics``)."""

from __future__ import annotations

#: no repository has this name: the server answers its own pages below ``/-/``
RESERVED = "-"


class ReservedName(ValueError):
    """A repository may not have this name."""


def check_repository_name(name: str) -> str:
    """``name``, or ReservedName when a repository may not have it."""
    if name == RESERVED:
        raise ReservedName(f"{name!r} is reserved (the server's own pages are under /{RESERVED}/): choose another name")
    return name
