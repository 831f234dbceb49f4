"""Schema drift: a model column (or table) the database lacks although every branch is at its head.

It happens when a plugin's model gains a column and no revision adds it: the version check passes,
then the first statement naming the column fails. Opening a database looks for it cheaply (the
column names of the tables it already read, one reflection per table); ``db status`` compares the
whole metadata with Alembic's ``compare_metadata``. Both name the branch (the plugin) owning the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, inspect

from pendingops.db.errors import DatabaseError
from pendingops.db.migrations.branches import Branch


@dataclass(frozen=True, slots=True)
class Drift:
    """One thing the models have and the database lacks."""

    table: str
    #: the missing column; None when the whole table is missing
    column: str | None
    #: the branch (plugin) owning the table; "" when no branch does (a content type without migrations)
    owner: str

    def describe(self) -> str:
        """``drift: table.column missing``, as ``db status`` prints it."""
        return f"drift: {self.table}.{self.column} missing" if self.column else f"drift: table {self.table} missing"

    def as_json(self) -> dict[str, str | None]:
        return {"table": self.table, "column": self.column, "owner": self.owner or None}


class SchemaDrift(DatabaseError):
    """The models have columns no migration created: a revision is missing (bad input, exit 2)."""


def owner_of(table: str, branches: Iterable[Branch]) -> str:
    """The name of the branch whose models define ``table``, or "" when none does."""
    return next((b.name for b in branches if table in b.tables or table == b.marker_table), "")


def problem(drifts: Sequence[Drift]) -> str:
    """One line naming the first drift, its plugin and the fix."""
    first = drifts[0]
    more = f" (and {len(drifts) - 1} more: 'pendingops db status' lists them)" if len(drifts) > 1 else ""
    whose = {"": "a content type's", "core": "pendingops's own"}.get(first.owner, f"plugin {first.owner}'s")
    return (
        f"{first.describe()}{more}: {whose} model has it but no migration created it; "
        "add a revision that does (docs/plugins.md, 'Migrations'), then run 'pendingops db upgrade'"
    )


def missing_columns(conn: Connection, tables: set[str], branches: Sequence[Branch]) -> list[Drift]:
    """The model columns missing from the tables the database has: the cheap check made on opening."""
    from pendingops.db.schema import Base

    wanted = [t for t in Base.metadata.sorted_tables if t.name in tables]
    if not wanted:
        return []
    found = inspect(conn).get_multi_columns(filter_names=[t.name for t in wanted])
    present = {table: {c["name"] for c in columns} for (_, table), columns in found.items()}
    return [
        Drift(t.name, c.name, owner_of(t.name, branches))
        for t in wanted
        for c in t.columns
        if c.name not in present.get(t.name, {c.name})
    ]


def compare(conn: Connection, branches: Sequence[Branch]) -> list[Drift]:
    """Every table and column of the models the database lacks, by Alembic's ``compare_metadata``."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from pendingops.db.migrations.branches import VERSION_TABLE
    from pendingops.db.schema import Base

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    drifts: list[Drift] = []
    for diff in _flatten(compare_metadata(context, Base.metadata)):
        if diff[0] == "add_table":
            drifts.append(Drift(diff[1].name, None, owner_of(diff[1].name, branches)))
        elif diff[0] == "add_column":
            drifts.append(Drift(diff[2], diff[3].name, owner_of(diff[2], branches)))
    return sorted(drifts, key=lambda d: (d.table, d.column or ""))


def _flatten(diffs: Iterable[object]) -> Iterable[tuple[object, ...]]:
    for diff in diffs:
        if isinstance(diff, list):  # column modifications come grouped
            yield from (d for d in diff if isinstance(d, tuple))
        elif isinstance(diff, tuple):
            yield diff
