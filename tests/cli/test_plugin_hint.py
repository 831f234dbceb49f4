"""A sync whose remote is another plugin's (a simple index, a Debian archive, a universe, a Helm index)
names the ``--plugin`` to try, in one line, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.test_cli import SCRIPT
from tests.server_thread import ServerThread

SIMPLE = b'<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1"><title>Simple index</title>'
HELM = b"apiVersion: v1\nentries:\n  mysql:\n  - name: mysql\n    version: 8.0.0\n    urls: [charts/mysql-8.0.0.tgz]\n"
ARCHIVE = b'<html><head><title>Index of /debian/</title></head><body><a href="dists/">dists/</a> <a href="pool/">pool/'
UNIVERSE = b'{"apt": {"7.4.0": {"location_type": "uri", "download_url": "http://h/apt.tgz", "dependencies": {}}}}'
RELEASE = b"Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\nComponents: main\n"
OTHER_PAGE = b"<html><body>Sign in to continue</body></html>"

CASES = {
    "simple/": (SIMPLE, "it looks like another plugin's index: try --plugin python"),
    "index.yaml": (
        HELM,
        "it looks like a Helm chart repository's index.yaml, which no installed plugin reads "
        "('pendingops plugins' lists them)",
    ),
    "debian/": (ARCHIVE, "it looks like another plugin's index: try --plugin deb"),
    "dists/bookworm/Release": (RELEASE, "it looks like another plugin's index: try --plugin deb"),
    "universe": (UNIVERSE, "it looks like another plugin's index: try --plugin cookbook"),
    "login": (
        OTHER_PAGE,
        "if it is another kind of repository, name its plugin with --plugin (installed: cookbook, deb, python)",
    ),
}


@pytest.mark.parametrize("path", list(CASES))
def test_a_remote_of_another_plugin_names_the_plugin_to_try(path: str, tmp_path: Path) -> None:
    body, expected = CASES[path]
    with ServerThread({path: body}) as server:
        line = [SCRIPT, "--db", f"sqlite:///{tmp_path / 'p.db'}", "--storage", str(tmp_path / "s")]
        done = subprocess.run(
            [*line, "sync", server.base_url + path, "--repo", "r", "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done
    [message] = done.stderr.strip().splitlines()
    assert message.startswith(f"pendingops: error: bad manifest {server.base_url}{path}: line 1: ")
    assert message.endswith(f"; {expected}")


def test_a_manifest_with_a_bad_later_line_gets_no_plugin_hint(tmp_path: Path) -> None:
    manifest = b"a.txt," + b"0" * 64 + b",1\nnot a line\n"
    with ServerThread({"listing.txt": manifest}) as server:
        line = [SCRIPT, "--db", f"sqlite:///{tmp_path / 'p.db'}", "--storage", str(tmp_path / "s")]
        done = subprocess.run(
            [*line, "sync", server.base_url + "listing.txt", "--repo", "r"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done
    [message] = done.stderr.strip().splitlines()
    assert message.startswith("pendingops: error: bad manifest ") and "line 2: " in message
    assert "--plugin" not in message
