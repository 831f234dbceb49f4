"""A distribution keeps the time its file was uploaded, when the index's JSON page gives it (PEP 700).

Units stored before keep NULL: the time is read from the remote's page when a unit is first saved,
and units are immutable, so it is never filled in later (the served page then leaves it out).

Revision ID: python_0003
Revises: python_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "python_0003"
down_revision = "python_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("python_distribution") as batch:
        batch.add_column(sa.Column("upload_time", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("python_distribution") as batch:
        batch.drop_column("upload_time")
