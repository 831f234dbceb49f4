"""Baseline: the core schema as released before migrations existed (commit 3c08791).

Frozen DDL, not the current models: a later revision changes the schema, never this file.

Revision ID: core_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0001"
down_revision = None
branch_labels = ("core",)
depends_on = None


def _digests() -> list[sa.Column]:
    return [
        sa.Column("md5", sa.String(32)),
        sa.Column("sha1", sa.String(40)),
        sa.Column("sha224", sa.String(56)),
        sa.Column("sha384", sa.String(96)),
        sa.Column("sha512", sa.String(128)),
    ]


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "artifact",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        *_digests(),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("created_at", when, nullable=False),
    )
    op.create_table(
        "content",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("key_digest", sa.String(64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.UniqueConstraint("content_type", "key_digest", name="content_natural_key"),
    )
    op.create_table(
        "remote",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
    )
    op.create_table(
        "repository",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", when, nullable=False),
    )
    op.create_table(
        "content_artifact",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id", ondelete="CASCADE"), nullable=False),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifact.id", ondelete="RESTRICT")),
        sa.Column("relative_path", sa.Text, nullable=False),
        sa.UniqueConstraint("content_id", "relative_path", name="content_artifact_path"),
    )
    op.create_index("ix_content_artifact_artifact_id", "content_artifact", ["artifact_id"])
    op.create_table(
        "repository_content",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repository.id", ondelete="CASCADE"), nullable=False),
        sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("version_added", sa.Integer, nullable=False),
        sa.Column("version_removed", sa.Integer),
    )
    op.create_index("repository_content_lookup", "repository_content", ["repository_id", "content_id"])
    op.create_index("repository_content_added", "repository_content", ["repository_id", "version_added"])
    op.create_index("repository_content_removed", "repository_content", ["repository_id", "version_removed"])
    op.create_index(
        "repository_content_current",
        "repository_content",
        ["repository_id", "content_id"],
        unique=True,
        sqlite_where=sa.text("version_removed IS NULL"),
        postgresql_where=sa.text("version_removed IS NULL"),
    )
    op.create_table(
        "repository_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repository.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("base_number", sa.Integer),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("content_count", sa.Integer, nullable=False),
        sa.Column("added_count", sa.Integer, nullable=False),
        sa.Column("removed_count", sa.Integer, nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.UniqueConstraint("repository_id", "number", name="repository_version_number"),
    )
    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repository.id", ondelete="CASCADE"), nullable=False),
        sa.Column("remote_id", sa.Integer, sa.ForeignKey("remote.id", ondelete="SET NULL")),
        sa.Column("mirror", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version_number", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("failed_units", sa.Integer, nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("finished_at", when),
    )
    op.create_table(
        "declared_content",
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("repository_version.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("content_id", sa.Integer, primary_key=True),
    )
    op.create_table(
        "progress_report",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sync_run_id", sa.Integer, sa.ForeignKey("sync_run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("done", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger),
        sa.Column("bytes", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_progress_report_sync_run_id", "progress_report", ["sync_run_id"])
    op.create_table(
        "remote_artifact",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "content_artifact_id",
            sa.Integer,
            sa.ForeignKey("content_artifact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("remote_id", sa.Integer, sa.ForeignKey("remote.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        *_digests(),
        sa.UniqueConstraint("content_artifact_id", "remote_id", name="remote_artifact_source"),
    )
    op.create_index("ix_remote_artifact_remote_id", "remote_artifact", ["remote_id"])


def downgrade() -> None:
    for table in (
        "remote_artifact",
        "progress_report",
        "declared_content",
        "sync_run",
        "repository_version",
        "repository_content",
        "content_artifact",
        "repository",
        "remote",
        "content",
        "artifact",
    ):
        op.drop_table(table)
