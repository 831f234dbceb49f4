"""Task numbers on PostgreSQL: sync jobs only, 1, 2, 3... in job order, never a gap, never renumbered."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from pendingops.db.database import Database
from pendingops.workers.queue import SYNC_TASK, ensure_queue_schema, make_app
from pendingops.workers.task_numbers import job_of, number_of, number_tasks
from pendingops.workers.tasks import task_views
from tests.conftest import POSTGRES_URL, fresh_database
from tests.workers.helpers import wait_for

pytestmark = pytest.mark.postgres

#: what happens to the queue: a sync queued, an internal job queued (a schedule check), the numbers
#: given, or a sync queued and numbered in a transaction that is rolled back
STEPS = st.lists(st.sampled_from(["sync", "internal", "number", "abandoned"]), max_size=12)


def queue_database(tmp_path: Path) -> Database:
    db = fresh_database("postgresql", tmp_path)
    ensure_queue_schema(db, make_app(POSTGRES_URL))
    return db


def add_job(conn: Connection, task_name: str) -> int:
    return conn.execute(
        text("INSERT INTO procrastinate_jobs (queue_name, task_name) VALUES ('default', :name) RETURNING id"),
        {"name": task_name},
    ).scalar_one()


def numbered(conn: Connection) -> list[tuple[int, int]]:
    rows = conn.execute(text("SELECT job_id, number FROM sync_task ORDER BY job_id"))
    return [(row.job_id, row.number) for row in rows]


def test_numbers_follow_the_sync_jobs_in_order_whatever_else_is_queued_or_rolled_back(tmp_path: Path) -> None:
    db = queue_database(tmp_path)

    @given(STEPS)
    def check(steps: list[str]) -> None:
        with db.engine.begin() as conn:
            conn.execute(text("TRUNCATE procrastinate_jobs, sync_task RESTART IDENTITY CASCADE"))
        given_before: dict[int, int] = {}
        for step in steps:
            if step == "abandoned":
                with db.engine.connect() as conn:
                    number_tasks(conn, SYNC_TASK)
                    number_of(conn, add_job(conn, SYNC_TASK), SYNC_TASK)
                    conn.rollback()
                continue
            with db.engine.begin() as conn:
                if step == "number":
                    number_tasks(conn, SYNC_TASK)
                    given_before = dict(numbered(conn))
                else:
                    add_job(conn, SYNC_TASK if step == "sync" else "pendingops.schedule_tick")
        with db.engine.begin() as conn:
            number_tasks(conn, SYNC_TASK)
            now = numbered(conn)
            syncs = conn.execute(
                text("SELECT id FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"), {"t": SYNC_TASK}
            ).scalars()
            assert [job for job, _ in now] == list(syncs)  # every sync job, and nothing else
        assert [number for _, number in now] == list(range(1, len(now) + 1))  # in job order, no gap
        assert {job: number for job, number in now if job in given_before} == given_before  # never renumbered

    try:
        check()
    finally:
        db.close()


def test_syncs_queued_at_once_get_distinct_numbers_without_gaps(tmp_path: Path) -> None:
    db = queue_database(tmp_path)
    start = threading.Barrier(8)
    got: list[int] = []

    def enqueue() -> None:
        with db.engine.begin() as conn:
            job = add_job(conn, SYNC_TASK)
        start.wait(60)
        got.append(db.transact(number_of, job, SYNC_TASK))

    try:
        threads = [threading.Thread(target=enqueue) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert sorted(got) == list(range(1, 9))
        with pytest.raises(ValueError, match=r"^no task 9$"):
            db.transact(job_of, 9, SYNC_TASK)
    finally:
        db.close()


def test_a_task_whose_job_the_queue_removed_is_no_task(tmp_path: Path) -> None:
    db = queue_database(tmp_path)
    try:
        with db.engine.begin() as conn:
            job = add_job(conn, SYNC_TASK)
        assert db.transact(number_of, job, SYNC_TASK) == 1
        assert [view.task for view in task_views(db)] == [1]
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM procrastinate_jobs WHERE id = :id"), {"id": job})
        assert task_views(db) == []
        with pytest.raises(ValueError, match=r"^no task 1$"):
            task_views(db, number=1)
    finally:
        db.close()


def test_numbering_waits_for_a_numbering_in_progress_even_when_jobs_commit_out_of_order(tmp_path: Path) -> None:
    """Job ids are taken at insert, so a lower id can commit later: the numberings must still take turns."""
    db = queue_database(tmp_path)
    late = db.engine.connect()  # a job queued first (lower id) whose transaction commits last
    early = db.engine.connect()  # a numbering that has not committed yet
    try:
        late.begin()
        six = add_job(late, SYNC_TASK)
        with db.engine.begin() as conn:
            seven = add_job(conn, SYNC_TASK)
        early.begin()
        number_tasks(early, SYNC_TASK)  # numbers seven 1; six is not visible yet
        late.commit()
        got: list[object] = []

        def number_six() -> None:
            try:
                got.append(db.transact(number_of, six, SYNC_TASK))
            except Exception as exc:  # the test reports it
                got.append(exc)

        thread = threading.Thread(target=number_six)
        thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        with db.engine.connect() as watcher:
            wait_for(lambda: watcher.execute(text(waiting)).scalar(), "the second numbering to wait")
        early.commit()
        thread.join(120)
        assert got == [2]
        with db.engine.connect() as conn:
            assert dict(numbered(conn)) == {seven: 1, six: 2}
    finally:
        late.close()
        early.close()
        db.close()
