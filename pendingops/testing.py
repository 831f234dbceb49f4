"""Helpers for testing a plugin: its migrations against its models, and syncs cheap enough for hypothesis.

``assert_migrations_match_models(plugin)`` runs the core's and the plugin's revisions on an empty
in-memory database and fails naming every column (or table) of the plugin's models that no revision
creates. See docs/plugins.md, "Testing a plugin".
"""

from __future__ import annotations

from pendingops.db.database import open_database
from pendingops.db.migrations.branches import core_branch
from pendingops.db.migrations.drift import compare
from pendingops.db.migrations.runner import alembic_config, migration_connection
from pendingops.plugins.database import plugin_branch

__all__ = ["assert_migrations_match_models"]


def assert_migrations_match_models(plugin: object) -> None:
    """Fail (``AssertionError``) when ``plugin``'s revisions do not create every table and column of its models.

    A plugin without ``migrations`` passes: its tables are created from the models. The check runs
    the core's revisions and the plugin's to their heads on a fresh in-memory SQLite database, then
    compares the plugin's tables with its models (Alembic's ``compare_metadata``).
    """
    from alembic import command

    name = str(getattr(plugin, "name", type(plugin).__name__))
    branch = plugin_branch(name, plugin)
    if branch is None:
        return
    branches = [core_branch(), branch]
    db = open_database("sqlite://", branches=lambda: branches, create=False)
    try:
        with migration_connection(db) as conn, conn.begin():
            command.upgrade(alembic_config(conn, branches), "heads")
            drifts = [d for d in compare(conn, branches) if d.owner == name]
    finally:
        db.close()
    if drifts:
        listed = "; ".join(d.describe() for d in drifts)
        raise AssertionError(f"plugin {name}: its models have what its migrations never create: {listed}")
