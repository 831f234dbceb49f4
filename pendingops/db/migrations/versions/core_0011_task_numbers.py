"""Queued syncs get the numbers users see, and record how far they are.

``sync_task.number`` is the task number ``sync --enqueue`` prints and ``tasks`` lists: only sync
jobs get one, in the order they were queued, with no gaps (the queue's own job ids are shared with
its internal jobs). ``units_done``, ``units_total``, ``bytes_done`` and ``progress_at`` are the
running sync's latest progress as its worker recorded it.

Revision ID: core_0011
Revises: core_0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0011"
down_revision = "core_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_task") as batch:
        batch.add_column(sa.Column("number", sa.Integer, nullable=True))
        batch.add_column(sa.Column("units_done", sa.Integer, nullable=True))
        batch.add_column(sa.Column("units_total", sa.Integer, nullable=True))
        batch.add_column(sa.Column("bytes_done", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("sync_task_number", ["number"])


def downgrade() -> None:
    with op.batch_alter_table("sync_task") as batch:
        batch.drop_constraint("sync_task_number", type_="unique")
        for column in ("progress_at", "bytes_done", "units_total", "units_done", "number"):
            batch.drop_column(column)
