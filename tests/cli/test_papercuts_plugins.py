"""Small things a plugin writer ran into: singular counts, export's help, verify naming where a bad file is used."""

from __future__ import annotations

import hashlib

from tests.cli import test_cli
from tests.cli.test_cli import Cli
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder

FILES = {"docs/a.txt": b"alpha\n", "docs/b.txt": b"bravo\n"}


def test_one_version_is_singular_when_a_repository_is_deleted(cli: Cli) -> None:
    with ServerThread(dict(FILES)) as server:
        assert cli.run("sync", server.manifest_url, "--repo", "r", "--quiet").returncode == 0
    assert cli.run("retain", "r", "--keep", "1").returncode == 0  # version 0 goes: one version left
    refused = cli.run("repos", "delete", "r")  # not a terminal and no --yes
    assert refused.returncode == 2
    assert refused.stderr.strip() == "pendingops: error: removing repository 'r' (1 version) needs --yes"
    gone = cli.run("repos", "delete", "r", "--yes")
    assert gone.stdout.startswith("removed repository 'r' (1 version); ")


def test_export_help_names_every_plugins_index_not_only_the_manifest(cli: Cli) -> None:
    done = cli.run("--help")
    (line,) = [line for line in done.stdout.splitlines() if line.strip().startswith("export")]
    joined = " ".join(done.stdout.split())
    assert "PULP_MANIFEST, universe, simple/, dists/" in joined and "static web server" in joined, line


def test_verify_names_the_repository_and_path_of_a_bad_file(cli: Cli) -> None:
    with ServerThread(dict(FILES)) as server:
        assert cli.run("sync", server.manifest_url, "--repo", "r", "--quiet").returncode == 0
        assert cli.run("sync", server.manifest_url, "--repo", "copy", "--quiet").returncode == 0
    digest = hashlib.sha256(FILES["docs/b.txt"]).hexdigest()
    (victim,) = [p for p in (cli.storage / "artifacts").rglob("*") if p.is_file() and p.name in digest]
    victim.write_bytes(b"corrupted")
    broken = cli.run("verify")
    assert broken.returncode == 1
    (bad,) = [line for line in broken.stdout.splitlines() if line.startswith("BAD ")]
    assert bad.startswith(f"BAD {digest} (")
    assert bad.endswith("; in 'copy' at docs/b.txt, 'r' at docs/b.txt"), bad
