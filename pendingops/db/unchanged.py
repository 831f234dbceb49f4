"""The unchanged units of a resync, found and declared in SQL rather than one by one.

A batch of declared units is loaded into a temporary table, one row per declared artifact (``COPY``
on PostgreSQL, multi-row ``INSERT`` on SQLite, then analysed there; PostgreSQL probes per row
through LATERAL, where an ANALYZE per batch cost more than the probes), so the planner walks it and
probes the store's unique indexes, the natural key's first (an index of its own would never be
used), and one join with the typed table, the repository's current membership, the ContentArtifact,
this remote's RemoteArtifact and the stored Artifact finds, per row, the member with the same file,
digest, size and url. A unit is unchanged when every one of its rows found it and the content has
no other ContentArtifact: a count over the unit's rows, in the same statement (a batch whose units
all have one artifact is spared it, and the sort it costs). In mirror mode they are declared in the
version being built: on PostgreSQL by a data-modifying CTE of that same statement, so the matches are
found once; on SQLite from the ids found, by ``declare_content``. The temporary table is made once
per connection and emptied by every transaction that fills it.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.schema import CreateTable

from pendingops.db.database import Database
from pendingops.db.schema import Artifact, Content, ContentArtifact, DeclaredContent, RemoteArtifact, RepositoryContent
from pendingops.db.versions import NewVersion, claim_version, declare_content

_ca = ContentArtifact.__table__
_ra = RemoteArtifact.__table__
_rc = RepositoryContent.__table__
_artifact = Artifact.__table__
_declared = DeclaredContent.__table__

#: one loaded row, one per artifact of a unit: the unit's index in its batch, how many artifacts it
#: declares, its natural-key values, one 0/1 per other field (declared or not), and this artifact's
#: relative path, url, sha256 and size
Row = tuple[Any, ...]


@functools.cache
def other_fields(content_type: type[Content]) -> tuple[str, ...]:
    """The typed table's columns besides its natural key: a stored NULL one the unit declares is filled by save."""
    return tuple(name for name in content_type.field_names() if name not in content_type.natural_key)


