"""A plugin's release 2 adds a column: stored units get it filled, and a forgotten revision is drift.

Each release is a real installed distribution (a ``.dist-info`` with its entry point) in its own
folder; every step runs the installed ``pendingops`` command with that folder on its path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from pendingops import open_database
from tests.conftest import POSTGRES_URL, require_postgres
from tests.db.test_migrations import SCRIPT

PLUGIN = """
import os
from contextlib import asynccontextmanager

from sqlalchemy import Text
from sqlalchemy.orm import Mapped, mapped_column

from pendingops import Content, PendingContent
from pendingops.plugins import Source


class Gizmo(Content):
    __tablename__ = "gizmo"
    natural_key = ("name",)
    name: Mapped[str] = mapped_column(Text)
    #RELEASE2 description: Mapped[str | None] = mapped_column(Text)


class GizmoPlugin:
    name = "gizmo"
    description = "gizmos named in the remote url, comma-separated"
    content_type = Gizmo
    migrations = "gizmoplugin.migrations"

    @asynccontextmanager
    async def open_source(self, remote, fetcher, workdir):
        release2 = "description" in Gizmo.__table__.c

        async def units():
            for name in remote.url.rsplit("/", 1)[-1].split(","):
                fields = {"name": name}
                if release2:
                    fields["description"] = os.environ.get("GIZMO_ABOUT", "about") + " " + name
                yield PendingContent(Gizmo, fields, [])

        yield Source(units())

    def pipeline(self):
        return None
