"""Stock reactivex operators placed before or between ours, as a plugin writer would.

Each case syncs 60 files (window 16, batch size 8) against a real server on 127.0.0.1 on both
databases: a mirror resync on top of a version holding half of them, then an additive sync into an
empty repository. Whatever an operator does to the stream (drop units, delay them, regroup them,
move them to another thread), the sync ends, and each version holds exactly the units that reached
the end of the pipeline.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import reactivex as rx
from reactivex import operators as rxo
from reactivex.scheduler import NewThreadScheduler

from pendingops import PendingContent, RemoteConfig, SyncContext, SyncFailed, SyncResult, VersionInfo, default_pipeline
from pendingops import operators as ops
from pendingops.cli.sync import print_summary
from tests.conftest import file_set, file_units, version_content, version_numbers
from tests.remote_server import RemoteServer

FILES = {f"f{i:02d}.txt": f"file {i}\n".encode() for i in range(60)}
OPTIONS = {"window": 16, "batch_size": 8, "batch_wait": 0.01}
#: a sync that would otherwise hang fails the test after this long
BOUND = 60.0

Ops = list[Callable[[rx.Observable[Any]], rx.Observable[Any]]]


def _number(unit: PendingContent) -> int:
    return int(unit.fields["relative_path"][1:3])


def _host(unit: PendingContent) -> str:
    return urlsplit(unit.artifacts[0].url).netloc


def _flatten() -> Any:
    return rxo.flat_map(lambda batch: batch)


def every_other() -> Callable[[rx.Observable[Any]], rx.Observable[Any]]:
    """A plugin writer's own operator, dropping every other unit."""

    def operator(source: rx.Observable[Any]) -> rx.Observable[Any]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            seen = [0]

            def on_next(unit: Any) -> None:
                seen[0] += 1
                if seen[0] % 2:
                    observer.on_next(unit)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return rx.create(subscribe)

    return operator


