"""Planner statistics that follow the data: the tables a large change grew are analysed at once.

A query planner picks index probes or scans from what its statistics say about a table's size. A
fresh database queried right after its first big sync, or a server without autovacuum, plans for
tables that are empty or small in its statistics, and a batch's lookup beside 150,000 units then
costs what a scan of them costs. So every step that changes many rows at once (a sync, retention,
a rollback, an orphan cleanup) hands the rows it changed per table to ``refresh_statistics``: a table
whose change is more than a tenth of the rows its statistics know (or 10,000 rows) is analysed:
``ANALYZE table`` on PostgreSQL, one whole ``ANALYZE`` on SQLite (statistics from a bounded read
made the next sync slower), where ``PRAGMA optimize`` under ``PRAGMA analysis_limit`` also runs when a
connection closes (``database.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, text
from sqlalchemy.pool import StaticPool

from pendingops.db.database import Database

#: a change of more than this share of the rows the statistics know makes them stale
STALE_SHARE = 0.10
#: ... and so does a change of at least this many rows, whatever the table's size
STALE_ROWS = 10_000


def refresh_statistics(db: Database, changed: Mapping[str, int]) -> list[str]:
    """Analyse each table of ``changed`` (table name -> rows changed) whose statistics it made stale.

    Returns the tables analysed, in name order; tables that do not exist are left alone. A handful of
    statements whatever the number of tables: the statistics known, then one ``ANALYZE`` (on SQLite
    the whole database's, each table bounded by ``analysis_limit``).
    """
    wanted = {table: rows for table, rows in changed.items() if rows > 0}
    if not wanted:
        return []
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        known = _known_rows(conn, sorted(wanted))
        stale = sorted(t for t, rows in wanted.items() if t in known and _is_stale(rows, known[t]))
        if stale:
            _analyse(conn, stale)
    if stale and db.engine.dialect.name == "sqlite" and not isinstance(db.engine.pool, StaticPool):
        # A SQLite connection reads the statistics when it loads the schema, and ANALYZE does not make
        # the others reload it: the pooled connections go, the next ones plan with what was gathered.
        # (An in-memory database is its one connection, which ran the ANALYZE: it stays.)
        db.engine.dispose()
    return stale


def _is_stale(changed: int, known: float) -> bool:
    return changed >= STALE_ROWS or changed > STALE_SHARE * max(known, 0)


def _known_rows(conn: Connection, tables: list[str]) -> dict[str, float]:
    """The rows the planner's statistics hold for each of ``tables`` that exists (0: none gathered yet)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT relname, reltuples FROM pg_class WHERE relkind IN ('r', 'p') AND relname = ANY(:names)"
                " AND relnamespace = to_regnamespace(current_schema())::oid"
            ),
            {"names": tables},
        )
        return {name: max(float(count), 0.0) for name, count in rows}
    names = ", ".join("?" * len(tables))
    existing = {
        name
        for (name,) in conn.exec_driver_sql(
            f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({names}, 'sqlite_stat1')", tuple(tables)
        )
    }
    found = dict.fromkeys(existing - {"sqlite_stat1"}, 0.0)
    if "sqlite_stat1" in existing:
        query = f"SELECT tbl, stat FROM sqlite_stat1 WHERE tbl IN ({names})"
        for table, stat in conn.exec_driver_sql(query, tuple(tables)):
            if stat:
                found[table] = max(found.get(table, 0.0), float(str(stat).split()[0]))
    return found


def _analyse(conn: Connection, tables: list[str]) -> None:
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "sqlite":
        # SQLite analyses one table per statement, so one ANALYZE of the whole database: a sync's stale
        # tables are most of it, and the statements a sync costs stay flat. Read whole (an open
        # connection's analysis_limit is 0; only a closing one bounds it): statistics sampled from a
        # bounded read made the next sync beside 150,000 units slower.
        conn.exec_driver_sql("ANALYZE")
        return
    conn.exec_driver_sql(f"ANALYZE {', '.join(map(quote, tables))}")
