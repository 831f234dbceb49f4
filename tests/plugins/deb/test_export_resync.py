"""An export of a deb repository, served by a static web server, is synced by another pendingops (its own
database and storage), which downloads every package from it."""

from __future__ import annotations

from pathlib import Path

from tests.cli import test_cli
from tests.cli.test_cli import Cli
from tests.plugins.deb.archive import Signer, stable
from tests.plugins.python_index import StaticFolder
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder


def _packages(cli: Cli, repo: str) -> list[tuple[str, str, str]]:
    units = cli.json("content", repo)
    assert isinstance(units, list)
    keys = [u["natural_key"] for u in units if "package" in u["natural_key"]]
    return sorted((k["package"], k["version"], k["sha256"]) for k in keys)


def test_a_deb_export_served_statically_is_synced_into_another_repository(
    cli: Cli, signer: Signer, tmp_path: Path
) -> None:
    options = ("--plugin", "deb", "--quiet", "--option", "suites=stable")
    with ServerThread(stable(signer).files()) as origin:
        done = cli.run("sync", origin.base_url, "--repo", "deb", *options, "--option", "packages=hello,tool")
        assert done.returncode == 0, done.stderr
    exported = cli.run("export", "deb", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr
    assert "dists/ (" in exported.stdout  # our own indexes, listing what the version holds
    other = Cli(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other-storage")
    with ServerThread(server=StaticFolder(tmp_path / "export")) as static:
        copied = other.run("sync", static.base_url, "--repo", "copy", *options)
        assert copied.returncode == 0, copied.stderr
        assert static.requests["dists/stable/Release"] == 1
        assert len([p for p in static.requests if p.startswith("pool/") and p.endswith(".deb")]) == 2
    original = _packages(cli, "deb")
    assert [name for name, _, _ in original] == ["hello", "tool"]
    assert _packages(other, "copy") == original
