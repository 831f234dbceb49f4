"""core_0010 removes the ``user:password@`` older releases stored: remotes, remote artifacts,
schedules and queued syncs (issue 25, item 3), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import text

from pendingops.db.migrations.runner import alembic_config, migration_connection
from pendingops.plugins.database import migration_branches
from tests.db.test_migrations import empty_database, migrate

SECRET = "S3cretPW"


def _stored_text(db) -> str:
    """Every stored value the scrub looks at, as one text."""
    with db.engine.connect() as conn:
        parts = [
            str(row)
            for table in ("remote", "remote_artifact", "sync_schedule")
            for row in conn.execute(text(f"SELECT * FROM {table}")).all()
        ]
        if db.engine.dialect.name == "postgresql":
            parts += [str(row) for row in conn.execute(text("SELECT args FROM procrastinate_jobs")).all()]
    return "\n".join(parts)


def test_core_0010_scrubs_stored_credentials(db_kind: str, tmp_path: Path) -> None:
    db, _ = empty_database(db_kind, tmp_path)
    migrate(db, "core_0009")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO repository (id, name, created_at) VALUES (1, 'r', CURRENT_TIMESTAMP)"))
        conn.execute(
            text(
                "INSERT INTO content (id, content_type, key_digest, created_at)"
                " VALUES (1, 'file', 'k', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(text("INSERT INTO content_artifact (id, content_id, relative_path) VALUES (1, 1, 'a')"))
        remotes = [
            (1, f"http://alice:{SECRET}@h/M", f"http://alice:{SECRET}@h/M"),
            (2, "http://h/M", "http://h/M"),  # the name the first one scrubs to: taken
            (3, "plain", "http://h2/M"),
        ]
        for remote_id, name, url in remotes:
            conn.execute(
                text("INSERT INTO remote (id, name, url, policy) VALUES (:id, :name, :url, 'on_demand')"),
                {"id": remote_id, "name": name, "url": url},
            )
        conn.execute(
            text("INSERT INTO remote_artifact (id, content_artifact_id, remote_id, url) VALUES (1, 1, 1, :url)"),
            {"url": f"http://alice:{SECRET}@h/a"},
        )
        conn.execute(
            text("INSERT INTO remote_artifact (id, content_artifact_id, remote_id, url) VALUES (2, 1, 3, :url)"),
            {"url": "http://h2/a?who=me@there"},
        )
        options = {"repository": "r", "url": f"https://bob:{SECRET}@h/M", "plugin": "file", "force": False}
        conn.execute(
            text(
                "INSERT INTO sync_schedule (name, options, every_seconds, created_at)"
                " VALUES ('n', :o, 60, CURRENT_TIMESTAMP)"
            ),
            {"o": json.dumps(options)},
        )
        if db_kind == "postgresql":
            conn.execute(text("CREATE TABLE procrastinate_jobs (id bigint, task_name text, args jsonb)"))
            conn.execute(
                text("INSERT INTO procrastinate_jobs VALUES (1, 'pendingops.sync', CAST(:a AS jsonb))"),
                {"a": json.dumps({**options, "url": f"http://alice:{SECRET}@h/M"})},
            )
    assert SECRET in _stored_text(db)
    migrate(db, "core_0010")
    assert SECRET not in _stored_text(db)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT id, name, url FROM remote ORDER BY id")).all() == [
            (1, "http://h/M#1", "http://h/M"),
            (2, "http://h/M", "http://h/M"),
            (3, "plain", "http://h2/M"),
        ]
        assert conn.execute(text("SELECT url FROM remote_artifact ORDER BY id")).scalars().all() == [
            "http://h/a",
            "http://h2/a?who=me@there",  # an @ after the host is no credential
        ]
        stored = json.loads(conn.execute(text("SELECT options FROM sync_schedule")).scalar_one())
        assert stored == {**options, "url": "https://h/M"}
        if db_kind == "postgresql":
            args = conn.execute(text("SELECT args FROM procrastinate_jobs")).scalar_one()
            assert args == {**options, "url": "http://h/M"}
    with migration_connection(db) as conn, conn.begin():
        command.downgrade(alembic_config(conn, migration_branches()), "core_0009")  # nothing to undo
    db.close()


def test_core_0010_without_a_queue_table_on_postgresql(tmp_path: Path) -> None:
    """No procrastinate_jobs table (the queue never used): the remotes are scrubbed all the same."""
    db, _ = empty_database("postgresql", tmp_path)
    migrate(db, "core_0009")
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar_one() is None
        conn.execute(
            text("INSERT INTO remote (id, name, url, policy) VALUES (1, 'r', :url, 'immediate')"),
            {"url": f"http://alice:{SECRET}@h/M"},
        )
    migrate(db, "core_0010")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT url FROM remote")).scalar_one() == "http://h/M"
    db.close()
