"""Schema migrations: a database made before them is upgraded whole; new ones start at head.

Real databases (SQLite and PostgreSQL), the real console script, real loopback HTTP servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.schema import CreateColumn

from pendingops import (
    Database,
    LocalStorage,
    PendingArtifact,
    PendingContent,
    RemoteConfig,
    declarative_version,
    open_database,
)
from pendingops.db.migrations import VERSION_TABLE
from pendingops.db.migrations.check import SchemaOutOfDate
from pendingops.db.migrations.runner import alembic_config, migration_connection, upgrade
from pendingops.db.schema import Base
from pendingops.maintenance.listing import iter_version_content
from pendingops.maintenance.verify import StorageProblem, verify_storage
from pendingops.plugins.cookbook import CookbookContent
from pendingops.plugins.database import migration_branches
from pendingops.storage.owner import Claim, Ownership
from tests.conftest import POSTGRES_URL, file_units, require_postgres
from tests.remote_server import RemoteServer

SCRIPT = str(Path(sys.executable).parent / "pendingops")
#: the tables the core and the built-in plugins own (the test suite's own content types aside)
CORE_HEAD = next(b for b in migration_branches() if b.name == "core").head
HEADS = {CORE_HEAD, "file_0001", "cookbook_0001", "python_0003", "deb_0001"}
SHIPPED = {t for t in Base.metadata.tables if not t.startswith("test_")} | {"file_content", "cookbook_content"}


def empty_database(kind: str, tmp_path: Path) -> tuple[Database, str]:
    """An empty database of ``kind`` (no tables at all), opened without the version check."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        return open_database(url, create=False), url
    require_postgres()
    db = open_database(POSTGRES_URL, create=False)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    return db, POSTGRES_URL


def migrate(db: Database, target: str) -> None:
    """Run the shipped revisions up to ``target`` straight through Alembic."""
    with migration_connection(db) as conn, conn.begin():
        command.upgrade(alembic_config(conn, migration_branches()), target)


def baseline_database(kind: str, tmp_path: Path) -> tuple[Database, str]:
    """A database as the code before migrations made it: the baseline tables, no version table."""
    db, url = empty_database(kind, tmp_path)
    migrate(db, "file_0001")
    migrate(db, "cookbook_0001")
    with db.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    return db, url


