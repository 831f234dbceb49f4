"""Repositories remember whether their fetches may reach private addresses; remotes record their file size cap.

``repository.allow_private_destinations`` is what the repository's last successful sync ran with
(``sync --allow-private-destinations``): later syncs, serve's on_demand and streamed fetches, export
and ``verify --repair`` use it. ``remote.max_file_size`` is the cap its last sync applied, so serve
bounds an on_demand fetch of undeclared size as that sync would have.

Revision ID: core_0009
Revises: core_0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0009"
down_revision = "core_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repository") as batch:
        batch.add_column(
            sa.Column("allow_private_destinations", sa.Boolean, nullable=False, server_default=sa.text("false"))
        )
    with op.batch_alter_table("remote") as batch:
        batch.add_column(sa.Column("max_file_size", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("remote") as batch:
        batch.drop_column("max_file_size")
    with op.batch_alter_table("repository") as batch:
        batch.drop_column("allow_private_destinations")
