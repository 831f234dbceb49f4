"""Credentials out of every stored URL: remotes, remote artifacts, schedules and queued syncs.

Older releases could store a ``user:password@`` a URL was given with: in a sync queued with
``--enqueue`` (procrastinate's job arguments), a schedule's options, and a remote's or remote
artifact's URL. Credentials now come from netrc or the environment on the host that runs the sync;
this removes the ``user:password@`` part wherever it was stored. Only rows whose URL holds an ``@``
are read. A remote whose name, once scrubbed, is another remote's gets ``#ID`` after it (names are
unique). The downgrade changes nothing: the removed credentials are gone.

Revision ID: core_0010
Revises: core_0009
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from pendingops.remote import strip_credentials

revision = "core_0010"
down_revision = "core_0009"
branch_labels = None
depends_on = None

_SYNC_TASK = "pendingops.sync"


def upgrade() -> None:
    conn = op.get_bind()
    _scrub_remotes(conn)
    _scrub_column(conn, "remote_artifact", "url")
    _scrub_schedules(conn)
    if conn.dialect.name == "postgresql" and conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar():
        _scrub_jobs(conn)


def downgrade() -> None:
    """Nothing to undo: credentials removed from stored URLs are not put back."""


def _scrub_remotes(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT id, name, url FROM remote WHERE name LIKE '%@%' OR url LIKE '%@%'")).all()
    for row in rows:
        name = strip_credentials(row.name)
        taken = conn.execute(
            sa.text("SELECT id FROM remote WHERE name = :name AND id <> :id"), {"name": name, "id": row.id}
        )
        if name != row.name and taken.first() is not None:
            name = f"{name}#{row.id}"
        conn.execute(
            sa.text("UPDATE remote SET name = :name, url = :url WHERE id = :id"),
            {"name": name, "url": strip_credentials(row.url), "id": row.id},
        )


def _scrub_column(conn: sa.Connection, table: str, column: str) -> None:
    rows = conn.execute(sa.text(f"SELECT id, {column} AS value FROM {table} WHERE {column} LIKE '%@%'")).all()
    for row in rows:
        clean = strip_credentials(row.value)
        if clean != row.value:
            conn.execute(
                sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"), {"value": clean, "id": row.id}
            )


def _scrub_schedules(conn: sa.Connection) -> None:
    for row in conn.execute(sa.text("SELECT id, options FROM sync_schedule WHERE options LIKE '%@%'")).all():
        options = _scrubbed(json.loads(row.options))
        if options is not None:
            conn.execute(
                sa.text("UPDATE sync_schedule SET options = :options WHERE id = :id"),
                {"options": json.dumps(options), "id": row.id},
            )


def _scrub_jobs(conn: sa.Connection) -> None:
    rows = conn.execute(
        sa.text("SELECT id, args FROM procrastinate_jobs WHERE task_name = :task AND args->>'url' LIKE '%@%'"),
        {"task": _SYNC_TASK},
    ).all()
    for row in rows:
        args = _scrubbed(dict(row.args))
        if args is not None:
            conn.execute(
                sa.text("UPDATE procrastinate_jobs SET args = CAST(:args AS jsonb) WHERE id = :id"),
                {"args": json.dumps(args), "id": row.id},
            )


def _scrubbed(arguments: dict[str, Any]) -> dict[str, Any] | None:
    """The sync arguments without credentials in their URL; None when there were none."""
    url = arguments.get("url")
    if not isinstance(url, str) or strip_credentials(url) == url:
        return None
    return {**arguments, "url": strip_credentials(url)}