def run_cli(url: str, storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command_line = [SCRIPT, "--db", url, "--storage", str(storage), *args]
    return subprocess.run(command_line, capture_output=True, text=True, timeout=120)


def cookbook_unit(base_url: str, name: str, version: str, tarball: bytes) -> PendingContent:
    digest = hashlib.sha256(tarball).hexdigest()
    path = f"{name}-{version}.tar.gz"
    artifact = PendingArtifact(url=base_url + path, relative_path=path, size=len(tarball), sha256=digest)
    fields = {"name": name, "version": version, "content_id": digest, "license": "MIT", "dependencies": {"a": ">= 1"}}
    return PendingContent(CookbookContent, fields, [artifact])


def fill(db: Database, storage: LocalStorage) -> None:
    """Versions of file content (additive, then mirror) and of cookbooks, with artifacts in storage.

    The syncs are today's code on an old schema: core tables and columns added since exist only
    while they run. As a release from before storage owners would, they leave the storage without an
    owner record.
    """
    missing = [t for t in Base.metadata.sorted_tables if t.name in SHIPPED and not inspect(db.engine).has_table(t.name)]
    Base.metadata.create_all(db.engine, tables=missing)
    columns = _add_missing_columns(db)
    try:
        _fill(db, storage)
    finally:
        with db.engine.begin() as conn:
            for table, column in columns:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        Base.metadata.drop_all(db.engine, tables=missing)


def _add_missing_columns(db: Database) -> list[tuple[str, str]]:
    """Add the columns today's shipped tables have and the old schema's lack; return (table, column)."""
    added = []
    with db.engine.begin() as conn:
        inspector = inspect(conn)
        for table in Base.metadata.sorted_tables:
            if table.name not in SHIPPED or not inspector.has_table(table.name):
                continue
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {CreateColumn(column).compile(conn)}"))
                    added.append((table.name, column.name))
    return added


def _fill(db: Database, storage: LocalStorage) -> None:
    v1 = {f"dir/f{i}.txt": f"file {i}\n".encode() * 30 for i in range(8)}
    v2 = {k: v for k, v in v1.items() if not k.endswith(("1.txt", "2.txt"))} | {"new.txt": b"new\n"}
    books = {"apache-1.0.0.tar.gz": b"tar apache 1", "apache-1.1.0.tar.gz": b"tar apache 2", "nginx-2.0.0.tar.gz": b"n"}

    async def scenario() -> None:
        for files, mirror in ((v1, False), (v2, True)):
            async with RemoteServer(dict(files)) as server:
                remote = RemoteConfig(url=server.manifest_url)
                units = file_units(server.manifest_url, files)
                await declarative_version(
                    units, db=db, storage=storage, remote=remote, repository="files", mirror=mirror
                )
        async with RemoteServer(dict(books)) as server:
            units = [cookbook_unit(server.base_url, *p.removesuffix(".tar.gz").split("-"), d) for p, d in books.items()]
            remote = RemoteConfig(url=server.base_url, policy="immediate")
            await declarative_version(units[:2], db=db, storage=storage, remote=remote, repository="books")
            on_demand = RemoteConfig(url=server.base_url, policy="on_demand")
            await declarative_version(units[2:], db=db, storage=storage, remote=on_demand, repository="books")

    legacy = Claim(Ownership("a release without owner records"))
    with patch("pendingops.context.claim_in", lambda conn, storage: legacy):
        asyncio.run(scenario())


def snapshot(db: Database) -> dict[str, Any]:
    """Every version of every repository, unit by unit, as ``content --json`` shows them."""
    out: dict[str, Any] = {}
    for repo, last in (("files", 2), ("books", 2)):
        for number in range(last + 1):
            units = [json.loads(json.dumps(u.as_json(), default=str)) for u in iter_version_content(db, repo, number)]
            out[f"{repo}@{number}"] = units
    return out


def index_names(db: Database, table: str) -> set[str]:
    with db.engine.connect() as conn:
        return {i["name"] for i in inspect(conn).get_indexes(table)}


def column_names(db: Database, table: str) -> set[str]:
    with db.engine.connect() as conn:
        return {c["name"] for c in inspect(conn).get_columns(table)}


def test_the_file_reader_agrees_with_alembic_on_heads_and_order() -> None:
    branches = migration_branches()
    with open_database("sqlite://", create=False).engine.connect() as conn:
        script = ScriptDirectory.from_config(alembic_config(conn, branches))
    assert set(script.get_heads()) == {b.head for b in branches}
    for branch in branches:
        assert set(script.get_revisions(branch.name)[0].branch_labels) >= {branch.name}
        alembic_order = [r.revision for r in script.iterate_revisions(branch.head, "base")]
        ours = [r.id for r in branch.pending(None)]
        assert [r for r in reversed(alembic_order) if r in branch.revisions] == ours


def test_migrations_build_the_schema_the_models_declare(db_kind: str, tmp_path: Path) -> None:
    db, _ = empty_database(db_kind, tmp_path)
    migrate(db, "heads")
    shipped = MetaData()
    for name in SHIPPED:
        Base.metadata.tables[name].to_metadata(shipped)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, shipped) if "pendingops_schema_version" not in repr(d)]
        stored = set(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    assert differences == []
    assert stored == HEADS
    db.close()


def test_a_database_from_before_migrations_is_upgraded_and_keeps_everything(db_kind: str, tmp_path: Path) -> None:
    db, url = baseline_database(db_kind, tmp_path)
    storage = LocalStorage(tmp_path / "storage")
    fill(db, storage)
    columns = _add_missing_columns(db)  # today's code reads the old schema with today's columns, as fill writes it
    try:
        before = snapshot(db)
    finally:
        with db.engine.begin() as conn:
            for table, column in columns:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    assert "repository_content_content" not in index_names(db, "repository_content")
    db.close()

    refused = run_cli(url, storage.root, "content", "files", "--json")
    assert refused.returncode == 2, refused
    assert refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "run 'pendingops db upgrade'" in refused.stderr

    status = json.loads(run_cli(url, storage.root, "db", "status", "--json").stdout)
    assert (status["versioned"], status["up_to_date"]) == (False, False)
    assert {b["name"]: b["state"] for b in status["branches"]} == {
        "core": "unversioned",
        "file": "unversioned",
        "cookbook": "unversioned",
        "python": "missing",  # a plugin newer than migrations: its tables are simply created
        "deb": "missing",
    }
    done = run_cli(url, storage.root, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"core: unversioned -> {CORE_HEAD}" in done.stdout
    status = json.loads(run_cli(url, storage.root, "db", "status", "--json").stdout)
    assert status["up_to_date"] and all(b["state"] == "current" for b in status["branches"])

    verify = run_cli(url, storage.root, "verify")
    assert verify.returncode == 0, verify.stderr
    assert "checked 11 artifacts: 0 problem(s)" in verify.stdout
    for key, units in before.items():
        repo, number = key.split("@")
        shown = run_cli(url, storage.root, "content", repo, "--version", number, "--json")
        assert shown.returncode == 0, shown.stderr
        assert sorted(json.loads(shown.stdout), key=json.dumps) == sorted(units, key=json.dumps)
    versions = json.loads(run_cli(url, storage.root, "versions", "files", "--json").stdout)
    assert [(v["number"], v["content_count"]) for v in versions] == [(0, 0), (1, 8), (2, 7)]

    db = open_database(url)  # at head now: no complaint
    assert "repository_content_content" in index_names(db, "repository_content")
    assert not [p for p in verify_storage(db, storage) if isinstance(p, StorageProblem)]
    assert snapshot(db) == before
    db.close()


def test_downgrade_to_the_previous_revision_and_back(db_kind: str, tmp_path: Path) -> None:
    db, url = empty_database(db_kind, tmp_path)
    db.close()
    storage = tmp_path / "storage"
    assert run_cli(url, storage, "repos").returncode == 0  # created at head, as before migrations
    down = run_cli(url, storage, "db", "downgrade", "core_0001")
    assert down.returncode == 0, down.stderr
    assert f"core: {CORE_HEAD} -> core_0001" in down.stdout
    db = open_database(url, create=False)
    assert "repository_content_content" not in index_names(db, "repository_content")
    assert "retain_versions" not in column_names(db, "repository")
    with pytest.raises(SchemaOutOfDate, match=rf"core core_0001 -> {CORE_HEAD}\): run 'pendingops db upgrade'"):
        db.create_schema()
    db.close()
    status = run_cli(url, storage, "db", "status")
    assert "pending core_0002" in status.stdout and f"{CORE_HEAD}" in status.stdout
    assert run_cli(url, storage, "db", "upgrade").returncode == 0
    db = open_database(url)
    assert "repository_content_content" in index_names(db, "repository_content")
    assert "retain_versions" in column_names(db, "repository")
    db.close()


def test_a_schema_newer_than_the_installed_package_is_refused_in_one_line(db_kind: str, tmp_path: Path) -> None:
    db, url = empty_database(db_kind, tmp_path)
    db.create_schema()
    with db.engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'core_9999' WHERE version_num = '{CORE_HEAD}'"))
    db.close()
    for args in (("repos",), ("db", "upgrade")):
        done = run_cli(url, tmp_path / "storage", *args)
        assert done.returncode == 2, done
        assert done.stderr.strip().splitlines() == [
            "pendingops: error: the database has schema revision(s) core_9999 unknown to this installation "
            "(written by a newer pendingops or by a plugin that is not installed): install it"
        ]


def test_two_upgrades_at_once_take_turns(db_kind: str, tmp_path: Path) -> None:
    db, url = baseline_database(db_kind, tmp_path)
    fill(db, LocalStorage(tmp_path / "storage"))
    db.close()
    command_line = [SCRIPT, "--db", url, "--storage", str(tmp_path / "storage"), "db", "upgrade"]
    running = [subprocess.Popen(command_line, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outcomes = [(p.wait(120), *p.communicate()) for p in running]
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    assert sorted("nothing to do" in out for _, out, _ in outcomes) == [False, True], outcomes
    db = open_database(url)
    with db.engine.connect() as conn:
        stored = set(conn.execute(select(text("version_num")).select_from(text(VERSION_TABLE))).scalars())
    assert stored == HEADS
    db.close()


def test_a_new_database_is_created_at_head_and_stamped_in_one_step(db_kind: str, tmp_path: Path) -> None:
    db, _ = empty_database(db_kind, tmp_path)
    db.create_schema()
    with db.engine.connect() as conn:
        stored = set(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    assert stored == HEADS
    outcome = upgrade(db)
    assert outcome.before == outcome.after and outcome.created == []
    db.close()


def test_core_0009_adds_the_private_destinations_flag_and_the_remotes_size_cap_and_takes_them_back(
    db_kind: str, tmp_path: Path
) -> None:
    db, _ = empty_database(db_kind, tmp_path)
    migrate(db, "core_0008")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO repository (name, created_at) VALUES ('r', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO remote (name, url, policy) VALUES ('m', 'http://h/', 'on_demand')"))
    migrate(db, "core_0009")
    with db.engine.begin() as conn:
        flags = conn.execute(text("SELECT name, allow_private_destinations FROM repository")).all()
        assert [(name, bool(allowed)) for name, allowed in flags] == [("r", False)]  # what older syncs did
        assert conn.execute(text("SELECT name, max_file_size FROM remote")).all() == [("m", None)]
        conn.execute(text("UPDATE repository SET allow_private_destinations = true"))
        conn.execute(text("UPDATE remote SET max_file_size = 5000000000"))  # past 32 bits
        assert conn.execute(text("SELECT max_file_size FROM remote")).scalar() == 5_000_000_000
    with migration_connection(db) as conn, conn.begin():
        command.downgrade(alembic_config(conn, migration_branches()), "core_0008")
    assert "allow_private_destinations" not in column_names(db, "repository")
    assert "max_file_size" not in column_names(db, "remote")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM repository")).all() == [("r",)]
        assert conn.execute(text("SELECT name, url, policy FROM remote")).all() == [("m", "http://h/", "on_demand")]
    db.close()


def test_core_0011_tasks_numbers_and_progress_columns_come_and_go(db_kind: str, tmp_path: Path) -> None:
    db, _ = empty_database(db_kind, tmp_path)
    migrate(db, "core_0010")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO sync_task (job_id, worker) VALUES (7, 'w')"))
    migrate(db, "core_0011")
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT job_id, number, units_done FROM sync_task")).all() == [(7, None, None)]
        conn.execute(text("UPDATE sync_task SET number = 1, units_done = 3, bytes_done = 5000000000"))
        conn.execute(text("INSERT INTO sync_task (job_id, number) VALUES (9, 2)"))
    with pytest.raises(Exception, match=r"(?i)unique"), db.engine.begin() as conn:
        conn.execute(text("INSERT INTO sync_task (job_id, number) VALUES (10, 2)"))  # a number is given once
    with migration_connection(db) as conn, conn.begin():
        command.downgrade(alembic_config(conn, migration_branches()), "core_0010")
    assert "number" not in column_names(db, "sync_task") and "progress_at" not in column_names(db, "sync_task")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT job_id, worker FROM sync_task ORDER BY job_id")).all() == [(7, "w"), (9, None)]


def test_core_0012_records_which_version_a_rollback_copied_and_takes_it_back(db_kind: str, tmp_path: Path) -> None:
    db, _ = empty_database(db_kind, tmp_path)
    migrate(db, "core_0011")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO repository (name, created_at) VALUES ('r', CURRENT_TIMESTAMP)"))
        repository_id = conn.execute(text("SELECT id FROM repository")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO repository_version (repository_id, number, complete, content_count, added_count,"
                " removed_count, created_at) VALUES (:r, 0, true, 0, 0, 0, CURRENT_TIMESTAMP)"
            ),
            {"r": repository_id},
        )
    migrate(db, "core_0012")
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT number, rolled_back_to FROM repository_version")).all() == [(0, None)]
    with migration_connection(db) as conn, conn.begin():
        command.downgrade(alembic_config(conn, migration_branches()), "core_0011")
    assert "rolled_back_to" not in column_names(db, "repository_version")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT number FROM repository_version")).all() == [(0,)]
    db.close()
