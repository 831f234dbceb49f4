"""Hostile and bad input to the real console script, on SQLite and PostgreSQL.

Each case must end with exit code 2 and one line on stderr naming the problem, without a
traceback, without storing anything, and without writing anywhere but the storage directory (and
the SQLite database's own files).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pendingops import Database
from pendingops.db.schema import Artifact, Content
from pendingops.db.versions import VersionError
from pendingops.storage.owner import OWNER_MARKER
from tests.conftest import POSTGRES_URL, count_rows, fresh_database, version_numbers
from tests.remote_server import Fault
from tests.server_thread import ServerThread

SCRIPT = str(Path(sys.executable).parent / "pendingops")
#: the SQLite database's file name; its -wal, -shm and lock files start with it too
DB_FILE = "pendingops.db"
FILES = {"a.txt": b"alpha\n", "b/c.txt": b"gamma\n"}


def _line(path: str | bytes, data: bytes, size: str | None = None) -> bytes:
    raw_path = path if isinstance(path, bytes) else path.encode()
    size_text = str(len(data)) if size is None else size
    return b"%s,%s,%s\n" % (raw_path, hashlib.sha256(data).hexdigest().encode(), size_text.encode())


GOOD_LINES = b"".join(_line(path, data) for path, data in FILES.items())


@dataclass
class Env:
    """A database, a storage directory and a sandboxed environment for the console script."""

    db: Database
    db_url: str
    root: Path
    storage: Path
    env: dict[str, str]

    def run(self, *args: str, db_url: str | None = None, storage: Path | None = None) -> subprocess.CompletedProcess:
        command = [SCRIPT, "--db", db_url or self.db_url, "--storage", str(storage or self.storage), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=self.env)

    def snapshot(self, storage: Path | None = None) -> dict[str, str]:
        """Every file and folder under the test's root except storage and the SQLite files."""
        storage = storage or self.storage
        tree: dict[str, str] = {}
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root)
            if path == storage or storage in path.parents or relative.parts[0].startswith(DB_FILE):
                continue
            tree[str(relative)] = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        return tree


@pytest.fixture
def env(db_kind: str, tmp_path: Path) -> Iterator[Env]:
    db = fresh_database(db_kind, tmp_path)  # SQLite: tmp_path / DB_FILE
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    # Home, data and temporary folders inside the snapshot: a write to any of them is caught.
    sandbox = {name: tmp_path / name for name in ("home", "xdg-data", "xdg-cache", "tmpdir")}
    for folder in sandbox.values():
        folder.mkdir()
    variables = {
        "HOME": sandbox["home"],
        "XDG_DATA_HOME": sandbox["xdg-data"],
        "XDG_CACHE_HOME": sandbox["xdg-cache"],
        "TMPDIR": sandbox["tmpdir"],
    }
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PENDINGOPS_")}
    environment |= {name: str(path) for name, path in variables.items()}
    yield Env(db, url, tmp_path, tmp_path / "storage", environment)
    db.close()


