"""One mutant: a plausible bug, as an exact snippet of a file and its replacement."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """One plausible bug: ``old`` becomes ``new`` in ``file`` (and each pair of ``also`` in it too)."""

    id: str
    guarantee: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str
    also: tuple[tuple[str, str], ...] = ()
    #: "sqlite": the bug does not depend on the database, its tests run on SQLite only;
    #: "both" or "postgresql": a database-specific guarantee, its tests must run on PostgreSQL
    databases: str = "sqlite"

    @property
    def edits(self) -> tuple[tuple[str, str], ...]:
        return ((self.old, self.new), *self.also)
