"""The real console script against a real local HTTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, fresh_database
from tests.remote_server import Fault
from tests.server_thread import ServerThread

SCRIPT = str(Path(sys.executable).parent / "pendingops")


def files_v1() -> dict[str, bytes]:
    files = {f"pkg/file-{i:02d}.txt": f"file {i}\n".encode() * 20 for i in range(12)}
    files["odd name, with comma.txt"] = b"comma"
    files["spaces and %percent #hash ?q +plus.txt"] = b"special"
    files["ünïcode/naïve.txt"] = b"unicode"
    return files


@pytest.fixture
def cli(db_kind: str, tmp_path: Path) -> Iterator[Cli]:
    db = fresh_database(db_kind, tmp_path)
    url = db.engine.url.render_as_string(hide_password=False)
    db.close()
    if db_kind == "postgresql":
        url = POSTGRES_URL
    yield Cli(url, tmp_path / "storage")


class Cli:
    def __init__(self, db_url: str, storage: Path) -> None:
        self.db_url = db_url
        self.storage = storage

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [SCRIPT, "--db", self.db_url, "--storage", str(self.storage), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def json(self, *args: str) -> object:
        done = self.run(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def version_files(self, repo: str, version: int | None = None) -> dict[str, str]:
        extra = ["--version", str(version)] if version is not None else []
        units = self.json("content", repo, *extra)
        assert isinstance(units, list)
        return {u["natural_key"]["relative_path"]: u["natural_key"]["sha256"] for u in units}


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


def assert_clean_error(done: subprocess.CompletedProcess[str], code: int) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.strip(), "an error must say what went wrong"


def test_sync_resync_mirror_additive_and_export(cli: Cli, tmp_path: Path) -> None:
    with ServerThread(files_v1()) as server:
        first = cli.run("sync", server.manifest_url, "--repo", "r", "--quiet")
        assert first.returncode == 0, first.stderr
        assert "new version 1" in first.stdout
        assert cli.version_files("r") == digests(files_v1())

        requests_before = server.file_requests()
        noop = cli.run("sync", server.manifest_url, "--repo", "r", "--mirror", "--quiet")
        assert noop.returncode == 0, noop.stderr
        assert "nothing changed" in noop.stdout
        assert server.file_requests() == requests_before

        v2 = {k: v for k, v in files_v1().items() if not k.startswith("pkg/file-0")} | {"new.txt": b"new"}
        server.files = dict(v2)
        mirror = cli.run("sync", server.manifest_url, "--repo", "r", "--mirror", "--quiet")
        assert mirror.returncode == 0, mirror.stderr
        assert cli.version_files("r") == digests(v2)

        v3 = {"extra/one.txt": b"one"}
        server.files = dict(v3)
        additive = cli.run("sync", server.manifest_url, "--repo", "r", "--additive", "--quiet")
        assert additive.returncode == 0, additive.stderr
        assert cli.version_files("r") == digests(v2) | digests(v3)

    versions = cli.json("versions", "r")
    assert [(v["number"], v["content_count"], v["added"], v["removed"]) for v in versions] == [
        (0, 0, 0, 0),
        (1, 15, 15, 0),
        (2, 6, 1, 10),
        (3, 7, 1, 0),
    ]
    assert cli.version_files("r", 1) == digests(files_v1())  # old versions never change

    dest = tmp_path / "export"
    exported = cli.run("export", "r", str(dest), "--version", "2")
    assert exported.returncode == 0, exported.stderr
    on_disk = {
        str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file() and p.name != "PULP_MANIFEST"
    }
    assert on_disk == v2
    manifest_lines = sorted((dest / "PULP_MANIFEST").read_text(encoding="utf-8").splitlines())
    assert manifest_lines == sorted(f"{p},{hashlib.sha256(d).hexdigest()},{len(d)}" for p, d in v2.items())

    repos = cli.json("repos")
    assert repos == [{"name": "r", "latest_version": 3, "content_count": 7}]


def test_an_unchanged_remote_ends_the_sync_with_one_line_unless_forced(cli: Cli) -> None:
    with ServerThread(files_v1()) as server:
        assert cli.run("sync", server.manifest_url, "--repo", "r", "--quiet").returncode == 0
        before = dict(server.requests)
        again = cli.run("sync", server.manifest_url, "--repo", "r", "--quiet")
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[0] == "remote unchanged, no new version"
        assert "stays at version 1" in again.stdout
        assert {path: count - before.get(path, 0) for path, count in server.requests.items()} == {
            path: int(path == "PULP_MANIFEST") for path in server.requests
        }
        forced = cli.run("sync", server.manifest_url, "--repo", "r", "--quiet", "--force")
        assert forced.returncode == 0, forced.stderr
        assert "remote unchanged" not in forced.stdout and "nothing changed" in forced.stdout
        summary = cli.json("sync", server.manifest_url, "--repo", "r")
        assert isinstance(summary, dict) and summary["remote_unchanged"] and not summary["created"]
    assert [v["number"] for v in cli.json("versions", "r")] == [0, 1]


def test_exported_tree_resyncs_from_file_url(cli: Cli, tmp_path: Path) -> None:
    with ServerThread(files_v1()) as server:
        assert cli.run("sync", server.manifest_url, "--repo", "src", "--quiet").returncode == 0
    dest = tmp_path / "tree"
    assert cli.run("export", "src", str(dest)).returncode == 0
    copy = cli.run("sync", (dest / "PULP_MANIFEST").as_uri(), "--repo", "copy", "--quiet")
    assert copy.returncode == 0, copy.stderr
    assert cli.version_files("copy") == cli.version_files("src")


def test_failed_unit_fails_sync_or_is_skipped(cli: Cli) -> None:
    files = files_v1()
    with ServerThread(files) as server:
        server.faults["pkg/file-03.txt"] = Fault(status=404)
        failed = cli.run("sync", server.manifest_url, "--repo", "r", "--quiet")
        assert_clean_error(failed, 1)
        assert "pkg/file-03.txt" in failed.stderr and "404" in failed.stderr
        assert [v["number"] for v in cli.json("versions", "r")] == [0]

        skipped = cli.run("sync", server.manifest_url, "--repo", "r", "--on-error", "skip", "--quiet")
        assert skipped.returncode == 0, skipped.stderr
        assert "1 unit(s) failed" in skipped.stdout and "404" in skipped.stderr
        expected = digests(files)
        del expected["pkg/file-03.txt"]
        assert cli.version_files("r") == expected


def test_verify_catches_a_corrupted_artifact(cli: Cli) -> None:
    with ServerThread(files_v1()) as server:
        assert cli.run("sync", server.manifest_url, "--repo", "r", "--quiet").returncode == 0
    healthy = cli.run("verify")
    assert healthy.returncode == 0 and "0 problem(s)" in healthy.stdout
    victim = sorted((cli.storage / "artifacts").rglob("*"))[-1]
    victim.write_bytes(b"corrupted")
    broken = cli.run("verify")
    assert broken.returncode == 1
    assert "1 problem(s)" in broken.stdout and victim.parent.name + victim.name in broken.stdout.replace("/", "")


def test_orphans_removes_what_a_failed_sync_left(cli: Cli) -> None:
    with ServerThread(files_v1()) as server:
        server.faults["pkg/file-11.txt"] = Fault(status=404)
        assert cli.run("sync", server.manifest_url, "--repo", "r", "--quiet", "--batch-size", "2").returncode == 1
    dry = cli.run("orphans", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("would remove")
    removed = cli.run("orphans")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.split()[1] == dry.stdout.split()[2]  # same content count as announced
    assert cli.run("orphans").stdout.startswith("removed 0 content units and 0 artifacts")
    assert cli.run("verify").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("nosuchcommand",),
        ("sync", "http://127.0.0.1:1/PULP_MANIFEST"),
        ("sync", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "r", "--concurrency", "0"),
        ("sync", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "r", "--db-retry-seconds", "-1"),
        ("sync", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "r", "--db-retry-seconds", "inf"),
        ("sync", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "r", "--db-retry-seconds", "soon"),
        ("sync", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "r", "--plugin", "nosuch"),
        ("sync", "ftp://example.invalid/PULP_MANIFEST", "--repo", "r"),
        ("versions", "no-such-repo"),
        ("content", "no-such-repo"),
        ("sync", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "-"),
        ("sync", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "-", "--enqueue"),
        ("schedule", "add", "nightly", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "-", "--every", "1h"),
        ("serve", "--repos", "a,-"),
        ("serve", "--repos", "a,,b"),
        ("--log-level", "verbose", "repos"),
        ("--log-format", "xml", "repos"),
    ],
)
def test_bad_usage_exits_2_with_one_line(cli: Cli, args: tuple[str, ...]) -> None:
    done = cli.run(*args)
    assert_clean_error(done, 2)
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_reserved_repository_name_is_refused_before_anything_is_written(cli: Cli) -> None:
    done = cli.run("sync", "http://127.0.0.1:1/PULP_MANIFEST", "--repo", "-")
    assert done.stderr == (
        "pendingops: error: argument --repo: '-' is reserved (the server's own pages are under /-/): choose another"
        " name (see 'pendingops sync --help')\n"
    )
    assert cli.json("repos") == []


def test_version_prints_the_installed_version() -> None:
    done = subprocess.run([SCRIPT, "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"pendingops {metadata.version('pendingops')}\n", "")


def test_a_bad_log_format_in_the_environment_is_one_line_unless_the_option_is_given(tmp_path: Path) -> None:
    command = [SCRIPT, "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--storage", str(tmp_path / "storage")]
    env = {**os.environ, "PENDINGOPS_LOG_FORMAT": "xml"}
    done = subprocess.run([*command, "repos"], capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "pendingops: error: PENDINGOPS_LOG_FORMAT must be one of text, json, not 'xml'\n"
    given = [*command, "--log-format", "json", "repos"]
    done = subprocess.run(given, capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stderr) == (0, "")


def test_unreachable_database_is_a_clean_error(tmp_path: Path) -> None:
    command = [SCRIPT, "--db", "postgresql://postgres@127.0.0.1:1/none", "--storage", str(tmp_path), "repos"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert_clean_error(done, 2)
    assert "cannot open database" in done.stderr


def test_bad_manifest_exits_2_and_writes_nothing(cli: Cli) -> None:
    with ServerThread({}) as server:
        server.manifest_override = b"good.txt," + b"a" * 64 + b",3\n../escape.txt," + b"b" * 64 + b",3\n"
        done = cli.run("sync", server.manifest_url, "--repo", "r", "--quiet")
    assert_clean_error(done, 2)
    assert "line 2" in done.stderr
    [version] = cli.json("versions", "r")
    assert {k: version[k] for k in ("number", "content_count", "added", "removed", "base", "runs")} == {
        "number": 0,
        "content_count": 0,
        "added": 0,
        "removed": 0,
        "base": None,
        "runs": [],  # the failed sync made no version
    }
    assert cli.json("content", "r") == []


def test_plugins_lists_the_file_plugin(cli: Cli) -> None:
    done = cli.run("plugins")
    assert done.returncode == 0
    assert "file" in [line.split()[0] for line in done.stdout.splitlines()]


def test_sync_json_summary(cli: Cli) -> None:
    with ServerThread(files_v1()) as server:
        summary = cli.json("sync", server.manifest_url, "--repo", "r")
    assert summary["version"] == 1 and summary["added"] == 15 and summary["created"] is True
    assert summary["failed"] == 0
