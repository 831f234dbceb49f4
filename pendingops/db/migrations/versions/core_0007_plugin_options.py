"""Repositories remember the plugin options (``sync --option``) their syncs run with.

Revision ID: core_0007
Revises: core_0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0007"
down_revision = "core_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repository") as batch:
        batch.add_column(sa.Column("plugin_options", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository") as batch:
        batch.drop_column("plugin_options")
