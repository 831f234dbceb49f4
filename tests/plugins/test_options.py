"""Plugin options are checked against the plugin's, and remembered for the repository's later syncs."""

from __future__ import annotations

import pytest

from pendingops.db.versions import ensure_repository
from pendingops.plugins.options import UnknownOption, check_options, options_for_sync, remember_options
from pendingops.plugins.python import PythonPlugin
from tests.cli import test_cli
from tests.cli.test_cli import Cli
from tests.plugins.python_index import index_files, sample_projects
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder


def _projects(cli: Cli, repo: str) -> set[str]:
    units = cli.json("content", repo)
    assert isinstance(units, list)
    return {u["fields"]["name"] for u in units}


def test_options_given_once_are_used_by_later_syncs_until_others_are_given(cli: Cli) -> None:
    with ServerThread(index_files(sample_projects())) as server:
        url = server.base_url + "simple/"
        sync = ("sync", url, "--repo", "py", "--plugin", "python", "--mirror", "--quiet")
        first = cli.run(*sync, "--option", "projects=beta")
        assert first.returncode == 0, first.stderr
        assert _projects(cli, "py") == {"beta"}
        again = cli.run(*sync)  # without --option: the mirror would take the whole index if they were forgotten
        assert again.returncode == 0, again.stderr
        assert "plugin options remembered for 'py': projects=beta" in again.stdout
        assert _projects(cli, "py") == {"beta"}
        other = cli.run(*sync, "--option", "projects=gamma")  # given ones replace the remembered ones
        assert other.returncode == 0, other.stderr
        assert _projects(cli, "py") == {"gamma"}
        assert "projects=gamma" in cli.run(*sync).stdout
        assert _projects(cli, "py") == {"gamma"}


def test_remembered_options_are_used_when_none_are_given(db) -> None:
    db.transact(ensure_repository, "py")
    plugin = PythonPlugin()
    assert options_for_sync(db, "py", plugin, None) == {}  # nothing remembered yet
    remember_options(db, "py", {"projects": "beta"})
    assert options_for_sync(db, "py", plugin, None) == {"projects": "beta"}
    assert options_for_sync(db, "py", plugin, {"latest": "2"}) == {"latest": "2"}  # given ones win
    assert options_for_sync(db, "never-synced", plugin, None) == {}


def test_options_a_plugin_does_not_know_are_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownOption, match=r"has no option 'platforms' \(known: latest, prereleases, projects\)"):
        check_options({"platforms": "linux"}, PythonPlugin())
    with pytest.raises(ValueError, match="latest must be a whole number"):
        check_options({"latest": "none"}, PythonPlugin())
