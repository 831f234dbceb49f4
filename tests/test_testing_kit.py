"""pendingops.testing: the shipped plugins' migrations match their models, a scratch database is cheap
and holds every installed plugin's tables, a served folder serves files and nothing outside it."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import inspect

from pendingops import RemoteConfig, sync_remote
from pendingops.plugins import available_plugins
from pendingops.plugins.file import FilePlugin
from pendingops.testing import ServedFolder, assert_migrations_match_models, scratch_database


@pytest.mark.parametrize("name", ["file", "cookbook", "python", "deb"])
def test_the_shipped_plugins_migrations_match_their_models(name: str) -> None:
    assert_migrations_match_models(available_plugins()[name])


def test_a_scratch_database_is_fresh_cheap_and_has_every_plugins_tables() -> None:
    started = time.perf_counter()
    for _ in range(5):
        with scratch_database() as (db, storage):
            with db.engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
            assert {"content", "file_content", "cookbook_content", "python_distribution"} <= tables
            assert not [path for path in storage.root.rglob("*") if path.is_file()]
    assert (time.perf_counter() - started) / 5 < 2.0  # tens of milliseconds unloaded; a wide margin under load


def test_a_served_folder_is_a_remote_and_serves_nothing_outside(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_bytes(b"alpha\n")
    (root / "PULP_MANIFEST").write_text(f"docs/a.txt,{hashlib.sha256(b'alpha' + bytes([10])).hexdigest()},6\n")
    (tmp_path / "secret.txt").write_text("not yours")

    async def scenario() -> None:
        async with ServedFolder(root) as served, aiohttp.ClientSession() as session:
            async with session.get(served.url + "docs/a.txt") as response:
                assert response.status == 200 and await response.read() == b"alpha\n"
            async with session.get(served.url + "..%2Fsecret.txt") as response:
                assert response.status == 404
            with scratch_database() as (db, storage):
                remote = RemoteConfig(url=served.url + "PULP_MANIFEST")
                result = await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")
                assert (result.version.number, result.added) == (1, 1)
            assert served.requests["docs/a.txt"] == 2 and served.requests["PULP_MANIFEST"] == 1

    asyncio.run(scenario())
