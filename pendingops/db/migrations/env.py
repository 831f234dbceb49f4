"""Alembic's environment for pendingops: runs on the connection ``runner`` hands over, in its transaction."""

from __future__ import annotations

from alembic import context

from pendingops.db.migrations.branches import VERSION_TABLE
from pendingops.db.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("pendingops migrations run through 'pendingops db upgrade' (or pendingops.db.migrations.runner)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them: batch mode does it
)
with context.begin_transaction():  # joins the runner's transaction, which commits or rolls back all of it
    context.run_migrations()
