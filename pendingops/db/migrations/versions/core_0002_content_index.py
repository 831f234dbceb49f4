"""Index repository_content.content_id: orphan cleanup and ON DELETE RESTRICT's check stay linear.

Revision ID: core_0002
Revises: core_0001
"""

from __future__ import annotations

from alembic import op

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("repository_content_content", "repository_content", ["content_id"])


def downgrade() -> None:
    op.drop_index("repository_content_content", table_name="repository_content")