"""

FIRST = '''"""Release 1: the gizmo table."""
import sqlalchemy as sa
from alembic import op

revision = "gizmo_0001"
down_revision = None
branch_labels = ("gizmo",)
depends_on = "core_0001"


def upgrade():
    op.create_table(
        "gizmo",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("id", sa.Integer, sa.ForeignKey("content.id", ondelete="CASCADE"), primary_key=True),
        sa.UniqueConstraint("name", name="gizmo_natural_key"),
    )


def downgrade():
    op.drop_table("gizmo")
'''

SECOND = '''"""Release 2: gizmos have a description."""
import sqlalchemy as sa
from alembic import op

revision = "gizmo_0002"
down_revision = "gizmo_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("gizmo") as batch:
        batch.add_column(sa.Column("description", sa.Text))


def downgrade():
    with op.batch_alter_table("gizmo") as batch:
        batch.drop_column("description")
'''


def install(root: Path, *, model_column: bool, revision: bool) -> Path:
    """Install a release of ``gizmoplugin`` under ``root``: with or without the column in its model and its revision."""
    package = root / "gizmoplugin"
    (package / "migrations").mkdir(parents=True)
    source = PLUGIN.replace("#RELEASE2 ", "") if model_column else PLUGIN
    (package / "__init__.py").write_text(source)
    (package / "migrations" / "__init__.py").write_text("")
    (package / "migrations" / "gizmo_0001_table.py").write_text(FIRST)
    if revision:
        (package / "migrations" / "gizmo_0002_description.py").write_text(SECOND)
    info = root / "gizmoplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gizmoplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pendingops.plugins]\ngizmo = gizmoplugin:GizmoPlugin\n")
    return root


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("releases")
    return {
        "1": install(root / "r1", model_column=False, revision=False),
        "2": install(root / "r2", model_column=True, revision=True),
        "2-forgotten": install(root / "r2f", model_column=True, revision=False),
    }


class Cli:
    """The installed command against one database and storage, with one release of the plugin installed."""

    def __init__(self, url: str, storage: Path, releases: dict[str, Path]) -> None:
        self.url, self.storage, self.releases = url, storage, releases

    def __call__(self, release: str, *args: str, about: str = "about") -> subprocess.CompletedProcess[str]:
        path = os.pathsep.join([str(self.releases[release]), *sys.path])
        env = {**os.environ, "PYTHONPATH": path, "GIZMO_ABOUT": about}
        line = [SCRIPT, "--db", self.url, "--storage", str(self.storage), *args]
        return subprocess.run(line, capture_output=True, text=True, timeout=180, env=env)


@pytest.fixture
def cli(db_kind: str, tmp_path: Path, releases: dict[str, Path]) -> Cli:
    if db_kind == "sqlite":
        return Cli(f"sqlite:///{tmp_path / 'p.db'}", tmp_path / "storage", releases)
    require_postgres()
    db = open_database(POSTGRES_URL, create=False)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.close()
    return Cli(POSTGRES_URL, tmp_path / "storage", releases)


def descriptions(url: str) -> dict[str, str | None]:
    db = open_database(url, create=False)
    try:
        with db.engine.connect() as conn:
            return dict(((n, d) for n, d in conn.execute(text("SELECT name, description FROM gizmo"))))
    finally:
        db.close()


def sync(cli: Cli, release: str, names: str, about: str = "about") -> subprocess.CompletedProcess[str]:
    return cli(release, "sync", f"http://127.0.0.1:9/{names}", "--repo", "g", "--plugin", "gizmo", about=about)


def test_release_2_fills_its_new_column_for_stored_content_and_never_overwrites(cli: Cli) -> None:
    first = sync(cli, "1", "cog,gear,lever")
    assert first.returncode == 0, first.stderr
    assert "filled" not in first.stdout
    assert cli("2", "db", "upgrade").returncode == 0
    assert descriptions(cli.url) == {"cog": None, "gear": None, "lever": None}

    # the remote now declares descriptions: the two stored units it still lists are filled, a new one saved
    second = sync(cli, "2", "cog,gear,spring")
    assert second.returncode == 0, second.stderr
    assert "  filled 2: stored unit(s) given a field added since saved" in second.stdout.splitlines()
    assert descriptions(cli.url) == {"cog": "about cog", "gear": "about gear", "lever": None, "spring": "about spring"}

    # a stored value is never overwritten, whatever the remote says now
    third = sync(cli, "2", "cog,gear,lever,spring", about="changed")
    assert third.returncode == 0, third.stderr
    assert "  filled 1: stored unit(s) given a field added since saved" in third.stdout.splitlines()
    assert descriptions(cli.url) == {
        "cog": "about cog",
        "gear": "about gear",
        "lever": "changed lever",
        "spring": "about spring",
    }
    again = sync(cli, "2", "cog,gear,lever,spring", about="other")
    assert "filled" not in again.stdout
    assert descriptions(cli.url)["lever"] == "changed lever"


def test_a_model_column_without_a_revision_is_drift_refused_in_one_line(cli: Cli) -> None:
    assert sync(cli, "1", "cog").returncode == 0
    expected = (
        "drift: gizmo.description missing: plugin gizmo's model has it but no migration created it; "
        "add a revision that does (docs/plugins.md, 'Migrations'), then run 'pendingops db upgrade'"
    )
    status = cli("2-forgotten", "db", "status")
    assert status.returncode == 2, status
    lines = status.stdout.strip().splitlines()
    assert "drift: gizmo.description missing (branch gizmo: no migration creates it)" in lines
    assert lines[-1] == expected
    report = json.loads(cli("2-forgotten", "db", "status", "--json").stdout)
    assert report["drift"] == [{"table": "gizmo", "column": "description", "owner": "gizmo"}]
    assert report["up_to_date"] is False

    for args in (("sync", "http://127.0.0.1:9/cog", "--repo", "g", "--plugin", "gizmo"), ("repos",)):
        refused = cli("2-forgotten", *args)
        assert refused.returncode == 2, refused
        assert refused.stderr.strip().splitlines() == [f"pendingops: error: {expected}"]

    # release 2 as shipped (with its revision) is not drift once upgraded
    assert cli("2", "db", "upgrade").returncode == 0
    fine = cli("2", "db", "status")
    assert fine.returncode == 0, fine
    assert fine.stdout.strip().splitlines()[-1] == "schema is up to date"


@pytest.mark.parametrize("target", ["nosuch", "gizmo_9", "nosuch@-1", "gizmo@-5"])
def test_downgrade_to_an_unknown_revision_or_branch_is_one_line_exit_2(cli: Cli, target: str) -> None:
    assert sync(cli, "2", "cog").returncode == 0
    refused = cli("2", "db", "downgrade", target)
    assert refused.returncode == 2, refused
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"pendingops: error: no revision {target!r} to go to (")
    assert line.endswith("'pendingops db status' lists the branches and revisions")


def test_the_testing_helper_finds_the_forgotten_revision(releases: dict[str, Path]) -> None:
    check = (
        "from pendingops.plugins import get_plugin\n"
        "from pendingops.testing import assert_migrations_match_models\n"
        "assert_migrations_match_models(get_plugin('gizmo'))\n"
        "print('ok')\n"
    )
    outcomes = {}
    for release in ("1", "2", "2-forgotten"):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(releases[release]), *sys.path])}
        run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120, env=env)
        outcomes[release] = (run.returncode, run.stdout.strip(), run.stderr.strip().splitlines()[-1:])
    assert outcomes["1"][:2] == (0, "ok")
    assert outcomes["2"][:2] == (0, "ok")
    assert outcomes["2-forgotten"][0] == 1
    assert outcomes["2-forgotten"][2] == [
        "AssertionError: plugin gizmo: its models have what its migrations never create: "
        "drift: gizmo.description missing"
    ]
