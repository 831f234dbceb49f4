"""Command-line details: closed pipes, sorted listings, help texts, timestamps, manifests, bad URLs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pendingops.cli._app import build_parser
from pendingops.maintenance.manifest import write_manifest
from tests.cli.test_cli import SCRIPT, Cli, assert_clean_error
from tests.conftest import POSTGRES_URL, fresh_database
from tests.server_thread import ServerThread


@pytest.fixture
def cli(db_kind: str, tmp_path: Path) -> Cli:
    db = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    db.close()
    return Cli(url, tmp_path / "storage")


def _tree(root: Path, count: int) -> Path:
    for i in range(count):
        path = root / f"folder-{i % 7}" / f"a-file-with-a-rather-long-name-{(i * 37) % count:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"content {i}\n".encode())
    write_manifest(root)
    return root


def test_content_into_a_closed_pipe_is_a_normal_end(cli: Cli, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree", 900)  # far more output than a pipe buffers
    done = cli.run("sync", (tree / "PULP_MANIFEST").as_uri(), "--repo", "r", "--quiet")
    assert done.returncode == 0, done.stderr
    for extra in ((), ("--json",)):
        command = [SCRIPT, "--db", cli.db_url, "--storage", str(cli.storage), "content", "r", *extra]
        reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert reader.stdout is not None and reader.stderr is not None
        reader.stdout.readline()
        reader.stdout.close()  # as `| head -1` does
        code = reader.wait(120)
        errors = reader.stderr.read().decode()
        reader.stderr.close()
        assert (code, errors) == (0, ""), errors


def test_content_is_sorted_by_natural_key_and_on_demand_files_show_what_was_declared(cli: Cli, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree", 40)
    manifest = (tree / "PULP_MANIFEST").read_text().splitlines()
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for line in manifest:  # the same files, listed in another order
        path = line.rsplit(",", 2)[0]
        (shuffled / path).parent.mkdir(parents=True, exist_ok=True)
        (shuffled / path).write_bytes((tree / path).read_bytes())
    (shuffled / "PULP_MANIFEST").write_text("\n".join(reversed(manifest)) + "\n")
    url = (shuffled / "PULP_MANIFEST").as_uri()
    assert cli.run("sync", url, "--repo", "lazy", "--policy", "on_demand", "--quiet").returncode == 0

    units = cli.json("content", "lazy")
    assert isinstance(units, list)
    keys = [(u["natural_key"]["relative_path"], u["natural_key"]["sha256"]) for u in units]
    assert keys == sorted(keys) and len(keys) == 40
    for unit in units:
        data = (tree / unit["natural_key"]["relative_path"]).read_bytes()
        assert unit["artifacts"] == [
            {
                "relative_path": unit["natural_key"]["relative_path"],
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "stored": False,
            }
        ]
    text = cli.run("content", "lazy").stdout.splitlines()
    assert [line.split("relative_path=")[1].split(",")[0] for line in text] == [k[0] for k in keys]
    assert all(line.endswith("(not downloaded)") for line in text)


def test_every_positional_argument_has_help() -> None:
    missing = []
    pending = [("pendingops", build_parser())]
    while pending:
        name, parser = pending.pop()
        for action in parser._actions:
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):  # sub-commands
                pending.extend((f"{name} {sub}", subparser) for sub, subparser in choices.items())
            elif not action.option_strings and not action.help:
                missing.append(f"{name} {action.dest}")
    assert missing == []


def test_versions_show_when_and_from_where(cli: Cli) -> None:
    with ServerThread({"a": b"1"}) as server:
        assert cli.run("sync", server.manifest_url, "--repo", "r", "--quiet", "--window", "1").returncode == 0
        table = cli.run("versions", "r")
    assert table.returncode == 0
    header, zero, one = table.stdout.splitlines()
    assert "created (UTC)" in header and "sync runs" in header
    assert zero.split()[:4] == ["0", "0", "0", "0"]
    assert one.split()[:4] == ["1", "1", "1", "0"] and f"from {server.manifest_url}" in one and " -> " in one
    versions = cli.json("versions", "r")
    assert isinstance(versions, list)
    [run] = versions[1]["runs"]
    assert run["remote"] == server.manifest_url and run["mirror"] is False
    assert versions[1]["created"].endswith("Z") and run["started"] <= run["finished"]


def test_manifest_command(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pub" / "x").mkdir(parents=True)
    (tmp_path / "pub" / "x" / "one.txt").write_bytes(b"one")
    done = cli.run("manifest", str(tmp_path / "pub"))
    assert done.returncode == 0, done.stderr
    assert "1 files" in done.stdout
    line = f"x/one.txt,{hashlib.sha256(b'one').hexdigest()},3"
    assert (tmp_path / "pub" / "PULP_MANIFEST").read_text() == line + "\n"
    assert_clean_error(cli.run("manifest", str(tmp_path / "nowhere")), 2)


def test_a_bad_url_is_bad_input(cli: Cli) -> None:
    for url in ("http://127.0.0.1:99999/PULP_MANIFEST", "http:///PULP_MANIFEST"):
        done = cli.run("sync", url, "--repo", "r")
        assert_clean_error(done, 2)
        assert len(done.stderr.strip().splitlines()) == 1 and "invalid URL" in done.stderr


def test_a_plugin_that_cannot_be_imported_is_listed_with_the_reason(cli: Cli, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "brokenplugin").mkdir(parents=True)
    (site / "brokenplugin" / "__init__.py").write_text(
        "import asyncio\nloop = asyncio.get_running_loop()  # at import: there is no loop yet\n"
    )
    info = site / "brokenplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pendingops.plugins]\nbroken = brokenplugin:Plugin\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    command = [SCRIPT, "--db", cli.db_url, "--storage", str(cli.storage), "plugins"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("broken ")]
    assert "cannot be loaded: brokenplugin:Plugin: RuntimeError: no running event loop" in line
    assert any(line.startswith("file ") for line in done.stdout.splitlines())