#: name -> the stock operators placed in the pipeline ("download" in a name: they replace ours)
STOCK: dict[str, Callable[[], Ops]] = {
    "filter": lambda: [rxo.filter(lambda u: _number(u) % 2 == 0)],
    "map": lambda: [rxo.map(lambda u: u)],
    "distinct": lambda: [rxo.distinct(lambda u: _number(u) // 3)],
    "take": lambda: [rxo.take(5)],
    "skip": lambda: [rxo.skip(10)],
    "first": lambda: [rxo.first()],
    "a user's own operator": lambda: [every_other()],
    "delay": lambda: [rxo.delay(0.002)],
    "debounce": lambda: [rxo.debounce(0.002)],
    "throttle_first": lambda: [rxo.throttle_first(0.002)],
    "sample": lambda: [rxo.sample(0.002)],
    "timeout": lambda: [rxo.timeout(30.0)],
    "zip with interval": lambda: [rxo.zip(rx.interval(0.001)), rxo.map(lambda pair: pair[0])],
    "buffer_with_count": lambda: [rxo.buffer_with_count(7), _flatten()],
    "buffer_with_time": lambda: [rxo.buffer_with_time(0.01), _flatten()],
    "buffer_with_time_or_count": lambda: [rxo.buffer_with_time_or_count(0.01, 5), rxo.flat_map(rx.from_iterable)],
    "window_with_count": lambda: [rxo.window_with_count(7), rxo.flat_map(lambda window: window)],
    "window_with_time": lambda: [rxo.window_with_time(0.01), rxo.flat_map(lambda window: window)],
    "group_by": lambda: [rxo.group_by(_host), rxo.flat_map(lambda group: group)],
    "merge(max_concurrent)": lambda: [rxo.map(rx.just), rxo.merge(max_concurrent=2)],
    "concat_map": lambda: [rxo.concat_map(rx.just)],
    "pairwise": lambda: [rxo.pairwise(), rxo.flat_map(lambda pair: pair[1:])],
    "observe_on(NewThreadScheduler)": lambda: [rxo.observe_on(NewThreadScheduler())],
    "subscribe_on(NewThreadScheduler)": lambda: [rxo.subscribe_on(NewThreadScheduler())],
    "group_by + download per host": lambda: [
        rxo.group_by(_host),
        rxo.flat_map(lambda group: group.pipe(ops.download(n=2))),
    ],
}


#: the cases whose stock operators hold our download inside them: placed between dedup and save only
DOWNLOADS_INSIDE = {"group_by + download per host"}
DOWNLOADS_BEFORE = {("before", name) for name in DOWNLOADS_INSIDE}
CASES = [(name, place) for name in STOCK for place in ("before", "between") if (place, name) not in DOWNLOADS_BEFORE]
#: the cases that move emissions to other threads on purpose
THREADED = {"observe_on(NewThreadScheduler)", "subscribe_on(NewThreadScheduler)"}


def pipeline(name: str, place: str, tap: Any = None) -> Ops:
    """Ours with the case's stock operators (then ``tap``) before them, or between download and save."""
    stock = [*STOCK[name](), *([tap] if tap is not None else [])]
    if name in DOWNLOADS_INSIDE:
        return [ops.dedup(), *stock, ops.save()]
    if place == "before":
        return [*stock, ops.dedup(), ops.download(), ops.save()]
    return [ops.dedup(), ops.download(), *stock, ops.save()]


@dataclass
class Outcome:
    sync: SyncContext
    reached: list[PendingContent]
    threads: set[int]

    @property
    def paths(self) -> set[str]:
        return {unit.fields["relative_path"] for unit in self.reached}


async def sync_through(server: RemoteServer, db, storage, repository: str, steps: Ops, **options: Any) -> Outcome:
    """Sync every file through ``steps``, noting the units that reach the end and the threads our steps ran on."""
    outcome = Outcome(None, [], set())  # type: ignore[arg-type]

    async def probe(unit: PendingContent) -> None:
        outcome.threads.add(threading.get_ident())

    units = options.pop("units", None) or file_units(server.manifest_url, FILES)
    remote = RemoteConfig(url=server.manifest_url, retries=0)
    async with SyncContext(db, storage, remote, repository, **{**OPTIONS, **options}) as sync:
        outcome.sync = sync
        steps = [ops.enrich(probe, name="probe"), *steps, ops.enrich(probe, name="probe")]
        await asyncio.wait_for(sync.run(sync.source(units).pipe(*steps, rxo.do_action(outcome.reached.append))), BOUND)
    return outcome


def check(db, repository: str, outcome: Outcome, base: set[str] = frozenset()) -> None:
    """The version holds exactly the units that reached the end (plus the base when additive)."""
    result = outcome.sync.result
    assert result is not None
    assert len(outcome.paths) == len(outcome.reached), "a unit reached the end twice"
    expected = outcome.paths if outcome.sync.mirror else outcome.paths | base
    assert version_content(db, repository) == file_set({p: FILES[p] for p in expected})
    assert result.filtered == outcome.sync.flow.entered - len(outcome.reached)
    assert outcome.sync.progress.stages["filtered"].done == result.filtered
    assert (outcome.sync.flow.window.held, outcome.sync.byte_budget.held) == (0, 0)
    assert outcome.threads == {threading.get_ident()}, "a step ran off the loop's thread"


@pytest.mark.parametrize(("name", "place"), CASES)
def test_a_stock_operator_composes_with_ours(db, storage, name, place):
    """Mirror on top of a version holding f00-f29, then additive into an empty repository."""
    half = {p for p in FILES if int(p[1:3]) < 30}

    stock_threads: set[int] = set()
    tap = rxo.do_action(lambda _: stock_threads.add(threading.get_ident()))

    async def scenario() -> tuple[Outcome, Outcome]:
        async with RemoteServer(dict(FILES)) as server:
            first_half = file_units(server.manifest_url, {p: FILES[p] for p in half})
            await sync_through(server, db, storage, "mirror", default_pipeline(), units=first_half)
            mirrored = await sync_through(server, db, storage, "mirror", pipeline(name, place, tap), mirror=True)
            added = await sync_through(server, db, storage, "additive", pipeline(name, place, tap))
            return mirrored, added

    mirrored, added = asyncio.run(scenario())
    check(db, "mirror", mirrored, half)
    check(db, "additive", added)
    if name not in THREADED:
        assert stock_threads == {threading.get_ident()}, "a stock operator emitted off the loop's thread"
    assert added.reached, f"{name}: no unit reached the end"
    if name == "filter":
        assert added.paths == {p for p in FILES if int(p[1:3]) % 2 == 0} and added.sync.result.filtered == 30


def test_a_source_observable_fed_by_a_thread_is_handed_over_to_the_loop(db, storage):
    def from_a_thread(units: list[PendingContent]) -> rx.Observable[PendingContent]:
        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def feed() -> None:
                for unit in units:
                    observer.on_next(unit)
                observer.on_completed()

            threading.Thread(target=feed).start()

        return rx.create(subscribe)

    async def scenario() -> Outcome:
        async with RemoteServer(dict(FILES)) as server:
            units = from_a_thread(file_units(server.manifest_url, FILES))
            return await sync_through(server, db, storage, "r", [rxo.delay(0.001), *default_pipeline()], units=units)

    outcome = asyncio.run(scenario())
    check(db, "r", outcome)
    assert outcome.paths == set(FILES)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([ops.dedup(), rxo.buffer_with_count(5), ops.save()], "save() received a list, not a PendingContent"),
        ([rxo.group_by(_host), ops.download()], "download() received a GroupedObservable, not a PendingContent"),
    ],
)
def test_a_regrouped_stream_reaching_our_operator_fails_the_sync_in_one_line(db, storage, steps, message):
    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:
            await sync_through(server, db, storage, "r", steps)

    with pytest.raises(SyncFailed) as failed:
        asyncio.run(scenario())
    assert str(failed.value).startswith(message) and "\n" not in str(failed.value)
    assert "flat_map" in str(failed.value)
    assert version_numbers(db, "r") == [0]


