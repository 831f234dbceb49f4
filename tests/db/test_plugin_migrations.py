"""A third-party plugin adds a column in its next release, through its own migration branch.

The plugin is a real installed distribution (a ``.dist-info`` with its entry point on the path),
found the way every plugin is: through the ``pendingops.plugins`` entry-point group.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from pendingops import open_database
from pendingops.db.migrations.check import SchemaOutOfDate
from tests.db.test_migrations import SCRIPT, empty_database, migrate

PLUGIN = '''
from contextlib import asynccontextmanager

from sqlalchemy import Text
from sqlalchemy.orm import Mapped, mapped_column

from pendingops import Content, PendingContent
from pendingops.plugins import Source


class Widget(Content):
    __tablename__ = "widget"
    natural_key = ("name",)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)  # new in release 2, added by widget_0002


class WidgetPlugin:
    name = "widget"
    description = "widgets named in the remote url, comma-separated"
    content_type = Widget
    migrations = "widgetplugin.migrations"

    @asynccontextmanager
    async def open_source(self, remote, fetcher, workdir):
        async def units():
            for name in remote.url.rsplit("/", 1)[-1].split(","):
                yield PendingContent(Widget, {"name": name, "description": f"about {name}"}, [])

        yield Source(units())

    def pipeline(self):
        return None
'''

FIRST = '''"""Release 1: the widget table.

Revision ID: widget_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "widget_0001"
down_revision = None
branch_labels = ("widget",)
depends_on = "core_0001"


def upgrade():
    op.create_table(
        "widget",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("id", sa.Integer, sa.ForeignKey("content.id", ondelete="CASCADE"), primary_key=True),
        sa.UniqueConstraint("name", name="widget_natural_key"),
    )


def downgrade():
    op.drop_table("widget")
'''

SECOND = '''"""Release 2: widgets have a description.

Revision ID: widget_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "widget_0002"
down_revision = "widget_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("widget") as batch:
        batch.add_column(sa.Column("description", sa.Text))


def downgrade():
    with op.batch_alter_table("widget") as batch:
        batch.drop_column("description")
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed ``widgetplugin`` distribution."""
    root = tmp_path_factory.mktemp("site")
    package = root / "widgetplugin"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN)
    (package / "migrations" / "__init__.py").write_text("")
    (package / "migrations" / "widget_0001_table.py").write_text(FIRST)
    (package / "migrations" / "widget_0002_description.py").write_text(SECOND)
    info = root / "widgetplugin-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: widgetplugin\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text("[pendingops.plugins]\nwidget = widgetplugin:WidgetPlugin\n")
    return root


def test_a_plugin_adds_a_column_and_existing_rows_survive(
    db_kind: str, tmp_path: Path, plugin_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(plugin_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), *sys.path])}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        line = [SCRIPT, "--db", url, "--storage", str(tmp_path / "storage"), *args]
        return subprocess.run(line, capture_output=True, text=True, timeout=120, env=env)

    db, url = empty_database(db_kind, tmp_path)
    for revision in ("core@head", "file@head", "cookbook@head", "python@head", "deb@head", "widget_0001"):  # release 1
        migrate(db, revision)
    with db.engine.begin() as conn:
        for n, name in enumerate(("gear", "lever"), start=1):
            content_id = conn.execute(
                text(
                    "INSERT INTO content (content_type, key_digest, created_at) VALUES ('widget', :k, :t) RETURNING id"
                ),
                {"k": f"{n:064d}", "t": "2024-01-01 00:00:00+00:00"},
            ).scalar_one()
            conn.execute(text("INSERT INTO widget (id, name) VALUES (:i, :n)"), {"i": content_id, "n": name})
    with pytest.raises(SchemaOutOfDate, match=r"widget widget_0001 -> widget_0002\): run 'pendingops db upgrade'"):
        db.create_schema()
    db.close()

    refused = cli("sync", "http://127.0.0.1:9/gear,cog", "--repo", "w", "--plugin", "widget", "--quiet")
    assert refused.returncode == 2, refused
    assert refused.stderr.strip().splitlines() == [
        "pendingops: error: the database schema is out of date (widget widget_0001 -> widget_0002): "
        "run 'pendingops db upgrade'"
    ]
    before = json.loads(cli("db", "status", "--json").stdout)
    widget = {b["name"]: (b["current"], b["head"]) for b in before["branches"]}["widget"]
    assert widget == ("widget_0001", "widget_0002")

    upgraded = cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip().splitlines() == ["widget: widget_0001 -> widget_0002"]

    db = open_database(url)
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, description FROM widget ORDER BY name")).all()
    assert [tuple(r) for r in rows] == [("gear", None), ("lever", None)]
    db.close()

    synced = cli("sync", "http://127.0.0.1:9/cog,spring", "--repo", "w", "--plugin", "widget", "--quiet")
    assert synced.returncode == 0, synced.stderr
    units = json.loads(cli("content", "w", "--json").stdout)
    assert sorted((u["natural_key"]["name"], u["fields"].get("description")) for u in units) == [
        ("cog", "about cog"),
        ("spring", "about spring"),
    ]

    down = cli("db", "downgrade", "widget@-1")
    assert down.returncode == 0, down.stderr
    db = open_database(url, create=False)
    with db.engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM widget ORDER BY name")).scalars().all()
        columns = {c["name"] for c in inspect(conn).get_columns("widget")}
    assert names == ["cog", "gear", "lever", "spring"]
    assert "description" not in columns
    db.close()
