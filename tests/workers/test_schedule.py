"""Due times of schedules, and claiming them: each due time queued at most once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from pendingops import open_database
from pendingops.db.schema import SyncSchedule
from pendingops.sync import SyncRequest
from pendingops.sync.run import bind
from pendingops.workers.schedule import add_schedule, claim_due, latest_due, next_due, parse_every
from tests.conftest import fresh_database, race

START = datetime(2026, 1, 1, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=10**8).map(lambda s: START + timedelta(seconds=s, microseconds=7))


@given(st.integers(min_value=1, max_value=10**6), moments, moments)
def test_every_due_times_bracket_now(every: int, created: datetime, now: datetime) -> None:
    if now < created:
        created, now = now, created
    last, upcoming = latest_due(every, None, created, now), next_due(every, None, created, now)
    assert now < upcoming and (upcoming - created).total_seconds() % every == 0
    if last is None:
        assert (now - created).total_seconds() < every and upcoming == created + timedelta(seconds=every)
    else:
        assert created < last <= now and upcoming == last + timedelta(seconds=every)


@given(st.sampled_from(["0 */6 * * *", "*/15 * * * *", "30 2 * * 1"]), moments, moments)
def test_cron_due_times_bracket_now(cron: str, created: datetime, now: datetime) -> None:
    if now < created:
        created, now = now, created
    last, upcoming = latest_due(None, cron, created, now), next_due(None, cron, created, now)
    assert now < upcoming
    assert last is None or created < last <= now


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("6h", 21600), ("1d", 86400)])
def test_periods(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "6", "h", "0s", "-1h", "1w"])
def test_bad_periods(text: str) -> None:
    with pytest.raises(ValueError):
        parse_every(text)


@pytest.mark.postgres
def test_two_workers_claiming_at_once_queue_each_due_time_once(tmp_path: Path) -> None:
    db = fresh_database("postgresql", tmp_path)
    other = open_database(db.engine.url.render_as_string(hide_password=False), create=False)
    try:
        request = SyncRequest("r", "http://127.0.0.1:1/M")
        db.transact(add_schedule, "nightly", request, 3600, None, register=bind)
        with db.engine.begin() as conn:
            conn.execute(SyncSchedule.__table__.update().values(created_at=START))
        now = START + timedelta(hours=5, minutes=1)
        first = race(lambda: db.transact(claim_due, now), lambda: other.transact(claim_due, now))
        assert sorted(len(claimed) for claimed in first) == [0, 1]
        assert db.transact(claim_due, now) == []  # the same due time: nothing more
        assert [o.repository for o in db.transact(claim_due, now + timedelta(hours=1))] == ["r"]
    finally:
        other.close()
        db.close()


@pytest.mark.postgres
def test_a_schedule_is_bound_to_its_repository_and_never_creates_one(tmp_path: Path) -> None:
    db = fresh_database("postgresql", tmp_path)
    try:
        db.transact(
            add_schedule,
            "bound",
            SyncRequest("r", "http://127.0.0.1:1/M"),
            3600,
            None,
            register=bind,
        )
        # as an older release stored it: no repository id, and no repository of its name
        db.transact(add_schedule, "old", SyncRequest("gone", "http://127.0.0.1:1/M"), 3600, None)
        with db.engine.begin() as conn:
            conn.execute(SyncSchedule.__table__.update().values(created_at=START))
            repository_id = conn.execute(text("SELECT id FROM repository WHERE name = 'r'")).scalar_one()
        claimed = db.transact(claim_due, START + timedelta(hours=1, minutes=1))
        assert [(r.repository, r.repository_id) for r in claimed] == [("r", repository_id)]
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM repository")).scalars().all() == ["r"]
    finally:
        db.close()
