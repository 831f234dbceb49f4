"""Record orphan cleanups, so a sync that lost its store lock in an outage knows if one ran meanwhile.

Revision ID: core_0003
Revises: core_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "store_cleanup",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("started_at", when, nullable=False),
        sa.Column("finished_at", when),
        sa.Column("content", sa.BigInteger, nullable=False),
        sa.Column("artifacts", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("stray_files", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_cleanup")
