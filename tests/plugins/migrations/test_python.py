"""The python plugin's revisions on a database holding distributions: python_0002 puts the yank
mark in the natural key, and the units stored before it are found again by their new key;
python_0003 adds the upload time, NULL for the units stored before it."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from pendingops.db.database import DatabaseError
from pendingops.db.migrations.runner import alembic_config, migration_connection
from pendingops.pending import natural_key_digest
from pendingops.plugins.database import migration_branches
from pendingops.plugins.python.index_page import FileLink
from pendingops.plugins.python.plugin import PythonOptions, select_units
from tests.db.test_migrations import empty_database, migrate

SHA = {"a": "a" * 64, "b": "b" * 64, "c": "c" * 64, "d": "d" * 64}
#: (filename, sha256, yanked, yanked_reason) as the code before python_0002 stored them
BEFORE = [
    ("beta-1.0-py3-none-any.whl", SHA["a"], False, None),
    ("beta-1.1-py3-none-any.whl", SHA["b"], True, None),  # yanked without a reason
    ("beta-1.2-py3-none-any.whl", SHA["c"], True, "broken"),
    ("beta-1.3-py3-none-any.whl", SHA["d"], True, "\u00e9" * 3000),  # too long for a unique index entry
]


def downgrade(db, target: str) -> None:
    with migration_connection(db) as conn, conn.begin():
        command.downgrade(alembic_config(conn, migration_branches()), target)


def insert(conn, filename: str, sha256: str, yanked: bool, reason: str | None, digest: str) -> None:
    content_id = conn.execute(
        text("INSERT INTO content (content_type, key_digest, created_at) VALUES ('python', :d, :t) RETURNING id"),
        {"d": digest, "t": "2024-01-01 00:00:00+00:00"},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO python_distribution (id, filename, sha256, name, version, packagetype, yanked, yanked_reason)"
            " VALUES (:i, :f, :s, 'beta', '1', 'bdist_wheel', :y, :r)"
        ),
        {"i": content_id, "f": filename, "s": sha256, "y": yanked, "r": reason},
    )


def stored(db) -> dict[tuple[str, bool], tuple[str | None, str]]:
    """(yanked_reason, key digest) of every distribution, by (filename, yanked)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.filename, d.yanked, d.yanked_reason, c.key_digest FROM python_distribution d"
                " JOIN content c ON c.id = d.id ORDER BY d.filename"
            )
        ).all()
    return {(row[0], bool(row[1])): (row[2], row[3]) for row in rows}


def test_units_from_before_the_yank_joined_the_key_are_found_by_it(db_kind: str, tmp_path: Path) -> None:
    db, _ = empty_database(db_kind, tmp_path)
    migrate(db, "core@head")
    migrate(db, "python_0001")
    with db.engine.begin() as conn:
        for filename, sha256, yanked, reason in BEFORE:
            insert(conn, filename, sha256, yanked, reason, natural_key_digest("python", (filename, sha256)))

    migrate(db, "python@head")
    links = [FileLink(f, f"http://h/{f}", s, None, None if not y else (r or ""), None) for f, s, y, r in BEFORE]
    expected = {u.fields["filename"]: u for u in select_units("beta", links, PythonOptions())}
    after = stored(db)
    assert len(after) == len(expected)
    for (filename, yanked), (reason, digest) in after.items():
        unit = expected[filename]
        assert (yanked, reason) == (unit.fields["yanked"], unit.fields["yanked_reason"])
        assert digest == unit.key_digest()  # what a resync of the same index looks up: found, not added again
    assert [reason for reason, _ in after.values()] == ["", "", "broken", "\u00e9" * 256]
    with db.engine.connect() as conn:
        column = {c["name"]: c for c in inspect(conn).get_columns("python_distribution")}["yanked_reason"]
    assert column["nullable"] is False

    with db.engine.begin() as conn:  # the same file, yanked later: a unit of its own now
        insert(conn, BEFORE[0][0], BEFORE[0][1], True, "", "d" * 64)
    with pytest.raises(DatabaseError, match=r"python_0002: 'beta-1.0-py3-none-any.whl' is stored as two units"):
        downgrade(db, "python_0001")
    left = stored(db)  # the refused downgrade changed nothing
    assert left == after | {(BEFORE[0][0], True): ("", "d" * 64)}

    with db.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM python_distribution WHERE yanked_reason = '' AND filename = :f AND yanked"),
            {"f": BEFORE[0][0]},
        )
        conn.execute(text("DELETE FROM content WHERE key_digest = :d"), {"d": "d" * 64})
    downgrade(db, "python_0001")
    cut = {(f, y): (r and r[:256], natural_key_digest("python", (f, s))) for f, s, y, r in BEFORE}
    assert stored(db) == cut  # as before python_0002, but for the reason cut to what an index entry takes
    db.close()


def test_python_0003_adds_the_upload_time_and_leaves_stored_units_without_one(db_kind: str, tmp_path: Path) -> None:
    db, _ = empty_database(db_kind, tmp_path)
    migrate(db, "core@head")
    migrate(db, "python_0002")
    with db.engine.begin() as conn:
        insert(conn, BEFORE[0][0], BEFORE[0][1], False, "", "a" * 64)
    migrate(db, "python@head")
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT filename, upload_time FROM python_distribution")).all() == [
            (BEFORE[0][0], None)
        ]
        conn.execute(text("UPDATE python_distribution SET upload_time = '2024-05-06T07:08:09.123456Z'"))
    downgrade(db, "python_0002")
    with db.engine.connect() as conn:
        assert "upload_time" not in {c["name"] for c in inspect(conn).get_columns("python_distribution")}
        assert conn.execute(text("SELECT filename FROM python_distribution")).scalars().all() == [BEFORE[0][0]]
    db.close()
