"""``pendingops diff|rollback|retain``, ``versions delete``, ``repos delete`` and ``sync --retain`` from the CLI."""

from __future__ import annotations

import hashlib
import os
import pty
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import SCRIPT, Cli, assert_clean_error
from tests.conftest import POSTGRES_URL, fresh_database

V1 = {"a.txt": b"a1", "b.txt": b"b1", "c.txt": b"c1"}
V2 = {"a.txt": b"a1", "b.txt": b"b2", "d.txt": b"d1"}
V3 = {"a.txt": b"a1", "e.txt": b"e1"}


@pytest.fixture
def cli(db_kind: str, tmp_path: Path) -> Iterator[Cli]:
    db = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    db.close()
    yield Cli(url, tmp_path / "storage")


class Remote:
    """A file remote in a folder, synced through a file:// URL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()

    @property
    def url(self) -> str:
        return (self.root / "PULP_MANIFEST").as_uri()

    def publish(self, files: dict[str, bytes]) -> None:
        lines = []
        for path, data in sorted(files.items()):
            (self.root / path).write_bytes(data)
            lines.append(f"{path},{hashlib.sha256(data).hexdigest()},{len(data)}\n")
        (self.root / "PULP_MANIFEST").write_text("".join(lines))


def _sync(cli: Cli, remote: Remote, files: dict[str, bytes], *extra: str) -> dict:
    remote.publish(files)
    result = cli.json("sync", remote.url, "--repo", "r", "--mirror", *extra)
    assert isinstance(result, dict)
    return result


def _digests(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


def _paths(units: list[dict]) -> list[str]:
    return [u["natural_key"]["relative_path"] for u in units]


def test_diff_rollback_and_version_removal(cli: Cli, tmp_path: Path) -> None:
    remote = Remote(tmp_path / "remote")
    for files in (V1, V2, V3):
        _sync(cli, remote, files)

    diff = cli.json("diff", "r", "1", "2")
    assert (_paths(diff["added"]), _paths(diff["removed"]), _paths(diff["changed"])) == (
        ["d.txt"],
        ["c.txt"],
        ["b.txt"],
    )
    content_shape = cli.json("content", "r", "--version", "2")
    assert diff["added"][0] in content_shape, "a diff's unit is shaped as content --json's"
    assert diff["changed"][0]["previous"]["natural_key"]["sha256"] == _digests(V1)["b.txt"]
    text = cli.run("diff", "r", "1", "2")
    assert text.returncode == 0 and "1 added, 1 removed, 1 changed" in text.stdout

    rolled = cli.json("rollback", "r", "--to", "1")
    assert (rolled["created"], rolled["version"], rolled["added"], rolled["removed"]) == (True, 4, 2, 1)
    assert cli.version_files("r") == _digests(V1)
    again = cli.run("rollback", "r", "--to", "4")
    assert again.returncode == 0 and "no new version" in again.stdout
    assert cli.json("rollback", "r", "--to", "1")["created"] is False

    removed = cli.json("versions", "delete", "r", "2")
    assert removed["removed_versions"] == [2]
    assert [v["number"] for v in cli.json("versions", "r")] == [0, 1, 3, 4]
    assert cli.version_files("r", 3) == _digests(V3)
    listed = cli.run("versions", "r")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split()[:4] == ["version", "units", "added", "removed"]
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert rows["4"].endswith("(rollback to version 1)") and "(rollback to" not in rows["3"]
    assert [v["rolled_back_to"] for v in cli.json("versions", "r")] == [None, None, None, 1]


def test_sync_retain_is_remembered_and_orphans_frees_what_it_dropped(cli: Cli, tmp_path: Path) -> None:
    remote = Remote(tmp_path / "remote")
    assert _sync(cli, remote, V1)["removed_versions"] == []
    assert _sync(cli, remote, V2, "--retain", "2")["removed_versions"] == [0]
    assert _sync(cli, remote, V3)["removed_versions"] == [1]  # remembered
    assert [v["number"] for v in cli.json("versions", "r")] == [2, 3]
    orphans = cli.run("orphans")
    assert orphans.returncode == 0 and "removed 2 content units" in orphans.stdout  # b1 and c1
    assert cli.json("retain", "r", "--keep", "1") == {"repository": "r", "removed_versions": [2], "keep": 1}
    assert cli.version_files("r") == _digests(V3)

    refused = cli.run("repos", "delete", "r")  # not a terminal and no --yes
    assert_clean_error(refused, 2)
    assert "--yes" in refused.stderr
    gone = cli.json("repos", "delete", "r", "--yes")
    assert gone == {"repository": "r", "removed": True, "versions": 1, "cancelled_syncs": 0, "removed_schedules": 0}
    assert cli.json("repos") == []
    assert "removed 4 content units" in cli.run("orphans").stdout  # b2, d1 (version 2) and a1, e1
    assert cli.run("verify").returncode == 0


BAD_INPUT = [
    ("diff", "r", "1", "9"),
    ("diff", "nope", "0", "1"),
    ("diff", "r", "x", "1"),
    ("rollback", "r", "--to", "7"),
    ("rollback", "r"),
    ("retain", "r", "--keep", "0"),
    ("retain", "nope", "--keep", "1"),
    ("versions", "delete", "r", "1"),
    ("versions", "delete", "r", "5"),
    ("versions", "delete", "r", "x"),
    ("versions", "delete", "r"),
    ("versions", "r", "extra"),
    ("repos", "delete"),
    ("repos", "delete", "nope", "--yes"),
    ("repos", "extra"),
    ("sync", "file:///x/PULP_MANIFEST", "--repo", "r", "--retain", "0"),
]


def test_bad_input_exits_2_with_one_line_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    _sync(cli, Remote(tmp_path / "remote"), V1)
    for args in BAD_INPUT:
        done = cli.run(*args)
        assert_clean_error(done, 2)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
    assert [v["number"] for v in cli.json("versions", "r")] == [0, 1]


def test_a_diff_line_shows_an_empty_value_as_quotes() -> None:
    from pendingops.cli.lifecycle import _value

    assert (_value(""), _value("broken"), _value(False), _value(None)) == ('""', "broken", "False", "None")


def _answer_at_a_terminal(cli: Cli, answer: bytes, *args: str) -> tuple[int, str]:
    """Run the command with a terminal as stdin and stdout; answer its question once it is shown."""
    controller, terminal = pty.openpty()
    command = [SCRIPT, "--db", cli.db_url, "--storage", str(cli.storage), *args]
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    shown = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 120)
            assert ready, f"no output for 120 s; so far: {shown!r}"
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the command ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if not answered and shown.rstrip().endswith(b"[y/N]"):
                os.write(controller, answer)
                answered = True
    finally:
        os.close(controller)
    return process.wait(timeout=120), shown.decode().replace("\r\n", "\n")


def test_removing_a_repository_asks_at_a_terminal_and_only_yes_removes(cli: Cli, tmp_path: Path) -> None:
    _sync(cli, Remote(tmp_path / "remote"), V1)
    code, shown = _answer_at_a_terminal(cli, b"\n", "repos", "delete", "r")
    assert code == 0
    assert "remove repository 'r' and its 2 versions? [y/N]" in shown and "nothing removed" in shown
    code, shown = _answer_at_a_terminal(cli, b"no\n", "repos", "delete", "r")
    assert code == 0 and "nothing removed" in shown
    assert [repo["name"] for repo in cli.json("repos")] == ["r"]
    code, shown = _answer_at_a_terminal(cli, b"y\n", "repos", "delete", "r")
    assert code == 0 and "removed repository 'r' (2 versions)" in shown
    assert cli.json("repos") == []
