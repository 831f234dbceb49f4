"""Versions made by a rollback say which version's content they copied.

``repository_version.rolled_back_to`` is the version a ``pendingops rollback --to N`` copied; NULL for
a version a sync (or any other writer) made. ``versions`` shows it.

Revision ID: core_0012
Revises: core_0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0012"
down_revision = "core_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repository_version") as batch:
        batch.add_column(sa.Column("rolled_back_to", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository_version") as batch:
        batch.drop_column("rolled_back_to")
