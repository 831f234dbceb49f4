"""The python plugin's distribution table.

Revision ID: python_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "python_0001"
down_revision = None
branch_labels = ("python",)
depends_on = "core_0001"  # python_distribution.id refers to content.id


def upgrade() -> None:
    op.create_table(
        "python_distribution",
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("packagetype", sa.String(16), nullable=False),
        sa.Column("requires_python", sa.Text),
        sa.Column("yanked", sa.Boolean, nullable=False),
        sa.Column("yanked_reason", sa.Text),
        sa.Column("core_metadata", sa.String(64)),
        sa.Column("summary", sa.Text),
        sa.Column("requires_dist", sa.JSON),
        sa.Column("id", sa.Integer, sa.ForeignKey("content.id", ondelete="CASCADE"), primary_key=True),
        sa.UniqueConstraint("filename", "sha256", name="python_distribution_natural_key"),
        sa.Index("python_distribution_name", "name"),
    )


def downgrade() -> None:
    op.drop_table("python_distribution")
