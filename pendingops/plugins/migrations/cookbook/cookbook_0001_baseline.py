"""Baseline: the cookbook plugin's table as released before migrations existed.

Revision ID: cookbook_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cookbook_0001"
down_revision = None
branch_labels = ("cookbook",)
depends_on = "core_0001"  # cookbook_content.id refers to content.id


def upgrade() -> None:
    op.create_table(
        "cookbook_content",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("content_id", sa.String(64), nullable=False),
        sa.Column("dependencies", sa.JSON),
        sa.Column("license", sa.Text),
        sa.Column("tarball_size", sa.BigInteger),
        sa.Column("published_at", sa.String(64)),
        sa.Column("description", sa.Text),
        sa.Column("maintainer", sa.Text),
        sa.Column("id", sa.Integer, sa.ForeignKey("content.id", ondelete="CASCADE"), primary_key=True),
        sa.UniqueConstraint("name", "version", "content_id", name="cookbook_content_natural_key"),
    )


def downgrade() -> None:
    op.drop_table("cookbook_content")
