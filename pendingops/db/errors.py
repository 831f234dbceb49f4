"""The database layer's errors: each says in one line what is wrong."""

from __future__ import annotations


class DatabaseError(RuntimeError):
    """The database cannot be opened or used; the message says why."""


class DatabaseUnreachable(DatabaseError):
    """The database server could not be reached (down, restarting): trying again later may work."""
