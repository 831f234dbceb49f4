"""A hypothesis property: random pipelines of stock reactivex operators interleaved with ours.

Each example builds a pipeline from a vocabulary of stock operators (filter, map, distinct, delay,
buffer_* + flat_map, group_by + flat_map, take, skip) placed around dedup, download and save, with
a random window and batch size, and syncs it (mirror or additive, over a random base version)
against a real server on both databases. Examples share the test's database and storage, each in a
repository of its own with bytes of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import operators as rxo

from pendingops import PendingContent, RemoteConfig, SyncContext, default_pipeline
from pendingops import operators as ops
from tests.conftest import file_set, file_units, version_content
from tests.remote_server import RemoteServer

#: a sync that would otherwise hang fails the example after this long
BOUND = 60.0


def _hash(unit: PendingContent, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{unit.fields['relative_path']}".encode()).hexdigest()[:8], 16)


def _drain(units: deque[PendingContent]) -> Iterator[PendingContent]:
    while units:
        yield units.popleft()


def _flatten() -> Any:
    return rxo.flat_map(lambda batch: batch)


#: name -> (seed -> stock operators); the seed picks predicates, keys and sizes
VOCABULARY: dict[str, Callable[[int], list[Any]]] = {
    "filter": lambda seed: [rxo.filter(lambda u: _hash(u, seed) % 3 != 0)],
    "map": lambda seed: [rxo.map(lambda u: u)],
    "distinct": lambda seed: [rxo.distinct(lambda u: _hash(u, seed) % 7)],
    "delay": lambda seed: [rxo.delay(0.001 * (seed % 3))],
    "buffer_with_count": lambda seed: [rxo.buffer_with_count(1 + seed % 9), _flatten()],
    "buffer_with_time": lambda seed: [rxo.buffer_with_time(0.002 * (1 + seed % 3)), _flatten()],
    "buffer_with_time_or_count": lambda seed: [rxo.buffer_with_time_or_count(0.005, 1 + seed % 6), _flatten()],
    "group_by": lambda seed: [rxo.group_by(lambda u: _hash(u, seed) % 3), rxo.flat_map(lambda group: group)],
    "take": lambda seed: [rxo.take(seed % 25)],
    "skip": lambda seed: [rxo.skip(seed % 6)],
}

stock_runs = st.lists(st.tuples(st.sampled_from(sorted(VOCABULARY)), st.integers(0, 1000)), max_size=2)
shared_fixtures = settings(
    max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@shared_fixtures
@given(
    count=st.integers(0, 24),
    base=st.sets(st.integers(0, 23)),
    slots=st.lists(stock_runs, min_size=4, max_size=4),
    mirror=st.booleans(),
    window=st.integers(1, 20),
    batch_size=st.integers(1, 10),
    lazy=st.booleans(),
)
def test_any_pipeline_of_stock_operators_and_ours_ends_with_the_units_that_reached_its_end(
    db, storage, count, base, slots, mirror, window, batch_size, lazy
):
    salt = uuid.uuid4().hex
    repository = f"r-{salt}"
    files = {f"f{i:02d}": f"{salt}:{i}".encode() for i in range(count)}
    base_files = {path: files[path] for path in (f"f{i:02d}" for i in base) if path in files}
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    reached: list[PendingContent] = []

    def on_loop(_: Any) -> None:
        threads.add(threading.get_ident())

    async def probe(unit: PendingContent) -> None:
        threads.add(threading.get_ident())

    ours = [ops.dedup(), ops.download(), ops.save()]
    steps: list[Any] = []
    for slot, stock in enumerate(slots):
        for name, seed in stock:
            steps += [*VOCABULARY[name](seed), rxo.do_action(on_loop)]
        if slot < len(ours):
            steps.append(ours[slot])
    steps += [ops.enrich(probe), rxo.do_action(reached.append)]

    async def scenario() -> SyncContext:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url, retries=0)
            async with SyncContext(db, storage, remote, repository, batch_wait=0.005) as first:
                await first.run(first.source(file_units(server.manifest_url, base_files)).pipe(*default_pipeline()))
            units = file_units(server.manifest_url, files)
            # Lazy: nothing but the pipeline holds a unit once it is pulled, so a dropped one is garbage at once.
            source = _drain(deque(units)) if lazy else units
            del units
            options = {"mirror": mirror, "window": window, "batch_size": batch_size, "batch_wait": 0.005}
            async with SyncContext(db, storage, remote, repository, **options) as sync:
                await asyncio.wait_for(sync.run(sync.source(source).pipe(*steps)), BOUND)
            return sync

    sync = asyncio.run(scenario())
    paths = {unit.fields["relative_path"] for unit in reached}
    assert len(paths) == len(reached), "a unit reached the end twice"
    declared = {path: files[path] for path in paths}
    expected = file_set(declared) if mirror else file_set(base_files) | file_set(declared)
    assert version_content(db, repository) == expected
    assert sync.result is not None and sync.result.filtered == sync.flow.entered - len(reached)
    assert (sync.flow.window.held, sync.byte_budget.held) == (0, 0)
    assert threads <= {loop_thread}
