"""Sync runs record the remote index and settings they read, so an unchanged remote ends a sync at once.

Revision ID: core_0008
Revises: core_0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0008"
down_revision = "core_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("index_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("settings_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("latest_version", sa.Integer, nullable=True))
        batch.add_column(sa.Column("remote_unchanged", sa.Boolean, nullable=False, server_default=sa.text("false")))
    op.create_index("sync_run_repository", "sync_run", ["repository_id", "id"])


def downgrade() -> None:
    op.drop_index("sync_run_repository", table_name="sync_run")
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("remote_unchanged")
        batch.drop_column("latest_version")
        batch.drop_column("settings_digest")
        batch.drop_column("index_digest")
