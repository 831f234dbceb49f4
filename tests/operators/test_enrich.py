"""enrich / enrich_batch: plugin steps that fail only their units and never hold up the others."""

from __future__ import annotations

import asyncio

import pytest

from pendingops import PendingContent, UnitError
from pendingops import operators as ops
from tests.conftest import file_set, sync_served, version_content
from tests.remote_server import RemoteServer

FILES = {f"f{i:02}": f"file {i}".encode() for i in range(12)}
BAD = {"f03", "f07"}


def _path(unit: PendingContent) -> str:
    return unit.fields["relative_path"]


def _sync(db, storage, server: RemoteServer, pipeline, files=FILES, **options):
    return sync_served(db, storage, server, pipeline, files, **options)


def test_an_enrich_failure_fails_only_its_unit(db, storage):
    async def check(unit: PendingContent) -> None:
        await asyncio.sleep(0)
        if _path(unit) == "f03":
            raise UnitError("metadata says no")
        if _path(unit) == "f07":
            raise KeyError("version")
        unit.extra["checked"] = True

    server = RemoteServer(FILES)
    pipeline = [ops.dedup(), ops.enrich(check, name="metadata"), ops.download(), ops.save()]
    result = _sync(db, storage, server, pipeline, on_error="skip")
    failures = {f.unit.split(",")[0]: (f.stage, f.reason) for f in result.failures}
    assert failures == {"file f03": ("metadata", "metadata says no"), "file f07": ("metadata", "KeyError: 'version'")}
    assert result.added == 10 and result.failed_count == 2
    # A failed unit is passed through untouched: never downloaded, never saved.
    assert server.requests["f03"] == server.requests["f07"] == 0
    assert version_content(db, "r") == file_set({p: d for p, d in FILES.items() if p not in BAD})


def test_enrich_runs_at_most_n_at_once(db, storage):
    running = 0
    most = 0

    async def step(unit: PendingContent) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        for _ in range(5):
            await asyncio.sleep(0)
        running -= 1

    result = _sync(db, storage, RemoteServer(FILES), [ops.enrich(step, n=3), *_default()])
    assert result.added == 12 and most == 3 and running == 0


def test_an_enrich_batch_failure_fails_only_that_batch(db, storage):
    batches: list[list[str]] = []

    async def lookup(units: list[PendingContent]) -> None:
        batches.append([_path(u) for u in units])
        await asyncio.sleep(0)
        if BAD & {_path(u) for u in units}:
            raise ConnectionError("index unavailable")

    server = RemoteServer(FILES)
    result = _sync(db, storage, server, [ops.enrich_batch(lookup, size=3), *_default()], on_error="skip")
    assert sorted(p for batch in batches for p in batch) == sorted(FILES)
    assert all(len(batch) <= 3 for batch in batches)
    failed = {p for batch in batches if BAD & set(batch) for p in batch}
    assert {f.unit.split(",")[0].removeprefix("file ") for f in result.failures} == failed
    assert {(f.stage, f.reason) for f in result.failures} == {("enrich", "ConnectionError: index unavailable")}
    assert version_content(db, "r") == file_set({p: d for p, d in FILES.items() if p not in failed})
    assert all(server.requests[p] == 0 for p in failed)


def test_enrich_batch_can_fail_single_units(db, storage):
    async def lookup(units: list[PendingContent]) -> None:
        for unit in units:
            if _path(unit) in BAD:
                unit.fail("index", "not in the index")

    result = _sync(db, storage, RemoteServer(FILES), [ops.enrich_batch(lookup, size=5), *_default()], on_error="skip")
    assert {(f.unit.split(",")[0], f.stage, f.reason) for f in result.failures} == {
        ("file f03", "index", "not in the index"),
        ("file f07", "index", "not in the index"),
    }
    assert result.added == 10


def test_enrich_only_sees_the_units_it_wants(db, storage):
    seen: list[str] = []
    batched: list[str] = []

    async def step(unit: PendingContent) -> None:
        seen.append(_path(unit))

    async def batch_step(units: list[PendingContent]) -> None:
        batched.extend(_path(u) for u in units)

    odd = lambda unit: int(_path(unit)[1:]) % 2 == 1  # noqa: E731
    pipeline = [ops.enrich(step, when=odd), ops.enrich_batch(batch_step, when=lambda u: not odd(u)), *_default()]
    result = _sync(db, storage, RemoteServer(FILES), pipeline)
    assert result.added == 12
    assert sorted(seen) == [p for p in sorted(FILES) if int(p[1:]) % 2]
    assert sorted(batched) == [p for p in sorted(FILES) if not int(p[1:]) % 2]


def test_a_slow_enrich_does_not_hold_up_other_units_downloads(db, storage):
    """f00's enrich waits until every other file was downloaded: possible only if they go on without it."""
    server = RemoteServer(FILES)
    others = {p for p in FILES if p != "f00"}

    async def slow(unit: PendingContent) -> None:
        if _path(unit) != "f00":
            return
        server.events.append(("enrich-start", "f00"))
        async with asyncio.timeout(60):  # a safety net: the order below is the assertion
            while not others <= {path for kind, path in server.events if kind == "end"}:
                await asyncio.sleep(0.005)
        server.events.append(("enrich-end", "f00"))

    result = _sync(db, storage, server, [ops.dedup(), ops.enrich(slow), ops.download(n=2), ops.save()])
    assert result.added == 12
    order = server.events
    enrich_start, enrich_end = order.index(("enrich-start", "f00")), order.index(("enrich-end", "f00"))
    ends = [order.index(("end", p)) for p in others]
    starts = [order.index(("start", p)) for p in others]
    assert enrich_start < min(starts)  # other downloads began while f00's enrich was running...
    assert max(ends) < enrich_end  # ...and all of them finished before it was done
    assert order.index(("start", "f00")) > enrich_end  # f00 itself is fetched only after its enrich


def test_enrich_needs_positive_limits():
    with pytest.raises(ValueError):
        ops.enrich(asyncio.sleep, n=0)
    with pytest.raises(ValueError):
        ops.enrich_batch(asyncio.sleep, size=0)
    with pytest.raises(ValueError):
        ops.enrich_batch(asyncio.sleep, n=0)


def _default():
    return [ops.dedup(), ops.download(), ops.save()]
