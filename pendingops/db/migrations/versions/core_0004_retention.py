"""Repositories remember how many versions a sync keeps (``sync --retain K``).

Revision ID: core_0004
Revises: core_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0004"
down_revision = "core_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repository") as batch:
        batch.add_column(sa.Column("retain_versions", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository") as batch:
        batch.drop_column("retain_versions")
