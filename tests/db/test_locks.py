"""Repository and store locks: a cancelled wait leaves nothing held; in-memory SQLite locks too."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from pendingops import RemoteConfig, SyncContext, declarative_version, default_pipeline, open_database
from pendingops.db.locks import LockBusy, RepositoryLock, StoreLock
from tests.conftest import file_units, fresh_database, second_database, version_content, version_numbers

URL = "http://127.0.0.1:9/PULP_MANIFEST"  # never contacted: on_demand syncs download nothing
ON_DEMAND = RemoteConfig(url=URL, policy="on_demand")


#: repository locks in this test's own database (other test sessions share the server)
_OUR_ADVISORY_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1885695588"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)



async def _lock_is_free_soon(db, repository_id: int) -> None:
    """Take and release the lock without waiting, retrying for a generous while (the cleanup of a
    cancelled wait runs in the background); fail if it never becomes free."""
    for _ in range(600):
        lock = RepositoryLock(db, repository_id)
        try:
            await lock.acquire(wait=False)
        except LockBusy:
            await asyncio.sleep(0.05)
            continue
        lock.release()
        return
    pytest.fail("the repository lock stayed held after every sync ended")


def test_a_sync_cancelled_while_waiting_for_the_lock_never_takes_it_later(db, storage):
    """Sync A holds repository r; sync B (another engine) waits under a deadline and is cancelled; A
    finishes. Later syncs of r run, and no advisory lock is left granted to B's connections."""
    other = second_database(db)
    holding, finish = asyncio.Event(), asyncio.Event()

    async def sync_a() -> None:
        async with SyncContext(db, storage, ON_DEMAND, "r", batch_wait=0.01) as sync:
            holding.set()
            await finish.wait()
            await sync.run(sync.source(file_units(URL, {"a": b"a"})).pipe(*default_pipeline()))

    async def scenario() -> int:
        first = asyncio.ensure_future(sync_a())
        await holding.wait()
        late = declarative_version(
            file_units(URL, {"b": b"b"}), db=other, storage=storage, remote=ON_DEMAND, repository="r", batch_wait=0.01
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(late, 0.3)  # A holds the lock until told to finish: B must time out
        finish.set()
        await first
        with db.engine.connect() as conn:
            repository_id = conn.execute(text("SELECT id FROM repository WHERE name = 'r'")).scalar_one()
        await _lock_is_free_soon(db, repository_id)
        result = await declarative_version(
            file_units(URL, {"c": b"c"}),
            db=db,
            storage=storage,
            remote=ON_DEMAND,
            repository="r",
            batch_wait=0.01,
            wait_for_lock=False,
        )
        assert result.version.number == 2
        return repository_id

    try:
        repository_id = asyncio.run(scenario())
        if db.dialect == "postgresql":
            with db.engine.connect() as conn:
                granted = conn.execute(
                    text(_OUR_ADVISORY_LOCKS + " AND objid = :key AND granted"),
                    {"key": repository_id},
                ).scalar_one()
            assert granted == 0
    finally:
        other.close()
    assert version_numbers(db, "r") == [0, 1, 2]


@pytest.mark.postgres
def test_a_cancelled_lock_wait_on_postgresql_is_withdrawn_on_the_server(tmp_path):
    """The cancelled waiter's server-side wait ends too, so it cannot be granted the lock afterwards."""
    db = fresh_database("postgresql", tmp_path)
    other = second_database(db)
    holder = RepositoryLock(db, 4242)
    holder.acquire_blocking(True)

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(RepositoryLock(other, 4242).acquire(), 0.3)
        for _ in range(600):  # the withdrawal runs in the background: give it a generous while
            with db.engine.connect() as conn:
                waiting = conn.execute(
                    text(_OUR_ADVISORY_LOCKS + " AND objid = 4242 AND NOT granted")
                ).scalar_one()
            if not waiting:
                return
            await asyncio.sleep(0.05)
        pytest.fail("the cancelled wait is still queued on the server")

    try:
        asyncio.run(scenario())
        holder.release()
        asyncio.run(_lock_is_free_soon(db, 4242))
    finally:
        if holder.held:
            holder.release()
        other.close()
        db.close()


def test_in_memory_sqlite_runs_syncs_of_one_repository_one_at_a_time(storage):
    """Two concurrent syncs of one repository on ``sqlite://``: the second waits for the first, so the
    versions are 1 and 2, each with its own additions."""
    db = open_database("sqlite://")
    first_files = {f"a{i}": f"a{i}".encode() for i in range(30)}
    second_files = {f"b{i}": f"b{i}".encode() for i in range(20)}

    async def sync(files):
        return await declarative_version(
            file_units(URL, files),
            db=db,
            storage=storage,
            remote=ON_DEMAND,
            repository="r",
            batch_size=5,
            batch_wait=0.01,
        )

    async def scenario():
        return await asyncio.gather(sync(first_files), sync(second_files))

    try:
        one, two = asyncio.run(scenario())
        assert sorted([one.version.number, two.version.number]) == [1, 2]
        assert sorted([one.added, two.added]) == [20, 30]
        assert version_numbers(db, "r") == [0, 1, 2]
        assert len(version_content(db, "r")) == 50
    finally:
        db.close()


def test_a_repository_lock_is_exclusive_and_the_store_lock_shared(db):
    """Two holders of one repository's lock never coexist; syncs share the store lock; orphan cleanup's
    exclusive store lock excludes them."""
    other = second_database(db)

    async def scenario() -> None:
        first = RepositoryLock(db, 7)
        await first.acquire(wait=False)
        with pytest.raises(LockBusy):
            await RepositoryLock(other, 7).acquire(wait=False)
        first.release()
        shared = [StoreLock(db, shared=True), StoreLock(other, shared=True)]
        for lock in shared:
            await lock.acquire(wait=False)
        with pytest.raises(LockBusy):
            await StoreLock(other, shared=False).acquire(wait=False)
        for lock in shared:
            lock.release()

    try:
        asyncio.run(scenario())
    finally:
        other.close()
