"""The packages a sync selected, on disk until they are emitted: memory does not grow with the archive.

One row per package unit (the first stanza read for its natural key: the same file listed by two
suites, or inside several architectures' indexes, is one unit) and one per listing of it (suite,
component, the architecture of the index that listed it). The listings become the suite units'
members, from which our own indexes are written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import Any

from pendingops.pending import natural_key_digest
from pendingops.plugins.deb.content import DebPackage
from pendingops.plugins.deb.packages import package_fields
from pendingops.plugins.deb.stanza import Stanza

_BATCH = 1000


def create_catalog(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("CREATE TABLE package (key TEXT PRIMARY KEY, name TEXT NOT NULL, fields TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE member (suite TEXT, component TEXT, architecture TEXT, key TEXT,"
            " PRIMARY KEY (suite, component, architecture, key)) WITHOUT ROWID"
        )
        conn.commit()


def package_key(fields: dict[str, Any]) -> str:
    """The digest the database keys the package unit of ``fields`` by (``content.key_digest``)."""
    key = tuple(fields[name] for name in DebPackage.natural_key)
    return natural_key_digest(DebPackage.content_type_name(), key)


def add_index(
    path: Path, stanzas: Iterable[Stanza], where: str, listing: tuple[str, str, str], wanted: frozenset[str]
) -> int:
    """Check and keep the stanzas of one index, listed as ``listing`` (suite, component, architecture);
    only packages named in ``wanted`` when it is not empty. Returns how many were kept (blocking)."""
    kept = 0
    with closing(sqlite3.connect(path)) as conn:
        chosen = (s for s in stanzas if not wanted or s.fields.get("Package") in wanted)
        while batch := [package_fields(stanza, where) for stanza in islice(chosen, _BATCH)]:
            rows = [(package_key(fields), fields["package"], json.dumps(fields)) for fields in batch]
            conn.executemany("INSERT OR IGNORE INTO package VALUES (?, ?, ?)", rows)
            conn.executemany("INSERT OR IGNORE INTO member VALUES (?, ?, ?, ?)", [(*listing, row[0]) for row in rows])
            kept += len(rows)
        conn.commit()
    return kept


def package_count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM package").fetchone()[0])


def names_missing(path: Path, names: Iterable[str]) -> list[str]:
    """The package names of ``names`` that no index kept."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE INDEX IF NOT EXISTS package_name ON package (name)")
        query = "SELECT 1 FROM package WHERE name = ? LIMIT 1"
        return sorted(name for name in names if conn.execute(query, (name,)).fetchone() is None)


def packages(path: Path) -> Iterator[dict[str, Any]]:
    """The kept packages' fields in the order they were first read, a batch at a time."""
    with closing(sqlite3.connect(path)) as conn:
        last = 0
        query = "SELECT rowid, fields FROM package WHERE rowid > ? ORDER BY rowid LIMIT ?"
        while rows := conn.execute(query, (last, _BATCH)).fetchall():
            for _, fields in rows:
                yield json.loads(fields)
            last = rows[-1][0]


def members(path: Path, suite: str) -> Iterator[list[tuple[str, str, str]]]:
    """The listings of ``suite``, (component, architecture, package key), a batch at a time."""
    with closing(sqlite3.connect(path)) as conn:
        query = (
            "SELECT component, architecture, key FROM member"
            " WHERE suite = ? AND (component, architecture, key) > (?, ?, ?)"
            " ORDER BY component, architecture, key LIMIT ?"
        )
        last = ("", "", "")
        while rows := conn.execute(query, (suite, *last, _BATCH)).fetchall():
            yield rows
            last = rows[-1]
