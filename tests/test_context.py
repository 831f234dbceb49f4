"""SyncContext: the source's pacing (window), clear errors, crash recovery, the version's lifecycle."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest
import reactivex
from reactivex import operators as rx_ops
from sqlalchemy import select, text

from pendingops import (
    PendingContent,
    RemoteConfig,
    SyncContext,
    SyncFailed,
    UnitError,
    current_context,
    declarative_version,
)
from pendingops import operators as ops
from pendingops.db.locks import LockBusy, RepositoryLock
from pendingops.db.schema import ProgressReport, RepositoryContent, RepositoryVersion, SyncRun
from pendingops.db.versions import associate_content, begin_version, ensure_repository, version_info
from pendingops.db.writes import save_units
from tests.conftest import (
    count_rows,
    file_unit,
    file_units,
    fresh_database,
    second_database,
    version_content,
    version_numbers,
)
from tests.remote_server import RemoteServer

URL = "http://127.0.0.1:9/PULP_MANIFEST"  # never contacted: these syncs download nothing
ON_DEMAND = RemoteConfig(url=URL, policy="on_demand")
FAST = {"batch_wait": 0.01}


def _unit(i: int) -> PendingContent:
    return file_unit(URL, f"dir/f{i}", f"bytes of {i}".encode())


def _tap(seen: list[PendingContent]) -> ops.Operator:
    return rx_ops.do_action(seen.append)


def _sync(db, storage, source, **options):
    options = {"remote": ON_DEMAND, "repository": "r", **FAST, **options}
    return asyncio.run(declarative_version(source, db=db, storage=storage, **options))


def test_the_source_is_read_lazily_and_never_more_than_window_ahead(db, storage):
    """A million-unit source, a sync cancelled after 3,000 units: the source was read 3,000 + at most
    ``window`` units far, and never more than ``window`` units ahead of the end of the pipeline."""
    window, stop_after = 64, 3000
    pulled = 0
    finished: list[PendingContent] = []
    ahead: list[int] = []
    contexts: list[SyncContext] = []

    def source():
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            ahead.append(pulled - len(finished))
            yield _unit(i)

    async def slow(unit: PendingContent) -> None:
        contexts.append(current_context())
        for _ in range(3):
            await asyncio.sleep(0)

    async def scenario() -> None:
        task = asyncio.current_task()

        def end(unit: PendingContent) -> None:
            finished.append(unit)
            if len(finished) == stop_after:
                task.cancel()

        # associate() placed last, so what passes the tap has come out of the pipeline.
        pipeline = [ops.enrich(slow, n=1000), ops.associate(), rx_ops.do_action(end)]
        await declarative_version(
            source(), db=db, storage=storage, remote=ON_DEMAND, repository="r", pipeline=pipeline, window=window
        )

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())
    ctx = contexts[0]
    assert stop_after <= len(finished) < 2 * stop_after  # units still finishing while the cancel is delivered
    assert pulled <= len(finished) + window
    assert max(ahead) <= window
    assert ctx.max_in_flight == window  # the window was really reached: the bound is what held the source
    assert version_numbers(db, "r") == [0]


def test_window_smaller_than_a_batch_does_not_stall(db, storage):
    ahead: list[int] = []
    done: list[PendingContent] = []
    contexts: list[SyncContext] = []

    def source():
        for i in range(300):
            ahead.append(i + 1 - len(done))
            yield _unit(i)

    async def remember(unit: PendingContent) -> None:
        if not contexts:
            contexts.append(current_context())

    pipeline = [ops.enrich(remember), *(ops.dedup(), ops.download(), ops.save()), ops.associate(), _tap(done)]
    result = _sync(db, storage, source(), pipeline=pipeline, window=10, batch_size=1000)
    assert result.added == 300 and len(done) == 300
    assert max(ahead) <= 10
    assert contexts[0].max_in_flight <= 10
    assert len(version_content(db, "r")) == 300


def test_the_source_rejects_what_is_not_pending_content(db, storage):
    source = [_unit(1), {"relative_path": "x"}, _unit(2)]
    with pytest.raises(SyncFailed, match="the source must yield PendingContent, got dict"):
        _sync(db, storage, source)
    assert version_numbers(db, "r") == [0]


def test_a_failing_source_fails_the_sync(db, storage):
    def source():
        yield _unit(1)
        raise OSError("manifest went away")

    with pytest.raises(SyncFailed, match="OSError: manifest went away") as failed:
        _sync(db, storage, source())
    assert version_numbers(db, "r") == [0]
    # the CLI prints "sync failed: " before the message: the message itself must not say it again
    assert str(failed.value) == "OSError: manifest went away"


@pytest.mark.parametrize(
    "make_operator",
    [
        ops.dedup,
        ops.query_existing_content,
        ops.query_existing_artifacts,
        ops.download,
        ops.save,
        ops.associate,
        lambda: ops.enrich(asyncio.sleep),
        lambda: ops.enrich_batch(asyncio.sleep),
    ],
)
def test_operators_outside_a_sync_raise_a_clear_error(make_operator):
    errors: list[Exception] = []

    async def scenario() -> None:
        reactivex.of(_unit(1)).pipe(make_operator()).subscribe(on_error=errors.append)

    asyncio.run(scenario())
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "must run inside a sync" in str(errors[0]) and "SyncContext" in str(errors[0])
    with pytest.raises(RuntimeError, match="must run inside a sync"):
        current_context()


def test_sources_may_be_iterables_async_iterables_or_observables(db, storage):
    async def agen():
        for i in range(10, 20):
            yield _unit(i)

    _sync(db, storage, [_unit(i) for i in range(10)])
    _sync(db, storage, agen())
    _sync(db, storage, reactivex.from_iterable([_unit(i) for i in range(20, 30)]))
    assert version_numbers(db, "r") == [0, 1, 2, 3]
    assert len(version_content(db, "r")) == 30


def test_an_incomplete_version_left_by_a_crash_is_discarded_and_never_visible(db, storage):
    _sync(db, storage, [_unit(i) for i in range(5)])
    crashed = file_units(URL, {"crashed-in": b"never visible"})

    def crash(conn):
        repo = ensure_repository(conn, "r")
        remote_id = conn.execute(select(SyncRun.__table__.c.remote_id)).scalars().first()
        save_units(conn, db, storage, crashed, remote_id)
        version = begin_version(conn, repo)
        associate_content(conn, db, repo, version, [crashed[0].content_id])
        return version.number

    assert db.transact(crash) == 2
    assert version_numbers(db, "r") == [0, 1]
    assert db.transact(version_info, "r").number == 1
    assert ("crashed-in", crashed[0].fields["sha256"]) not in version_content(db, "r")

    result = _sync(db, storage, [_unit(i) for i in range(5, 7)])
    assert result.version.number == 2 and result.added == 2
    content = version_content(db, "r")
    assert {path for path, _ in content} == {f"dir/f{i}" for i in range(7)}
    assert version_numbers(db, "r") == [0, 1, 2]


def test_leaving_the_context_without_run_makes_no_version(db, storage):
    async def scenario() -> None:
        async with SyncContext(db, storage, ON_DEMAND, "r"):
            pass

    with pytest.raises(SyncFailed, match="without calling run"):
        asyncio.run(scenario())
    assert version_numbers(db, "r") == [0]


def test_a_cancelled_sync_leaves_no_version(db, storage):
    """Cancelled after its units were associated with the new version: the version is discarded."""
    associated = asyncio.Event()

    async def hang(unit: PendingContent) -> None:
        associated.set()
        await asyncio.Event().wait()

    async def scenario() -> None:
        pipeline = [ops.dedup(), ops.save(), ops.associate(), ops.enrich(hang)]
        sync = declarative_version(
            [_unit(1)], db=db, storage=storage, remote=ON_DEMAND, repository="r", pipeline=pipeline, **FAST
        )
        task = asyncio.ensure_future(sync)
        await associated.wait()
        assert count_rows(db, RepositoryContent) == 1  # in the incomplete version
        assert version_numbers(db, "r") == [0]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert count_rows(db, RepositoryContent) == 0
    assert version_numbers(db, "r") == [0]


@pytest.mark.postgres
@pytest.mark.parametrize("taken_meanwhile", [False, True])
def test_a_lost_repository_lock_is_noticed_before_the_version_is_finished(tmp_path, storage, taken_meanwhile):
    """PostgreSQL: the session holding the repository's advisory lock ends mid-sync (a server restart,
    an administrator). Before finishing, the sync notices: it takes the lock again and finishes (its
    version row proves nobody used the repository meanwhile), or, if another process holds the lock
    now, it fails saying so and its version never becomes visible."""
    db = fresh_database("postgresql", tmp_path)
    other = second_database(db)
    # This test database's lock only: other databases on the server have their own syncs.
    repository_lock = (
        "SELECT pg_terminate_backend(pid) FROM pg_locks"
        " WHERE locktype = 'advisory' AND classid = :namespace AND objsubid = 2 AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    LOCK = {"namespace": 0x70656E64}  # the repository locks' namespace
    intruder: list[RepositoryLock] = []

    async def lose_the_lock(units: list[PendingContent]) -> None:
        if intruder or not units:
            return
        ended = await asyncio.to_thread(db.transact, lambda conn: conn.execute(text(repository_lock), LOCK).all())
        assert ended == [(True,)]
        if taken_meanwhile:
            lock = RepositoryLock(other, units[0].extra["repository_id"])
            await lock.acquire(wait=False)
            intruder.append(lock)

    async def note_repository(unit: PendingContent) -> None:
        unit.extra["repository_id"] = current_context().repository_id

    pipeline = [ops.enrich(note_repository), ops.enrich_batch(lose_the_lock), ops.dedup(), ops.save()]
    try:
        try:
            result = _sync(db, storage, [_unit(i) for i in range(5)], pipeline=pipeline)
        except SyncFailed as exc:
            result = exc
        if taken_meanwhile:
            assert isinstance(result, SyncFailed) and "lost the repository lock" in str(result)
            assert version_numbers(db, "r") == [0]
        else:
            assert result.added == 5 and version_numbers(db, "r") == [0, 1]
    finally:
        for lock in intruder:
            lock.release()
        other.close()
    with db.engine.connect() as conn:  # the lock taken again was released at the end
        held = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :namespace AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            LOCK,
        ).scalar_one()
    db.close()
    assert held == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_error": "ignore"}, "on_error must be 'fail' or 'skip'"),
        ({"batch_size": 0}, "batch_size and window must be at least 1"),
        ({"window": 0}, "batch_size and window must be at least 1"),
    ],
)
def test_bad_options_are_refused(db, storage, options, message):
    with pytest.raises(ValueError, match=message):
        SyncContext(db, storage, ON_DEMAND, "r", **options)


def test_progress_and_the_sync_record(db, storage):
    snapshots = []
    _sync(db, storage, [_unit(i) for i in range(8)], mirror=True, on_progress=snapshots.append)
    result = _sync(db, storage, [_unit(i) for i in range(3, 10)], mirror=True, on_progress=snapshots.append)
    final = snapshots[-1]
    assert final.finished
    assert (final.done("seen"), final.done("present"), final.done("saved")) == (7, 5, 2)
    assert (final.done("associated"), final.done("removed"), final.done("failed")) == (2, 3, 0)
    assert final.stages["seen"].total == 7
    assert (result.added, result.removed, result.version.content_count) == (2, 3, 7)
    runs = SyncRun.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(select(runs.c.state, runs.c.version_number).order_by(runs.c.id)).all()
        reports = conn.execute(select(ProgressReport.__table__.c.stage)).scalars().all()
    assert [tuple(r) for r in rows] == [("completed", 1), ("completed", 2)]
    assert {"seen", "saved", "associated", "removed"} <= set(reports)


def test_every_unit_comes_out_exactly_once(db, storage):
    done: list[PendingContent] = []
    units = [_unit(i) for i in range(40)] + [_unit(i) for i in range(5)]  # duplicates too
    pipeline = [ops.dedup(), ops.download(), ops.save(), ops.associate(), _tap(done)]
    result = _sync(db, storage, units, pipeline=pipeline, batch_size=7)
    assert sorted(map(id, done)) == sorted(map(id, units))
    assert result.added == 40
    assert all(u.content_id is not None for u in done)
    ids_by_path: dict[str, set[int]] = {}
    for unit in done:
        ids_by_path.setdefault(unit.fields["relative_path"], set()).add(unit.content_id)
    assert len(ids_by_path) == 40 and all(len(ids) == 1 for ids in ids_by_path.values())


def test_the_failure_report_is_capped_but_the_count_is_exact(db, storage):
    async def refuse(unit: PendingContent) -> None:
        raise UnitError("refused")

    units = (_unit(i) for i in range(1005))
    result = _sync(db, storage, units, on_error="skip", pipeline=[ops.enrich(refuse, n=50)])
    assert result.failed_count == 1005 and len(result.failures) == 1000
    assert {(f.stage, f.reason) for f in result.failures} == {("enrich", "refused")}
    assert not result.created


def test_failed_units_give_their_window_place_back(db, storage):
    """20 units that all fail, under a window of 4: each failed unit frees its place, so the sync ends
    (a place kept would leave the source waiting forever) with every failure counted, nothing in flight."""
    files = {f"gone/{i:02d}": f"gone {i}".encode() for i in range(20)}

    async def scenario() -> tuple[SyncContext, RemoteServer]:
        async with RemoteServer({}) as server:  # the units list files the server does not have: 404
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            async with SyncContext(db, storage, remote, "r", on_error="skip", window=4, **FAST) as sync:
                units = file_units(server.manifest_url, files)
                await sync.run(sync.source(units).pipe(ops.dedup(), ops.download(n=2), ops.save()))
        return sync, server

    sync, server = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert sync.result is not None and sync.result.failed_count == 20
    assert {(f.stage, f.reason.split(": ")[-1]) for f in sync.result.failures} == {("download", "HTTP 404 Not Found")}
    assert not sync.result.created and sync.result.added == 0
    assert sync.in_flight == 0 and sync.max_in_flight == 4  # the window was full, and emptied
    assert sync.flow.given_back_at_stall == 0  # each failed unit gave its place back as it finished
    assert server.file_requests() == 20
    assert version_numbers(db, "r") == [0]


def test_a_failing_progress_callback_does_not_fail_the_sync(db, storage, caplog) -> None:
    def broken(snapshot: object) -> None:
        raise RuntimeError("display gone")

    async def scenario() -> SyncContext:
        units = file_units("file:///nowhere/PULP_MANIFEST", {"a": b"1", "b": b"2"})
        remote = RemoteConfig(url="file:///nowhere/PULP_MANIFEST", policy="on_demand")
        async with SyncContext(db, storage, remote, "r", on_progress=broken, progress_interval=0.001) as sync:
            await asyncio.sleep(0.01)  # let the ticker call the callback
            await sync.run(sync.source(units).pipe(ops.dedup(), ops.save()))
        return sync

    with caplog.at_level("ERROR", logger="pendingops"):
        sync = asyncio.run(scenario())
    assert sync.result is not None and sync.result.added == 2
    assert version_content(db, "r") == {(p, hashlib.sha256(d).hexdigest()) for p, d in {"a": b"1", "b": b"2"}.items()}
    assert caplog.text.count("on_progress callback failed") == 1



def test_a_run_failure_caught_inside_the_context_never_publishes_a_version(db, storage):
    """Mirror, batch_size=5, the first unit fails in enrich, and the caller swallows SyncFailed inside the
    block: the base version's 100 units stay the latest version; nothing is removed."""
    assert _sync(db, storage, [_unit(i) for i in range(100)]).added == 100

    async def fail_first(unit: PendingContent) -> None:
        if unit.fields["relative_path"] == "dir/f0":
            raise UnitError("refused")

    caught: list[SyncFailed] = []

    async def scenario() -> None:
        async with SyncContext(db, storage, ON_DEMAND, "r", mirror=True, batch_size=5, **FAST) as sync:
            units = sync.source([_unit(i) for i in range(100)])
            try:
                await sync.run(units.pipe(ops.enrich(fail_first), ops.dedup(), ops.save()))
            except SyncFailed as exc:
                caught.append(exc)
            with pytest.raises(SyncFailed, match="already failed"):
                await sync.run(sync.source([]))

    with pytest.raises(SyncFailed, match="refused"):
        asyncio.run(scenario())
    assert len(caught) == 1
    assert version_numbers(db, "r") == [0, 1]
    assert len(version_content(db, "r")) == 100
    with db.engine.connect() as conn:
        states = conn.execute(select(SyncRun.__table__.c.state).order_by(SyncRun.__table__.c.id)).scalars().all()
    assert states == ["completed", "failed"]


