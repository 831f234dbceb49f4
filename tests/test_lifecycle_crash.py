"""SIGKILL a lifecycle command while it writes: the repository is exactly as before, and a rerun finishes it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from pendingops import LocalStorage, RemoteConfig
from pendingops.db import lifecycle as sql
from pendingops.db.database import Database
from pendingops.db.schema import RepositoryContent, RepositoryVersion
from pendingops.db.versions import (
    associate_content,
    begin_version,
    declare_content,
    ensure_remote,
    ensure_repository,
    finish_version,
    membership_filter,
)
from pendingops.db.writes import save_units
from tests.conftest import POSTGRES_URL, file_units, fresh_database

SCRIPT = str(Path(sys.executable).parent / "pendingops")
URL = "http://remote.invalid/PULP_MANIFEST"
UNITS = 30_000
#: the history every repository gets: version n holds these slices of the saved content
HISTORY = [(0, 20_000), (10_000, 30_000), (0, 10_000), (15_000, 30_000)]
OPERATIONS = {
    "retain": ("retain", "{repo}", "--keep", "1"),
    "rollback": ("rollback", "{repo}", "--to", "1"),
    "delete_version": ("versions", "delete", "{repo}", "2"),
    "delete_repository": ("repos", "delete", "{repo}", "--yes"),
}
_rc = RepositoryContent.__table__
_version = RepositoryVersion.__table__


def _members(ids: list[int], number: int) -> set[int]:
    start, end = HISTORY[number - 1]
    return set(ids[start:end])


def _build(db: Database, ids: list[int], repo: str) -> None:
    repo_id = db.transact(ensure_repository, repo)
    for number in range(1, len(HISTORY) + 1):
        wanted = sorted(_members(ids, number))

        def build(conn: Any, wanted: list[int] = wanted) -> None:
            version = begin_version(conn, repo_id)
            associate_content(conn, db, repo_id, version, wanted)
            declare_content(conn, db, version, wanted)
            finish_version(conn, repo_id, version, mirror=True)

        db.transact(build)


def _state(db: Database, repo: str) -> Any:
    """Every complete version of ``repo`` with its counts and members (None when the repository is gone)."""
    with db.engine.connect() as conn:
        repo_id = conn.execute(text("SELECT id FROM repository WHERE name = :n"), {"n": repo}).scalar()
        if repo_id is None:
            return None
        rows = conn.execute(
            select(_version.c.number, _version.c.complete, _version.c.content_count).where(
                _version.c.repository_id == repo_id
            )
        ).all()
        return {
            (number, complete, count): frozenset(
                conn.execute(select(_rc.c.content_id).where(membership_filter(repo_id, number))).scalars()
            )
            for number, complete, count in rows
        }


def _writing(db_kind: str, db: Database, db_url: str) -> bool:
    """Whether another connection is inside a write transaction now."""
    if db_kind == "sqlite":
        probe = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
                )
            ).scalar()
        )


@pytest.mark.timeout(900)
def test_sigkill_while_a_lifecycle_command_writes(db_kind: str, tmp_path: Path) -> None:
    db = fresh_database(db_kind, tmp_path)
    db_url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    storage = tmp_path / "storage"
    remote_id = db.transact(ensure_remote, RemoteConfig(url=URL, policy="on_demand"))
    units = file_units(URL, {f"f/{i:05d}": f"{i}".encode() for i in range(UNITS)})
    for start in range(0, UNITS, 2000):
        db.transact(save_units, db, LocalStorage(storage), units[start : start + 2000], remote_id)
    ids = [unit.content_id for unit in units]
    caught = 0
    for name, template in OPERATIONS.items():
        for mode in ("at_start", "while_writing"):
            repo = f"{name}-{mode}"
            _build(db, ids, repo)
            before = _state(db, repo)
            command = [SCRIPT, "--db", db_url, "--storage", str(storage), *(a.format(repo=repo) for a in template)]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while mode == "while_writing" and process.poll() is None and time.monotonic() < deadline:
                if _writing(db_kind, db, db_url):
                    break
            process.kill()
            if process.wait() == -9 and mode == "while_writing":
                caught += 1
            after_kill = _state(db, repo)
            if process.returncode == -9:
                assert after_kill == before, f"{name}: a killed command left part of its work visible"
            rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
            assert rerun.returncode == 0, rerun.stderr
            _check_done(db, ids, repo, name)
    db.close()
    assert caught >= 2, f"only {caught} kill(s) hit a command inside its write transaction"


def _check_done(db: Database, ids: list[int], repo: str, name: str) -> None:
    state = _state(db, repo)
    if name == "delete_repository":
        assert state is None
        return
    expected = {
        "retain": {4: _members(ids, 4)},
        "rollback": {**{n: _members(ids, n) for n in range(1, 5)}, 0: set(), 5: _members(ids, 1)},
        "delete_version": {0: set(), 1: _members(ids, 1), 3: _members(ids, 3), 4: _members(ids, 4)},
    }[name]
    assert {number: set(members) for (number, _, _), members in state.items()} == expected
    assert all(complete and count == len(members) for (_, complete, count), members in state.items())
    with db.engine.connect() as conn:
        repo_id = conn.execute(text("SELECT id FROM repository WHERE name = :n"), {"n": repo}).scalar_one()
        assert sql.complete_numbers(conn, repo_id) == sorted(expected)
