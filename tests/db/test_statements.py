"""SQL statements per unit: a handful per batch, never one per unit, never over the bound-variable limit."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from pendingops import RemoteConfig, SyncContext, declarative_version, default_pipeline
from pendingops.db.schema import Artifact, Content
from pendingops.storage.owner import claim_storage
from tests.conftest import (
    TIGHT_LIMIT,
    count_rows,
    count_statements,
    file_set,
    file_units,
    fresh_database,
    version_content,
)

URL = "http://127.0.0.1:9/PULP_MANIFEST"  # never contacted: on demand, or the files are already stored
ON_DEMAND = RemoteConfig(url=URL, policy="on_demand")
IMMEDIATE = RemoteConfig(url=URL, retries=0)


def _files(n: int, tag: str = "") -> dict[str, bytes]:
    return {f"dir{i % 10}/file-{i:06}": f"{tag}bytes of {i}".encode() for i in range(n)}


def _prestore(db, storage, files: dict[str, bytes]) -> None:
    """Put the files' bytes in storage, as an interrupted earlier run of ``db`` would have left them."""
    claim_storage(db, storage)  # that run recorded the storage's owner first
    for data in set(files.values()):
        temp = storage.new_temp_path()
        temp.write_bytes(data)
        storage.put(temp, hashlib.sha256(data).hexdigest())


def _sync(db, storage, files, remote=ON_DEMAND, **options):
    units = (unit for unit in file_units(URL, files))
    return asyncio.run(declarative_version(units, db=db, storage=storage, remote=remote, repository="r", **options))


def _pipeline_statements(db, storage, files, remote, **options) -> list[str]:
    """The statements the pipeline itself sends (not the sync's fixed setup and finish)."""

    async def scenario() -> list[str]:
        async with SyncContext(db, storage, remote, "r", **options) as sync:
            with count_statements(db) as statements:
                await sync.run(sync.source(file_units(URL, files)).pipe(*default_pipeline()))
        assert sync.result is not None and sync.result.added == len(files)
        return statements

    return asyncio.run(scenario())


@pytest.mark.parametrize("remote", [ON_DEMAND, IMMEDIATE], ids=["on_demand", "immediate"])
def test_saving_a_thousand_new_units_takes_at_most_20_statements(db, storage, remote):
    files = _files(1000)
    _prestore(db, storage, files)
    statements = _pipeline_statements(db, storage, files, remote, batch_size=1000, mirror=True)
    assert len(statements) <= 20, statements
    assert count_rows(db, Content) == 1000
    assert count_rows(db, Artifact) == (1000 if remote is IMMEDIATE else 0)


def test_a_whole_sync_costs_at_most_20_statements_per_thousand_units(db, storage):
    files = _files(5000)
    with count_statements(db) as statements:
        result = _sync(db, storage, files, batch_size=1000, mirror=True)
    assert result.added == 5000
    assert len(statements) <= 20 * 5, len(statements)

    churned = dict(list(files.items())[:4500]) | {f"new/{p}": d for p, d in _files(500, tag="new ").items()}
    with count_statements(db) as statements:
        result = _sync(db, storage, churned, batch_size=1000, mirror=True)
    assert (result.added, result.removed) == (500, 500)
    assert len(statements) <= 20 * 5, len(statements)


def test_large_batches_stay_under_the_real_sqlite_limit(tmp_path, storage):
    db = fresh_database("sqlite", tmp_path)
    files = _files(4000)
    _prestore(db, storage, files)
    with count_statements(db) as statements:
        result = _sync(db, storage, files, remote=IMMEDIATE, batch_size=40_000, window=40_000, mirror=True)
    assert result.added == 4000 and count_rows(db, Artifact) == 4000
    widest = max(statements, key=lambda s: s.count("?"))
    assert widest.count("?") <= db.max_params
    assert widest.count("?") >= 4000  # one batch: the whole sync's lookup went in one statement
    db.close()


def test_every_stage_respects_a_small_bound_variable_limit(tight_sqlite, storage):
    db = tight_sqlite
    files = _files(3 * TIGHT_LIMIT)
    _prestore(db, storage, files)
    first = _sync(db, storage, files, remote=IMMEDIATE, batch_size=40_000, window=40_000, mirror=True)
    assert first.added == len(files)
    churned = dict(list(files.items())[TIGHT_LIMIT:]) | _files(TIGHT_LIMIT, tag="new ")
    second = _sync(db, storage, churned, batch_size=40_000, window=40_000, mirror=True)
    assert (second.added, second.removed) == (TIGHT_LIMIT, TIGHT_LIMIT)
    assert version_content(db, "r") == file_set(churned)
    assert version_content(db, "r", 1) == file_set(files)
