"""Baseline: the file plugin's table as released before migrations existed.

Revision ID: file_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "file_0001"
down_revision = None
branch_labels = ("file",)
depends_on = "core_0001"  # file_content.id refers to content.id


def upgrade() -> None:
    op.create_table(
        "file_content",
        sa.Column("relative_path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("id", sa.Integer, sa.ForeignKey("content.id", ondelete="CASCADE"), primary_key=True),
        sa.UniqueConstraint("relative_path", "sha256", name="file_content_natural_key"),
    )


def downgrade() -> None:
    op.drop_table("file_content")
