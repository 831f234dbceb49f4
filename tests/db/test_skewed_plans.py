"""Plans that skewed statistics cannot degrade: the membership statements of a rollback and of version
removal find a unit's rows through the content index, never by walking a repository's rows through a
(repository, ...) index (statistics gathered before a repository grew call it nearly empty, and such a
probe per unit is quadratic). Checked on the statements really executed, on both databases."""

from __future__ import annotations

from sqlalchemy import event, text

from pendingops import LocalStorage
from pendingops.db.statistics import refresh_statistics
from pendingops.maintenance.lifecycle import apply_retention, rollback
from tests.db.test_statistics import _numbers, _sync

#: the indexes led by the repository column
_BY_REPOSITORY = ("repository_content_removed", "repository_content_added", "repository_content_lookup",
                  "repository_content_current")  # fmt: skip


def _executed(db, marker: str, work) -> list[tuple[str, object]]:
    """The statements containing ``marker`` that ``work()`` executed, with their parameters."""
    seen: list[tuple[str, object]] = []

    def note(_conn, _cursor, statement, parameters, _context, _many):
        if marker in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        work()
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    return seen


def _walks_a_repository(plan: str) -> list[str]:
    """The accesses of ``plan`` through a repository index that do not name the content: each walks
    a whole repository (or a version range of it) instead of a unit's few rows."""
    lines = plan.splitlines()
    walks = []
    for at, line in enumerate(lines):
        index = next((name for name in _BY_REPOSITORY if name in line), None)
        if index is None:
            continue
        # SQLite names the condition on the same line, PostgreSQL on the Index Cond line that follows
        following = (later for later in lines[at + 1 :] if "Index Cond" in later)
        condition = line if "USING" in line else next(following, "")
        if "content_id" not in condition:
            walks.append(line.strip())
    return walks


def _plan(db, statement: str, parameters: object) -> str:
    explain = "EXPLAIN " if db.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    with db.engine.begin() as conn:  # EXPLAIN of an UPDATE runs nothing; rolled back all the same
        plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(explain + statement, parameters))
        conn.rollback()
    return plan


def _history(db, tmp_path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    paths = [f"p/{i}" for i in range(60)]
    _sync(db, storage, "r", paths)
    _sync(db, storage, "r", paths[:10], mirror=True)
    _sync(db, storage, "r", paths[:10] + [f"q/{i}" for i in range(20)])


def test_a_rollback_ends_the_rows_of_what_came_after_through_the_content_index(db, tmp_path):
    _history(db, tmp_path)
    updates = _executed(db, "UPDATE repository_content", lambda: rollback(db, "r", 1))
    assert updates, "the rollback ended no rows"
    for statement, parameters in updates:
        plan = _plan(db, statement, parameters)
        assert not _walks_a_repository(plan), plan


def test_removing_versions_joins_adjacent_rows_through_the_content_index(db, tmp_path):
    _history(db, tmp_path)
    rollback(db, "r", 1)
    joins = _executed(db, "AS starting", lambda: apply_retention(db, "r", 1))
    assert joins, "no adjacent rows were looked for"
    for statement, parameters in joins:
        plan = _plan(db, statement, parameters)
        assert "starting" in plan, plan
        assert not [walk for walk in _walks_a_repository(plan) if "starting" in walk], plan


def test_the_history_is_real(db, tmp_path):
    """The scenario above ends rows and joins them: its versions hold what was synced."""
    _history(db, tmp_path)
    done = rollback(db, "r", 1)
    assert (done.added, done.removed) == (50, 20)


def test_with_statistics_that_predate_a_repository_the_join_of_adjacent_rows_stays_a_probe(db, tmp_path):
    """The statistics describe a 60-unit repository; then 20,000 units of a repository they never saw
    end and start again at the version the join looks at (written without statistics). The join
    retention executed, asked for that repository, finds each later row through the content index,
    not by walking the repository (PostgreSQL's plan with skewed statistics, before the fix)."""
    _history(db, tmp_path)
    rollback(db, "r", 1)
    joins = _executed(db, "AS starting", lambda: apply_retention(db, "r", 1))
    refresh_statistics(db, {"repository_content": 10**6, "content": 10**6})
    statement, parameters = joins[-1]
    numbers = _numbers(db, 20_000)
    with db.engine.begin() as conn:
        repo = conn.execute(text("SELECT id FROM repository WHERE name = 'r'")).scalar_one()
        # the statement again, for a repository the statistics never saw (as one filled since)
        conn.execute(text("INSERT INTO repository (id, name, created_at) VALUES (99, 'grown', CURRENT_TIMESTAMP)"))
        conn.execute(
            text(
                "INSERT INTO content (id, content_type, key_digest, created_at) "
                f"SELECT 100000 + x, 'file', 'k' || x, CURRENT_TIMESTAMP FROM ({numbers}) AS s"
            )
        )
        for added, removed in (("1", "4"), ("4", "NULL")):
            conn.execute(
                text(
                    "INSERT INTO repository_content (id, repository_id, content_id, version_added, version_removed) "
                    f"SELECT {200000 if removed == 'NULL' else 100000} + x, 99, 100000 + x, {added}, {removed} "
                    f"FROM ({numbers}) AS s"
                )
            )
    if isinstance(parameters, dict):
        parameters = {name: 99 if value == repo else value for name, value in parameters.items()}
    else:
        parameters = tuple(99 if value == repo else value for value in parameters)
    plan = _plan(db, statement, parameters)
    assert "99" in plan or db.dialect == "sqlite", plan
    assert not [walk for walk in _walks_a_repository(plan) if "starting" in walk], plan