@functools.cache
def _temp_table(content_type: type[Content]) -> Table:
    typed = content_type.__table__  # type: ignore[attr-defined]
    keys = [Column(f"k_{name}", typed.c[name].type) for name in content_type.natural_key]
    declared = [Column(f"d_{name}", Integer) for name in other_fields(content_type)]
    name = f"unchanged_{typed.name}"
    return Table(
        name,
        MetaData(),
        Column("idx", Integer, nullable=False),
        Column("n", Integer, nullable=False),
        *keys,
        *declared,
        Column("a_path", Text),
        Column("a_url", Text),
        Column("a_sha256", String(64)),
        Column("a_size", BigInteger),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


def _matches(
    temp: Table,
    content_type: type[Content],
    repository_id: int,
    remote_id: int,
    stored: bool,
    dialect: str,
    several: bool = True,
) -> Any:
    """(idx, content_id, location), one per artifact, of the loaded units the repository holds unchanged.

    Each row finds the member holding its artifact. With ``several`` (some unit has more than one),
    the unit is unchanged when all of its ``n`` rows did (a count over its rows, which sorts them) and
    the content has ``n`` ContentArtifacts; without, a row found is its unit found and the content has
    no other ContentArtifact (an anti join, cheaper than a count per row). On PostgreSQL each row
    probes the store in a LATERAL subquery (its natural key through the typed table's unique index,
    then the row's few links): a join let the planner hash whole tables, a cost that grew with the
    store instead of the batch. SQLite's planner walks the temp table first.
    """
    typed = content_type.__table__  # type: ignore[attr-defined]
    any_ca = _ca.alias("any_ca")
    by_key = and_(*(typed.c[name] == temp.c[f"k_{name}"] for name in content_type.natural_key))
    member = and_(_rc.c.repository_id == repository_id, _rc.c.content_id == typed.c.id, _rc.c.version_removed.is_(None))
    same_file = and_(_ca.c.content_id == typed.c.id, _ca.c.relative_path == temp.c.a_path)
    same_source = and_(
        _ra.c.content_artifact_id == _ca.c.id,
        _ra.c.remote_id == remote_id,
        _ra.c.url == temp.c.a_url,
        _ra.c.sha256 == temp.c.a_sha256,
        _ra.c.size.is_not_distinct_from(temp.c.a_size),
    )
    same_bytes = and_(
        _artifact.c.id == _ca.c.artifact_id,
        _artifact.c.sha256 == temp.c.a_sha256,
        or_(temp.c.a_size.is_(None), _artifact.c.size == temp.c.a_size),
    )
    if several:
        files = select(func.count()).select_from(any_ca).where(any_ca.c.content_id == typed.c.id).scalar_subquery()
        conditions = [files == temp.c.n]
    else:
        conditions = [~exists().where(any_ca.c.content_id == typed.c.id, any_ca.c.id != _ca.c.id)]
    if not stored:
        conditions.append(or_(_ca.c.artifact_id.is_(None), _artifact.c.id.is_not(None)))
    for name in other_fields(content_type):
        conditions.append(or_(typed.c[name].is_not(None), temp.c[f"d_{name}"] == 0))

    def held(start: Any) -> Any:
        joined = start.join(_rc, member).join(_ca, same_file).join(_ra, same_source)
        # immediate: the file must be stored, with these bytes; otherwise it may still be to fetch
        return joined.join(_artifact, same_bytes) if stored else joined.outerjoin(_artifact, same_bytes)

    found = (typed.c.id.label("content_id"), _artifact.c.location)
    if dialect == "postgresql":
        probe = select(*found).select_from(held(typed)).where(by_key, *conditions).limit(1).lateral("probe")
        rows = select(temp.c.idx, probe.c.content_id, probe.c.location).select_from(temp.join(probe, true()))
    else:
        rows = select(temp.c.idx, *found).select_from(held(temp.join(typed, by_key))).where(*conditions)
    if not several:
        return rows
    rows = rows.add_columns(temp.c.n, func.count().over(partition_by=temp.c.idx).label("matched"))
    per_artifact = rows.subquery("per_artifact")
    return select(per_artifact.c.idx, per_artifact.c.content_id, per_artifact.c.location).where(
        per_artifact.c.matched == per_artifact.c.n
    )


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _load(conn: Connection, db: Database, temp: Table, rows: Sequence[Row]) -> None:
    """Put ``rows`` into ``temp``: one COPY on PostgreSQL, multi-row INSERTs on SQLite."""
    columns = len(temp.columns)
    if db.dialect == "postgresql":
        text = "".join("\t".join(map(_copy_value, row)) + "\n" for row in rows)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.copy_expert(f"COPY {temp.name} FROM STDIN", io.StringIO(text))
        finally:
            cursor.close()
    else:
        one = "(" + ",".join("?" * columns) + ")"
        for chunk in db.chunks(rows, columns):
            flat = [value for row in chunk for value in row]
            conn.exec_driver_sql(f"INSERT INTO {temp.name} VALUES " + ",".join([one] * len(chunk)), tuple(flat))
        conn.exec_driver_sql(f"ANALYZE {temp.name}")  # SQLite's planner knows nothing of a new temp table


def _declare(db: Database, version: NewVersion, matches: Any) -> Any:
    """The INSERT ... SELECT declaring the content of ``matches`` in ``version``, none twice (PostgreSQL's CTE)."""
    declared = select(literal(version.id), matches.c.content_id).distinct().where(matches.c.content_id.is_not(None))
    return db.insert(_declared).from_select(["version_id", "content_id"], declared).on_conflict_do_nothing()


def find_unchanged(
    conn: Connection,
    db: Database,
    content_type: type[Content],
    rows: Sequence[Row],
    *,
    repository_id: int,
    remote_id: int,
    stored: bool,
    declare_in: NewVersion | None,
) -> list[tuple[int, int, str | None]]:
    """(index, content id, stored file's location) of each loaded row whose unit is unchanged.

    A unit has one row per artifact, at distinct relative paths, so one triple per artifact comes back.
    Unchanged: the repository holds that content now, with as many ContentArtifacts as the unit
    declares, each declared artifact at the same relative path as one of them with this remote's
    RemoteArtifact of the same url, sha256 and size and (``stored``) a stored Artifact with that
    sha256 and size, and no NULL field the unit declares. ``declare_in`` (mirror mode): they are
    declared in that version, in the same transaction. The caller checks that the locations are in
    storage; a unit with a file that is not goes through the pipeline.
    """
    temp = _temp_table(content_type)
    # Made once per connection and emptied by each transaction: no catalog rows made and removed per
    # batch. A failed transaction takes its rows (and the table, if it made it) away with its rollback.
    conn.execute(CreateTable(temp, if_not_exists=True))
    _load(conn, db, temp, rows)
    several = any(row[1] > 1 for row in rows)
    matching = _matches(temp, content_type, repository_id, remote_id, stored, db.dialect, several)
    if declare_in is not None and db.dialect == "postgresql":
        # One statement: the matches are found once and declared by a data-modifying CTE.
        claim_version(conn, declare_in)
        matches = matching.cte("matches")
        query = select(matches.c.idx, matches.c.content_id, matches.c.location).add_cte(
            _declare(db, declare_in, matches).cte("declared")
        )
        found = conn.execute(query).all()
    else:
        matches = matching.subquery("matches")
        found = conn.execute(select(matches.c.idx, matches.c.content_id, matches.c.location)).all()
        if declare_in is not None and found:  # by the ids found: the match is not run again
            declare_content(conn, db, declare_in, [content_id for _, content_id, _ in found if content_id is not None])
    if db.dialect != "postgresql":  # PostgreSQL empties it at commit (ON COMMIT DELETE ROWS)
        conn.execute(temp.delete())
    return [(idx, content_id, location) for idx, content_id, location in found]