def assert_one_line_error(done: subprocess.CompletedProcess, problem: str) -> str:
    """Exit 2, no traceback, one line on stderr matching ``problem``; return that line."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pendingops: error: "), lines[0]
    assert re.search(problem, lines[0]), lines[0]
    return lines[0]


def _versions(db: Database, repository: str) -> list[int] | None:
    try:
        return version_numbers(db, repository)
    except VersionError:
        return None


def assert_nothing_stored(env: Env, storage: Path | None = None, *, versions: list[int] | None = None) -> None:
    """No row and no file stored; repository 'r' has ``versions`` (None: it was never created)."""
    storage = storage or env.storage
    assert count_rows(env.db, Artifact) == 0
    assert count_rows(env.db, Content) == 0
    assert _versions(env.db, "r") == versions
    if storage.is_dir():
        assert [p for p in storage.rglob("*") if p.is_file() and p.name != OWNER_MARKER] == []


# -- manifests a server might send -----------------------------------------------------------------

SHA_A, SHA_OTHER = hashlib.sha256(b"alpha\n").hexdigest(), hashlib.sha256(b"other\n").hexdigest()
BAD_MANIFESTS = {
    "invalid UTF-8": (
        GOOD_LINES + _line(b"caf\xe9.txt", b"x"),
        r"line 3: not valid UTF-8 \(byte 0xe9 at offset 3\)",
    ),
    "same path twice, different digests": (
        GOOD_LINES + _line("a.txt", b"other\n"),
        rf"line 3: relative path 'a.txt' is listed twice with different sha256"
        rf" \(line 1: {SHA_A}, line 3: {SHA_OTHER}\)",
    ),
    "negative size": (
        GOOD_LINES + _line("d.txt", b"delta", size="-5"),
        r"line 3: size must be a non-negative whole number of bytes, got '-5'",
    ),
    "absolute path": (
        _line("/etc/passwd", b"root") + GOOD_LINES,
        r"line 1: relative path must not be absolute: '/etc/passwd'",
    ),
    "dot-dot path": (
        GOOD_LINES + _line("../escape.txt", b"out"),
        r"line 3: relative path has a '\.\.' segment: '\.\./escape\.txt'",
    ),
    "dot-dot inside a path": (
        _line("b/../../escape.txt", b"out") + GOOD_LINES,
        r"line 1: relative path has a '\.\.' segment: 'b/\.\./\.\./escape\.txt'",
    ),
}


@pytest.mark.parametrize(("manifest", "problem"), list(BAD_MANIFESTS.values()), ids=list(BAD_MANIFESTS))
def test_a_bad_manifest_is_refused_before_anything_is_fetched(env: Env, manifest: bytes, problem: str) -> None:
    before = env.snapshot()
    with ServerThread(FILES) as server:
        server.manifest_override = manifest
        done = env.run("sync", server.manifest_url, "--repo", "r", "--quiet")
        requests = server.file_requests()
    line = assert_one_line_error(done, problem)
    assert f"bad manifest {server.manifest_url}: " in line
    assert requests == 0  # checked in full before the first download
    assert env.snapshot() == before
    assert_nothing_stored(env, versions=[0])  # the sync began: the repository exists, with no new version
    assert list((env.storage / "tmp").iterdir()) == []  # the downloaded manifest is gone too


def test_an_html_page_instead_of_a_manifest(env: Env) -> None:
    before = env.snapshot()
    with ServerThread(FILES) as server:
        server.faults["PULP_MANIFEST"] = Fault(html=True)
        done = env.run("sync", server.manifest_url, "--repo", "r", "--quiet")
        requests = server.file_requests()
    assert_one_line_error(done, r"line 1: this is an HTML page, not a PULP_MANIFEST")
    assert requests == 0
    assert env.snapshot() == before
    assert_nothing_stored(env, versions=[0])  # the sync began: the repository exists, with no new version
    assert list((env.storage / "tmp").iterdir()) == []


def test_the_good_manifest_syncs(env: Env) -> None:
    """The baseline the bad manifests are cut from: it syncs, and still writes only in storage."""
    before = env.snapshot()
    with ServerThread(FILES) as server:
        server.manifest_override = GOOD_LINES
        done = env.run("sync", server.manifest_url, "--repo", "r", "--quiet")
    assert done.returncode == 0, done.stderr
    assert env.snapshot() == before
    assert count_rows(env.db, Artifact) == len(FILES)


# -- settings that cannot work ---------------------------------------------------------------------


def test_a_storage_path_under_a_regular_file(env: Env) -> None:
    blocker = env.root / "a-file"
    blocker.write_bytes(b"not a folder\n")
    storage = blocker / "storage"
    before = env.snapshot(storage)
    with ServerThread(FILES) as server:
        done = env.run("sync", server.manifest_url, "--repo", "r", "--quiet", storage=storage)
        requests = sum(server.requests.values())
    assert_one_line_error(done, rf"cannot use storage directory {re.escape(str(storage))}: Not a directory")
    assert requests == 0  # refused before the remote was contacted
    assert env.snapshot(storage) == before
    assert blocker.read_bytes() == b"not a folder\n"
    assert_nothing_stored(env, storage)


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not bind root")
def test_a_read_only_storage_directory(env: Env) -> None:
    storage = env.root / "read-only"
    storage.mkdir(mode=0o500)
    try:
        before = env.snapshot(storage)
        with ServerThread(FILES) as server:
            done = env.run("sync", server.manifest_url, "--repo", "r", "--quiet", storage=storage)
        assert_one_line_error(done, rf"cannot use storage directory {re.escape(str(storage))}")
        assert env.snapshot(storage) == before
        assert list(storage.iterdir()) == []
    finally:
        storage.chmod(0o700)


def test_an_unreachable_database(env: Env, db_kind: str) -> None:
    if db_kind == "postgresql":
        url = "postgresql://postgres@127.0.0.1:1/none"  # nothing listens on port 1
        problem = r"cannot open database postgresql\+psycopg2://postgres@127\.0\.0\.1:1/none: .*Connection refused"
    else:
        blocker = env.root / "a-file"
        blocker.write_bytes(b"not a folder\n")
        url = f"sqlite:///{blocker / DB_FILE}"
        problem = rf"cannot open database {re.escape(url)}: {re.escape(str(blocker))} is not a folder"
    before = env.snapshot()
    with ServerThread(FILES) as server:
        done = env.run("sync", server.manifest_url, "--repo", "r", "--quiet", "--db-retry-seconds", "0", db_url=url)
        requests = sum(server.requests.values())
    assert_one_line_error(done, problem)
    assert requests == 0
    assert env.snapshot() == before
    assert not env.storage.exists() or [p for p in env.storage.rglob("*") if p.is_file()] == []


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    content = hashlib.sha512(b"junk").digest() * 64
    junk.write_bytes(content)
    command = [SCRIPT, "--db", f"sqlite:///{junk}", "--storage", str(tmp_path / "storage"), "repos"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert junk.read_bytes() == content
    assert_one_line_error(done, r"cannot open database .*: file is not a database")
