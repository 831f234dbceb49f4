"""The yank mark joins a distribution's natural key: (filename, sha256, yanked, yanked_reason).

Units are immutable, so a file the index yanks after its first sync must become a new unit.
``yanked_reason`` becomes NOT NULL ("" when there is none) so the key is never NULL-ambiguous, and
every python unit's ``content.key_digest`` is computed again from its new key, so that a resync
finds the units already stored instead of adding copies of them. Reasons are cut to 256 characters
(as the plugin now reads them): they are part of a unique index, whose entries PostgreSQL caps.

Revision ID: python_0002
Revises: python_0001
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from pendingops.db.database import DatabaseError

revision = "python_0002"
down_revision = "python_0001"
branch_labels = None
depends_on = None

_TYPE = "python"
_BATCH = 1000
_MAX_REASON = 256
_dist = sa.table(
    "python_distribution",
    sa.column("id", sa.Integer),
    sa.column("filename", sa.Text),
    sa.column("sha256", sa.String),
    sa.column("yanked", sa.Boolean),
    sa.column("yanked_reason", sa.Text),
)
_content = sa.table("content", sa.column("id", sa.Integer), sa.column("key_digest", sa.String))


def upgrade() -> None:
    op.execute(_dist.update().where(_dist.c.yanked_reason.is_(None)).values(yanked_reason=""))
    too_long = sa.func.length(_dist.c.yanked_reason) > _MAX_REASON
    cut = sa.func.substr(_dist.c.yanked_reason, 1, _MAX_REASON)
    op.execute(_dist.update().where(too_long).values(yanked_reason=cut))
    with op.batch_alter_table("python_distribution") as batch:
        batch.alter_column("yanked_reason", existing_type=sa.Text, nullable=False)
        batch.drop_constraint("python_distribution_natural_key", type_="unique")
        batch.create_unique_constraint(
            "python_distribution_natural_key", ["filename", "sha256", "yanked", "yanked_reason"]
        )
    _rekey(lambda row: (row.filename, row.sha256, bool(row.yanked), row.yanked_reason))


def downgrade() -> None:
    conn = op.get_bind()
    twice = sa.select(_dist.c.filename).group_by(_dist.c.filename, _dist.c.sha256).having(sa.func.count() > 1).limit(1)
    repeated = conn.execute(twice).scalar()
    if repeated is not None:
        raise DatabaseError(
            f"cannot downgrade python_0002: {repeated!r} is stored as two units (yanked and not, or with two"
            " reasons), which the old key cannot tell apart; remove all but one of them first"
        )
    _rekey(lambda row: (row.filename, row.sha256))
    with op.batch_alter_table("python_distribution") as batch:
        batch.drop_constraint("python_distribution_natural_key", type_="unique")
        batch.create_unique_constraint("python_distribution_natural_key", ["filename", "sha256"])
        batch.alter_column("yanked_reason", existing_type=sa.Text, nullable=True)
    op.execute(_dist.update().where(_dist.c.yanked_reason == "").values(yanked_reason=None))


def _rekey(key: Any) -> None:
    """Set every python unit's key digest from ``key(row)``, a batch of rows at a time."""
    conn = op.get_bind()
    query = sa.select(_dist).order_by(_dist.c.id).limit(_BATCH)
    update = _content.update().where(_content.c.id == sa.bindparam("unit")).values(key_digest=sa.bindparam("digest"))
    last = 0
    while rows := conn.execute(query.where(_dist.c.id > last)).all():
        conn.execute(update, [{"unit": row.id, "digest": _digest(key(row))} for row in rows])
        last = rows[-1].id


def _digest(key: tuple[Any, ...]) -> str:
    # pendingops.pending.natural_key_digest as of this revision: a later change to it must not change this
    encoded = json.dumps([_TYPE, *key], separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()
