"""Schema migrations (Alembic) for the core and for every plugin that ships its own.

The core's revisions live in ``versions/`` (branch ``core``); a plugin names a folder of revisions
in its ``migrations`` attribute (branch labelled after it). All branches share one version table,
``pendingops_schema_version``, holding each branch's current revision.

Opening a database (``ensure_schema``) reads that table and compares it with the heads of the
branches the opener handed in (``pendingops.open_database``: the core's and every installed
plugin's), found by reading the files (no Alembic import on that path). Upgrades, downgrades and
status run through Alembic in ``pendingops.db.migrations.runner``.
"""

from pendingops.db.migrations.branches import (
    CORE,
    VERSION_TABLE,
    Branch,
    Revision,
    core_branch,
    read_branch,
)
from pendingops.db.migrations.check import SchemaOutOfDate, SchemaState, ensure_schema, schema_state

__all__ = [
    "CORE",
    "VERSION_TABLE",
    "Branch",
    "Revision",
    "SchemaOutOfDate",
    "SchemaState",
    "core_branch",
    "ensure_schema",
    "read_branch",
    "schema_state",
]
