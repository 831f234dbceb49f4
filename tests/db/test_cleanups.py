"""The record of orphan cleanups: a sync compares the latest one before and after an outage."""

from __future__ import annotations

from sqlalchemy import select

from pendingops.db.cleanups import latest_cleanup, record_cleanup_end, record_cleanup_start
from pendingops.db.schema import StoreCleanup


def test_the_latest_cleanup_is_the_last_one_started_and_its_end_records_what_went(db) -> None:
    assert db.transact(latest_cleanup) == 0  # none yet
    first = db.transact(record_cleanup_start)
    assert db.transact(latest_cleanup) == first  # counted from its start, before it deletes anything
    db.transact(record_cleanup_end, first, {"content": 2, "artifacts": 3, "bytes": 30, "stray_files": 1})
    second = db.transact(record_cleanup_start)
    assert second > first and db.transact(latest_cleanup) == second
    table = StoreCleanup.__table__
    with db.engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(select(table))}
    ended = rows[first]
    assert (ended.content, ended.artifacts, ended.bytes, ended.stray_files) == (2, 3, 30, 1)
    assert ended.finished_at is not None and ended.finished_at >= ended.started_at
    assert rows[second].finished_at is None
