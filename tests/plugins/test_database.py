"""pendingops.open_database hands the database layer the core's and every installed plugin's migration branches."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from pendingops import open_database
from pendingops.db.migrations import VERSION_TABLE
from pendingops.plugins import available_plugins
from pendingops.plugins.database import migration_branches


def test_the_branches_are_the_cores_then_each_plugin_with_migrations_by_name() -> None:
    branches = migration_branches()
    assert branches[0].name == "core" and branches[0].marker_table == "content"
    with_migrations = {n: p for n, p in available_plugins().items() if getattr(p, "migrations", None) is not None}
    assert [b.name for b in branches[1:]] == sorted(with_migrations)
    assert {"file", "cookbook", "python"} <= set(with_migrations)
    for branch in branches[1:]:
        assert branch.marker_table == with_migrations[branch.name].content_type.__table__.name


def test_a_new_database_gets_every_installed_plugins_tables_stamped_at_head(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert [(b.name, b.head) for b in db.migration_branches()] == [(b.name, b.head) for b in migration_branches()]
        tables = set(inspect(db.engine).get_table_names())
        assert {"file_content", "cookbook_content", "python_distribution"} <= tables
        with db.engine.connect() as conn:
            stored = set(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
        assert stored == {b.head for b in migration_branches()}
    finally:
        db.close()