def test_the_summary_says_how_many_units_were_filtered():
    out = io.StringIO()
    result = SyncResult(VersionInfo("r", 2, 30, 0, 30, 1), True, 0, 30, 0, [], filtered=30)
    print_summary(result, "http://example.org/", "file", True, None, out)
    assert "  filtered 30: unit(s) an operator dropped, not declared" in out.getvalue().splitlines()


def test_units_parked_in_a_stock_operator_cannot_starve_the_byte_budget(db, storage):
    """Files of 1,000 bytes, a 5,000-byte budget and batches of 7 after download: five downloaded units
    in the buffer hold the whole budget while it waits for two more, which wait for bytes."""
    files = {f"f{i:02d}.txt": bytes([i]) * 1000 for i in range(30)}

    async def scenario() -> SyncContext:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            pipeline = [ops.dedup(), ops.download(n=4), rxo.buffer_with_count(7), _flatten(), ops.save()]
            async with SyncContext(db, storage, remote, "r", max_pending_bytes=5000, batch_wait=0.01) as sync:
                units = file_units(server.manifest_url, files)
                await asyncio.wait_for(sync.run(sync.source(units).pipe(*pipeline)), BOUND)
            return sync

    sync = asyncio.run(scenario())
    assert sync.result is not None and sync.result.added == 30
    assert version_content(db, "r") == file_set(files)
    assert (sync.flow.window.held, sync.byte_budget.held) == (0, 0)


@pytest.mark.parametrize("lazy", [True, False])
def test_a_dropped_unit_gives_its_place_back_when_collected_or_at_a_stall(db, storage, lazy):
    """A filter drops half the units. From a lazy source nothing else holds a dropped unit: its place
    comes back as it is garbage collected. The units of a list are held by the list: their places come
    back once they have sat outside our operators while the source waits."""

    async def scenario() -> Outcome:
        async with RemoteServer(dict(FILES)) as server:
            units = file_units(server.manifest_url, FILES)
            source = _drain(deque(units)) if lazy else units
            del units
            return await sync_through(server, db, storage, "r", pipeline("filter", "before"), units=source)

    outcome = asyncio.run(scenario())
    check(db, "r", outcome)
    flow = outcome.sync.flow
    assert outcome.sync.result is not None and outcome.sync.result.filtered == 30
    if lazy:
        assert (flow.collected, flow.given_back_at_stall) == (30, 0)
    else:
        assert flow.collected == 0 and flow.given_back_at_stall > 0


def _drain(units: deque[PendingContent]) -> Iterator[PendingContent]:
    while units:
        yield units.popleft()
