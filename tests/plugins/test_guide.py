"""The plugin guide's example, built from docs/plugins.md: installed, tested as the guide says, synced by the CLI."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import SCRIPT
from tests.conftest import POSTGRES_URL, fresh_database
from tests.server_thread import ServerThread

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
_FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```python\n(.*?)\n```", re.DOTALL)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder holding the guide's files and an installed distribution registering its plugin."""
    root = tmp_path / "site"
    root.mkdir()
    blocks = _FILE_BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    assert sorted(name for name, _ in blocks) == [
        "debpackages.py",
        "test_debpackages.py",
        "test_debpackages_properties.py",
    ]
    for name, code in blocks:
        (root / name).write_text(code + "\n", encoding="utf-8")
    info = root / "debpackages-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: debpackages\nVersion: 1.0\n")
    entry = re.search(r'\[project\.entry-points\."pendingops\.plugins"\]\n(.+)\n', GUIDE.read_text(encoding="utf-8"))
    assert entry is not None and entry[1].startswith("debpackages = ")
    name, _, value = entry[1].partition(" = ")
    (info / "entry_points.txt").write_text(f"[pendingops.plugins]\n{name} = {value.strip(chr(34))}\n")
    return root


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}


def test_the_guides_own_tests_pass(site: Path) -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_debpackages.py"]
    done = subprocess.run(command, cwd=site, env=_env(site), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_guides_property_test_passes_with_a_database_per_example(site: Path) -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_debpackages_properties.py"]
    done = subprocess.run(command, cwd=site, env=_env(site), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def _packages(debs: dict[str, bytes]) -> bytes:
    paragraphs = []
    for filename, data in sorted(debs.items()):
        name, version, arch = Path(filename).stem.split("_")
        paragraphs.append(
            f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nFilename: {filename}\n"
            f"Size: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    return "\n".join(paragraphs).encode()


def test_the_installed_plugin_is_listed_and_syncs_a_base_url(site: Path, db_kind: str, tmp_path: Path) -> None:
    db = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    db.close()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [SCRIPT, "--db", url, "--storage", str(tmp_path / "storage"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=_env(site))

    listed = run("plugins")
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[0] == "debpackages" and "Packages index" in line for line in listed.stdout.splitlines())

    debs = {"pool/hello_1.0_amd64.deb": b"!<arch>\nhello", "pool/tool_2.0_all.deb": b"!<arch>\ntool"}
    files = {"Packages": _packages(debs), **debs, "changelogs/hello_1.0": b"hello (1.0)\n", "changelogs/tool_2.0": b"t"}
    with ServerThread(files) as server:
        base = server.base_url.rstrip("/")  # http://127.0.0.1:PORT, as a user types it
        done = run("sync", base, "--plugin", "debpackages", "--repo", "debian", "--quiet")
        assert done.returncode == 0, done.stderr
        assert "new version 1: 2 units" in done.stdout
    shown = run("content", "debian").stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in shown] == ["deb_package", "deb_package"]
    assert "package=hello" in shown[0] and "package=tool" in shown[1]
