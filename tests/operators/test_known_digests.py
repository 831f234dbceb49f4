"""query_known_digests: digests learned from what the remote served before, in bounded statements."""

from __future__ import annotations

import asyncio

from reactivex import operators as rx_ops

from pendingops import PendingContent, RemoteConfig, declarative_version
from pendingops import operators as ops
from tests.conftest import TIGHT_LIMIT, file_units

URL = "http://127.0.0.1:9/PULP_MANIFEST"  # never contacted: on demand
REMOTE = RemoteConfig(url=URL, policy="on_demand")


def test_more_urls_than_the_bound_variable_limit_in_one_batch(tight_sqlite, storage):
    db = tight_sqlite
    files = {f"f{i:05}": f"bytes {i}".encode() for i in range(TIGHT_LIMIT + 10)}
    options = {"db": db, "storage": storage, "remote": REMOTE, "batch_size": 40_000, "window": 40_000}
    asyncio.run(declarative_version(file_units(URL, files), repository="a", **options))

    units = file_units(URL, files)
    expected = [u.artifacts[0].sha256 for u in units]
    for unit in units:  # a remote that publishes no digests this time
        unit.artifacts[0].sha256 = None
    seen: list[PendingContent] = []
    pipeline = [ops.query_known_digests(), rx_ops.do_action(seen.append), ops.dedup(), ops.download(), ops.save()]
    result = asyncio.run(declarative_version(units, repository="b", pipeline=pipeline, **options))
    assert result.added == len(files)
    assert [u.artifacts[0].sha256 for u in seen] == expected
