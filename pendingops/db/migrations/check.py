"""The version check made on opening a database, and the creation of a new one at head.

A handful of small queries: the table names and the version table's rows. A new database (or a
newly installed plugin's tables) is created from the models and stamped at head in one
transaction; anything else that is not at head is refused with one line naming the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table, inspect, select

from pendingops.db.errors import DatabaseError
from pendingops.db.migrations.branches import CORE, VERSION_TABLE, Branch

UPGRADE_HINT = "run 'pendingops db upgrade'"
_SCHEMA_LOCK_KEY = 0x70656E64736368  # "pendsch"


def version_table(metadata: MetaData | None = None) -> Table:
    """The version table, as Alembic defines it (one ``version_num`` per branch head)."""
    return Table(
        VERSION_TABLE,
        metadata or MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )


@dataclass(slots=True)
class BranchState:
    branch: Branch
    #: the stored revision; for an unversioned branch whose tables exist, its base (what stamping records)
    current: str | None
    #: "current", "behind", "unversioned" (tables made before migrations), "missing" (no tables yet)
    state: str

    @property
    def pending(self) -> list[str]:
        return [r.id for r in self.branch.pending(self.current)]


@dataclass(slots=True)
class SchemaState:
    """Where a database stands against the installed revisions."""

    branches: list[BranchState]
    tables: set[str]
    versioned: bool
    #: stored revisions no installed branch knows (a newer pendingops, or an uninstalled plugin)
    unknown: list[str] = field(default_factory=list)

    @property
    def newer(self) -> bool:
        """A stored revision is unknown here: a newer pendingops or a plugin not installed wrote it."""
        return bool(self.unknown)

    @property
    def up_to_date(self) -> bool:
        return not self.newer and all(b.state == "current" for b in self.branches)

    @property
    def creatable(self) -> bool:
        """Nothing to migrate: only branches whose tables do not exist yet (a new database, a new plugin)."""
        return not self.newer and all(b.state in ("current", "missing") for b in self.branches)

    def problem(self) -> str:
        """One line saying why the schema cannot be used as it is, and what to do."""
        if self.newer:
            return (
                f"the database has schema revision(s) {', '.join(self.unknown)} unknown to this installation "
                "(written by a newer pendingops or by a plugin that is not installed): install it"
            )
        if self.creatable:
            missing = ", ".join(b.branch.name for b in self.branches if b.state == "missing")
            return f"not created yet ({missing}): created at head on first use, or by 'pendingops db upgrade'"
        if not self.versioned:
            return f"the database was created by a pendingops without schema versions: {UPGRADE_HINT}"
        behind = [f"{b.branch.name} {b.current or 'none'} -> {b.branch.head}" for b in self.branches if b.pending]
        return f"the database schema is out of date ({'; '.join(behind)}): {UPGRADE_HINT}"


class SchemaOutOfDate(DatabaseError):
    """The database's schema is not the installed one's; the message says what to run."""


def read_versions(conn: Connection, tables: set[str]) -> list[str] | None:
    """The stored revisions, or None when the database has no version table."""
    if VERSION_TABLE not in tables:
        return None
    return list(conn.execute(select(version_table().c.version_num)).scalars())


def covered(branches: list[Branch], rows: set[str]) -> set[str]:
    """Every revision the stored ``rows`` imply applied: their ancestors, and what they depend on.

    Alembic keeps no row for a revision another stored one depends on (the core's baseline under a
    plugin's first revision), so the core's place can come from a plugin's row.
    """
    by_id = {r: b for b in branches for r in b.revisions}
    done: set[str] = set()
    todo = [r for r in rows if r in by_id]
    while todo:
        rev = todo.pop()
        if rev in done or rev not in by_id:
            continue
        done.add(rev)
        found = by_id[rev].revisions[rev]
        todo.extend(found.down)
        todo.extend(found.depends)
    return done


def record(conn: Connection, branches: list[Branch], add: set[str]) -> None:
    """Add revisions to the version table, keeping only rows no other row implies (as Alembic does).

    Alembic refuses a version table where one row is implied by another (a plugin's first revision
    depends on the core's baseline), so implied rows are left out or removed.
    """
    table = version_table()
    table.create(conn, checkfirst=True)
    stored = set(conn.execute(select(table.c.version_num)).scalars())
    wanted = stored | add
    keep = {r for r in wanted if r not in covered(branches, wanted - {r})}
    if stored - keep:
        conn.execute(table.delete().where(table.c.version_num.in_(sorted(stored - keep))))
    if keep - stored:
        conn.execute(table.insert(), [{"version_num": r} for r in sorted(keep - stored)])


def schema_state(conn: Connection, branches: list[Branch]) -> SchemaState:
    tables = set(inspect(conn).get_table_names())
    stored = read_versions(conn, tables)
    rows = set(stored or ())
    applied = covered(branches, rows)
    states = []
    for branch in branches:
        mine = applied.intersection(branch.revisions)
        current = max(mine, key=lambda r: len(branch.ancestors(r))) if mine else None
        if current is not None:
            state = "current" if current == branch.head else "behind"
        elif branch.marker_table in tables:
            current, state = branch.base, "unversioned"
        else:
            state = "missing"
        states.append(BranchState(branch, current, state))
    known = {r for b in branches for r in b.revisions}
    return SchemaState(states, tables, stored is not None, sorted(rows - known))


def ensure_schema(engine: Engine, branches: Sequence[Branch]) -> None:
    """Create what is new at head (stamped), or raise ``SchemaOutOfDate`` if a migration is pending.

    ``branches`` are the core's and every installed plugin's, handed in by whoever opened the
    database (the plugins' tables are then in ``Base.metadata`` too). Processes starting at once
    take turns creating (PostgreSQL: an advisory lock for the transaction; SQLite: the write lock
    of BEGIN IMMEDIATE).
    """
    from pendingops.db.schema import Base

    branches = list(branches)
    with engine.connect() as conn:
        state = schema_state(conn, branches)
        if state.up_to_date and set(Base.metadata.tables) <= state.tables:
            refuse_drift(conn, state.tables, branches)
            return
    if not state.creatable:
        raise SchemaOutOfDate(state.problem())
    with engine.begin() as conn:
        lock_schema(conn)
        state = schema_state(conn, branches)  # another process may have created it meanwhile
        if not state.creatable:
            raise SchemaOutOfDate(state.problem())
        existing = set(state.tables)
        create_at_head(conn, state)
        refuse_drift(conn, existing, branches)


def refuse_drift(conn: Connection, tables: set[str], branches: list[Branch]) -> None:
    """Raise ``SchemaDrift`` when a model column is missing from one of ``tables`` (a revision was forgotten)."""
    from pendingops.db.migrations.drift import SchemaDrift, missing_columns, problem

    drifts = missing_columns(conn, tables, branches)
    if drifts:
        raise SchemaDrift(problem(drifts))


def lock_schema(conn: Connection) -> None:
    """Serialize schema changes for the rest of ``conn``'s transaction (SQLite's BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")


def create_at_head(conn: Connection, state: SchemaState) -> None:
    """Create the missing tables from the models and record the new branches at their heads."""
    from pendingops.db.schema import Base

    missing = [t for t in Base.metadata.sorted_tables if t.name not in state.tables]
    Base.metadata.create_all(conn, tables=missing)
    record(conn, [b.branch for b in state.branches], {b.branch.head for b in state.branches if b.state == "missing"})
    for b in state.branches:
        b.current, b.state = (b.branch.head, "current") if b.state == "missing" else (b.current, b.state)


__all__ = ["CORE", "SchemaOutOfDate", "SchemaState", "ensure_schema", "schema_state"]