def test_a_cancelled_exit_keeps_the_lock_until_the_version_is_discarded(db, storage):
    """Cancelling the task while the context's exit waits for the database: the repository lock is held
    until the incomplete version is gone, then released."""
    other = second_database(db)
    gate, busy = threading.Event(), threading.Event()

    def block(conn) -> None:
        busy.set()
        gate.wait(60)

    entered, proceed = asyncio.Event(), asyncio.Event()
    held: list[int] = []

    async def failing_sync() -> None:
        async with SyncContext(db, storage, ON_DEMAND, "r", **FAST) as sync:
            held.append(sync.repository_id)
            entered.set()
            await proceed.wait()
            raise RuntimeError("boom")

    async def scenario() -> None:
        task = asyncio.ensure_future(failing_sync())
        await entered.wait()
        blocker = asyncio.ensure_future(db.run(block))
        await asyncio.to_thread(busy.wait, 60)
        proceed.set()
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(20):
            await asyncio.sleep(0)
        with pytest.raises(LockBusy):  # the version still exists: its lock must still be held
            await RepositoryLock(other, held[0]).acquire(wait=False)
        gate.set()
        await blocker
        with pytest.raises(asyncio.CancelledError):
            await task
        lock = RepositoryLock(other, held[0])
        await lock.acquire(wait=False)
        lock.release()

    try:
        asyncio.run(scenario())
    finally:
        gate.set()
        other.close()
    with db.engine.connect() as conn:
        versions = conn.execute(select(RepositoryVersion.__table__.c.number)).scalars().all()
    assert versions == [0]  # the incomplete version 1 was discarded before the lock went
