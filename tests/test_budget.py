"""The byte budget: downloads wait while units not yet through the pipeline hold too many bytes."""

from __future__ import annotations

import asyncio

from pendingops import PendingContent, RemoteConfig, SyncContext, UnitError
from pendingops import operators as ops
from pendingops.flow.budget import ByteBudget
from tests.conftest import file_units, version_content, version_numbers
from tests.remote_server import RemoteServer


def test_reserve_waits_for_release_in_order() -> None:
    async def scenario() -> list[str]:
        budget = ByteBudget(100)
        events: list[str] = []
        await budget.reserve(60)

        async def want(name: str, count: int) -> None:
            await budget.reserve(count)
            events.append(f"got {name}")

        first = asyncio.create_task(want("a", 50))
        second = asyncio.create_task(want("b", 10))  # would fit, but must not overtake "a"
        await asyncio.sleep(0)
        events.append("release 60")
        budget.release(60)
        await asyncio.gather(first, second)
        assert budget.held == 60 and budget.max_held == 60
        return events

    assert asyncio.run(scenario()) == ["release 60", "got a", "got b"]


def test_one_reservation_larger_than_the_limit_passes_alone() -> None:
    async def scenario() -> None:
        budget = ByteBudget(10)
        await budget.reserve(1000)
        assert budget.held == 1000
        waiter = asyncio.create_task(budget.reserve(1))
        await asyncio.sleep(0)
        assert not waiter.done()
        budget.release(1000)
        await waiter
        assert budget.held == 1

    asyncio.run(scenario())


def test_a_cancelled_waiter_gives_nothing_away() -> None:
    async def scenario() -> None:
        budget = ByteBudget(10)
        await budget.reserve(10)
        waiter = asyncio.create_task(budget.reserve(5))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        budget.release(10)
        assert budget.held == 0

    asyncio.run(scenario())


def test_a_sync_never_holds_more_downloaded_bytes_than_its_budget(db, storage) -> None:
    files = {f"f{i:02d}": bytes([i]) * 1000 for i in range(40)}

    async def scenario() -> SyncContext:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            # Batches of 25 units (25,000 bytes) cannot fill under a 5,000-byte budget: the save
            # stage must flush on idleness, or the sync would wait forever.
            async with SyncContext(db, storage, remote, "r", batch_size=25, max_pending_bytes=5000) as sync:
                units = file_units(server.manifest_url, files)
                await sync.run(sync.source(units).pipe(ops.dedup(), ops.download(n=8), ops.save()))
            return sync

    sync = asyncio.run(scenario())
    assert sync.result is not None and sync.result.added == 40
    assert 0 < sync.byte_budget.max_held <= 5000
    assert sync.byte_budget.held == 0
    assert len(version_content(db, "r")) == 40


def test_units_failing_after_their_download_give_their_bytes_back(db, storage) -> None:
    """20 downloaded units that all fail afterwards, under a budget of three files: each failed unit
    hands its bytes back, so the sync ends (bytes kept would leave the next download waiting forever)."""
    files = {f"f{i:02d}": bytes([i]) * 1000 for i in range(20)}

    async def refuse(unit: PendingContent) -> None:
        raise UnitError("refused after the download")

    async def scenario() -> tuple[SyncContext, RemoteServer]:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            options = {"on_error": "skip", "max_pending_bytes": 3000, "batch_wait": 0.01}
            async with SyncContext(db, storage, remote, "r", **options) as sync:
                units = file_units(server.manifest_url, files)
                await sync.run(sync.source(units).pipe(ops.dedup(), ops.download(n=2), ops.enrich(refuse), ops.save()))
        return sync, server

    sync, server = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert sync.result is not None and sync.result.failed_count == 20 and not sync.result.created
    assert {f.stage for f in sync.result.failures} == {"enrich"}
    assert sync.byte_budget.held == 0 and 0 < sync.byte_budget.max_held <= 3000
    assert sync.flow.given_back_at_stall == 0  # each failed unit gave its bytes back as it finished
    assert server.file_requests() == 20
    assert version_numbers(db, "r") == [0]
