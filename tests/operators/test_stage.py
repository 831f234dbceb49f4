"""What every operator promises: each unit out exactly once, failed units untouched, own steps anywhere."""

from __future__ import annotations

import asyncio

from reactivex import operators as rx_ops

from pendingops import PendingContent
from pendingops import operators as ops
from tests.conftest import file_set, sync_served, version_content
from tests.remote_server import RemoteServer

FILES = {f"f{i:02}": f"file {i}".encode() for i in range(20)}


def _sync(db, storage, pipeline, files=FILES, **options):
    server = RemoteServer(files)
    return sync_served(db, storage, server, pipeline, files, **options), server


def test_every_operator_emits_each_unit_exactly_once(db, storage):
    taps: dict[str, list[int]] = {}

    def tap(name: str):
        taps[name] = []
        return rx_ops.do_action(lambda unit: taps[name].append(id(unit)))

    async def noop(unit: PendingContent) -> None:
        await asyncio.sleep(0)

    async def noop_batch(units: list[PendingContent]) -> None:
        await asyncio.sleep(0)

    pipeline = [
        tap("source"),
        ops.query_existing_artifacts(),
        tap("artifacts"),
        ops.query_existing_content(),
        tap("content"),
        ops.enrich(noop),
        tap("enrich"),
        ops.enrich_batch(noop_batch, size=3),
        tap("batch"),
        ops.download(n=3),
        tap("download"),
        ops.save(),
        tap("save"),
        ops.associate(),
        tap("associate"),
    ]
    result, _ = _sync(db, storage, pipeline, batch_size=6)
    assert result.added == 20
    source = sorted(taps["source"])
    assert len(source) == 20
    assert all(sorted(ids) == source for ids in taps.values())


def test_failed_units_pass_through_every_later_stage_untouched(db, storage):
    async def fail_some(unit: PendingContent) -> None:
        if unit.fields["relative_path"] in ("f01", "f02"):
            unit.fail("gate", "refused")

    after: list[PendingContent] = []
    pipeline = [ops.enrich(fail_some), *(ops.dedup(), ops.download(), ops.save()), rx_ops.do_action(after.append)]
    result, server = _sync(db, storage, pipeline, on_error="skip")
    failed = [u for u in after if u.failed]
    assert sorted(u.fields["relative_path"] for u in failed) == ["f01", "f02"]
    assert all(u.content_id is None and not u.artifacts[0].is_stored for u in failed)
    assert all((u.failed_stage, u.error) == ("gate", "refused") for u in failed)
    assert server.requests["f01"] == server.requests["f02"] == 0
    assert result.added == 18


def test_a_plugins_own_rx_step_fits_anywhere(db, storage):
    def rename(unit: PendingContent) -> PendingContent:
        path = "renamed/" + unit.fields["relative_path"]
        unit.fields["relative_path"] = unit.artifacts[0].relative_path = path
        return unit

    result, _ = _sync(db, storage, [ops.download(), rx_ops.map(rename), ops.dedup(), ops.save()])
    assert result.added == 20
    assert version_content(db, "r") == file_set({f"renamed/{p}": d for p, d in FILES.items()})


def test_a_per_unit_stage_runs_its_units_on_at_most_n_worker_tasks(db, storage):
    # The source hands all 20 units on before the loop runs anything else: 2 workers take them all.
    tasks: set[asyncio.Task] = set()
    running = peak = 0

    async def step(unit: PendingContent) -> None:
        nonlocal running, peak
        tasks.add(asyncio.current_task())
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1

    result, _ = _sync(db, storage, [ops.enrich(step, n=2), ops.download(), ops.save()])
    assert result.added == 20
    assert peak == 2
    assert len(tasks) == 2
