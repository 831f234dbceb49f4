"""Opening a database for the installed plugins: their migration branches handed to the database layer.

The database layer checks a schema against the branches it is given and knows nothing of plugins;
this is where the registry's plugins become those branches. Loading the plugins also registers their
content tables in ``Base.metadata``, so a new database gets them, created at head and stamped.
"""

from __future__ import annotations

from dataclasses import replace

from pendingops.db import database
from pendingops.db.migrations.branches import (
    Branch,
    core_branch,
    migrations_folder,
    read_branch,
    tables_of_module,
)
from pendingops.plugins import available_plugins


def migration_branches() -> list[Branch]:
    """The core's branch, then one per installed plugin that declares ``migrations``, by plugin name."""
    branches = [core_branch()]
    for name, plugin in sorted(available_plugins().items()):
        branch = plugin_branch(name, plugin)
        if branch is not None:
            branches.append(branch)
    return branches


def plugin_branch(name: str, plugin: object) -> Branch | None:
    """The migration branch ``plugin`` ships (named ``name``), owning its content module's tables; None if none."""
    spec = getattr(plugin, "migrations", None)
    if spec is None:
        return None
    content_type = plugin.content_type  # type: ignore[attr-defined]
    table = content_type.__table__.name
    tables = tables_of_module(content_type.__module__) | {table}
    return replace(read_branch(name, migrations_folder(spec), table), tables=tables)


def open_database(url: str, *, create: bool = True) -> database.Database:
    """Open the database at ``url``; by default create what is new (a new database, a newly installed
    plugin's tables) at head, and refuse one that needs ``pendingops db upgrade``.

    A bare filesystem path is taken as an SQLite file. Raises ``DatabaseError`` with a one-line
    reason when the URL is malformed, the server cannot be reached, the file is not a database or
    its schema is out of date. With ``create=False`` nothing is checked until ``create_schema()``.
    """
    return database.open_database(url, branches=migration_branches, create=create)
