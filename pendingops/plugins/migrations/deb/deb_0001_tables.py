"""The deb plugin's tables: binary packages, suites and the packages each suite lists.

Revision ID: deb_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "deb_0001"
down_revision = None
branch_labels = ("deb",)
depends_on = "core_0001"  # the tables' ids refer to content.id


def upgrade() -> None:
    op.create_table(
        "deb_binary_package",
        sa.Column("package", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("architecture", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("section", sa.Text),
        sa.Column("priority", sa.Text),
        sa.Column("depends", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("installed_size", sa.BigInteger),
        sa.Column("stanza", sa.Text, nullable=False),
        sa.Column("id", sa.Integer, sa.ForeignKey("content.id", ondelete="CASCADE"), primary_key=True),
        sa.UniqueConstraint("package", "version", "architecture", "sha256", name="deb_binary_package_natural_key"),
    )
    op.create_table(
        "deb_release",
        sa.Column("suite", sa.Text, nullable=False),
        sa.Column("release_digest", sa.String(64), nullable=False),
        sa.Column("selection", sa.Text, nullable=False),
        sa.Column("codename", sa.Text),
        sa.Column("origin", sa.Text),
        sa.Column("label", sa.Text),
        sa.Column("components", sa.Text, nullable=False),
        sa.Column("architectures", sa.Text, nullable=False),
        sa.Column("filtered", sa.Boolean, nullable=False),
        sa.Column("signing_key", sa.Text),
        sa.Column("id", sa.Integer, sa.ForeignKey("content.id", ondelete="CASCADE"), primary_key=True),
        sa.UniqueConstraint("suite", "release_digest", "selection", name="deb_release_natural_key"),
    )
    op.create_table(
        "deb_release_member",
        sa.Column("release_id", sa.Integer, sa.ForeignKey("deb_release.id", ondelete="CASCADE"), nullable=False),
        sa.Column("component", sa.Text, nullable=False),
        sa.Column("index_architecture", sa.Text, nullable=False),
        sa.Column("package_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("release_id", "component", "index_architecture", "package_key"),
    )


def downgrade() -> None:
    op.drop_table("deb_release_member")
    op.drop_table("deb_release")
    op.drop_table("deb_binary_package")
