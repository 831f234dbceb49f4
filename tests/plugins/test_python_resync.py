"""A resync of a simple index through the python plugin's pipeline, which starts with ``unchanged``.

Each test syncs twice from one real aiohttp index on 127.0.0.1 (the same URLs both times), on SQLite
and PostgreSQL; what is fetched again is read from the server's request counts, what took the whole
path from the SQL statements sent, never from timing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from sqlalchemy import select, update

from pendingops import RemoteConfig, sync_remote
from pendingops.db.schema import RepositoryContent
from pendingops.db.versions import find_repository, latest_version, membership_filter
from pendingops.plugins.python import PythonContent, PythonPlugin
from tests.conftest import compared_in_sql, count_statements, key_lookups
from tests.plugins.python_index import Dist, NegotiatingIndex, index_files, sample_projects, sdist, wheel
from tests.remote_server import RemoteServer


def plain_projects() -> dict[str, list[Dist]]:
    """Wheels and sdists without PEP 658 metadata files (one artifact each), one of them yanked."""
    return {
        "Alpha_Pkg": [
            wheel("alpha-pkg", "1.0"),
            wheel("alpha-pkg", "2.0", requires=("beta>=1.0",)),
            sdist("alpha-pkg", "2.0"),
            replace(wheel("alpha-pkg", "2.5"), yanked="broken build"),
        ],
        "beta": [wheel("beta", "1.0"), wheel("beta", "1.1", requires_python=">=3.8")],
        "gamma": [wheel("gamma", "0.1")],
    }


def held(db, repository: str = "py") -> dict[str, tuple[int, str, bool, str | None]]:
    """filename -> (content id, sha256, yanked, summary) of each unit in the repository's latest version."""
    table = PythonContent.__table__
    rc = RepositoryContent.__table__
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, repository)
        query = (
            select(table.c.filename, table.c.id, table.c.sha256, table.c.yanked, table.c.summary)
            .join(rc, rc.c.content_id == table.c.id)
            .where(membership_filter(repo_id, latest_version(conn, repo_id)))
        )
        return {row.filename: (row.id, row.sha256, row.yanked, row.summary) for row in conn.execute(query)}


def files_fetched(origin: RemoteServer) -> dict[str, int]:
    return {path: count for path, count in origin.requests.items() if path.startswith("files/")}


async def sync(db, storage, origin: RemoteServer, *, mirror: bool = True, **options: str) -> Any:
    remote = RemoteConfig(url=origin.base_url + "simple/", options=options)
    return await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py", mirror=mirror)


def test_an_unchanged_index_is_settled_in_sql_and_no_dist_is_fetched_again(db, storage) -> None:
    projects = plain_projects()
    names = {d.filename for dists in projects.values() for d in dists}

    async def scenario() -> tuple[Any, Any, dict, dict, dict, dict, list[str]]:
        async with RemoteServer(index_files(projects)) as origin:
            first = await sync(db, storage, origin)
            fetched, before = files_fetched(origin), held(db)
            with count_statements(db) as statements:
                again = await sync(db, storage, origin)
            return first, again, fetched, files_fetched(origin), before, held(db), statements

    first, again, fetched, fetched_after, before, after, statements = asyncio.run(scenario())
    assert first.added == len(names) and fetched == {f"files/{name}": 1 for name in names}
    assert fetched_after == fetched  # not one dist fetched again
    assert (again.created, again.added, again.removed, again.failed_count) == (False, 0, 0, 0)
    assert after == before and set(after) == names
    # every unit was settled by the comparison: none looked up or declared by the whole path
    assert key_lookups(statements) == 0
    assert compared_in_sql(statements)


def test_a_unit_with_a_metadata_file_is_settled_in_sql_and_keeps_what_was_read(db, storage) -> None:
    """A unit with a PEP 658 file has two artifacts, both compared: an unchanged one is settled in SQL
    like the others; its metadata, read on the first sync, is neither lost nor fetched again."""
    projects = sample_projects()

    async def scenario() -> tuple[Any, dict, dict, dict, dict, list[str]]:
        async with RemoteServer(index_files(projects)) as origin:
            await sync(db, storage, origin)
            fetched, before = files_fetched(origin), held(db)
            with count_statements(db) as statements:
                again = await sync(db, storage, origin)
            return again, fetched, files_fetched(origin), before, held(db), statements

    again, fetched, fetched_after, before, after, statements = asyncio.run(scenario())
    assert sum(path.endswith(".metadata") for path in fetched) == 2  # alpha-pkg 2.0's and beta 1.1's
    assert fetched_after == fetched
    assert (again.created, again.added, again.removed, again.failed_count) == (False, 0, 0, 0)
    assert after == before
    assert after["alpha_pkg-2.0-py3-none-any.whl"][3] == "alpha-pkg for tests"
    assert after["beta-1.1-py3-none-any.whl"][3] == "beta for tests"
    assert key_lookups(statements) == 0
    assert compared_in_sql(statements)


def test_a_new_digest_a_new_yank_and_a_file_gone_are_all_picked_up(db, storage) -> None:
    projects = plain_projects()
    rebuilt = wheel("gamma", "0.1", requires=("beta",))  # same filename, other bytes
    gamma, beta10, alpha10 = "gamma-0.1-py3-none-any.whl", "beta-1.0-py3-none-any.whl", "alpha_pkg-1.0-py3-none-any.whl"
    assert rebuilt.filename == gamma and rebuilt.sha256 != projects["gamma"][0].sha256

    async def scenario() -> tuple[Any, dict, dict, dict]:
        async with RemoteServer(index_files(projects)) as origin:
            await sync(db, storage, origin)
            before = held(db)
            changed = dict(projects)
            changed["gamma"] = [rebuilt]
            changed["beta"] = [replace(d, yanked="bad") if d.filename == beta10 else d for d in projects["beta"]]
            changed["Alpha_Pkg"] = [d for d in projects["Alpha_Pkg"] if d.filename != alpha10]
            origin.files = index_files(changed)
            result = await sync(db, storage, origin)
            return result, files_fetched(origin), before, held(db)

    result, fetched, before, after = asyncio.run(scenario())
    assert result.created and (result.added, result.removed) == (2, 3)  # changed gamma and beta 1.0; alpha 1.0 gone
    assert set(after) == set(before) - {alpha10}
    assert after[gamma][1] == rebuilt.sha256 and after[gamma][0] != before[gamma][0]
    assert after[beta10][2] is True and after[beta10][1] == before[beta10][1]
    assert fetched[f"files/{gamma}"] == 2  # the new bytes fetched
    assert fetched[f"files/{beta10}"] == 1  # a yank changes no bytes
    assert all(count == 1 for path, count in fetched.items() if path != f"files/{gamma}")
    unchanged = set(after) - {gamma, beta10}
    assert {name: after[name] for name in unchanged} == {name: before[name] for name in unchanged}
    assert storage.exists(storage.location_for(rebuilt.sha256))


def test_an_additive_resync_keeps_a_file_that_left_the_index(db, storage) -> None:
    projects = plain_projects()

    async def scenario() -> tuple[Any, dict, dict]:
        async with RemoteServer(index_files(projects)) as origin:
            await sync(db, storage, origin, mirror=False)
            before = held(db)
            origin.files = index_files({"beta": projects["beta"]})
            result = await sync(db, storage, origin, mirror=False)
            return result, before, held(db)

    result, before, after = asyncio.run(scenario())
    assert (result.created, result.added, result.removed) == (False, 0, 0)
    assert after == before


def test_a_stored_null_field_the_index_now_gives_is_filled_on_resync(db, storage) -> None:
    """upload_time, declared by the JSON page, was NULL where stored (as saved from an HTML page or by an
    older release): the comparison leaves such a unit to the whole path, which fills it."""
    projects = {"beta": [replace(wheel("beta", "1.0"), upload_time="2024-01-31T12:34:56.123456Z")]}
    table = PythonContent.__table__

    async def scenario() -> None:
        async with NegotiatingIndex(projects=projects) as origin:
            await sync(db, storage, origin)
            with db.engine.begin() as conn:
                conn.execute(update(table).values(upload_time=None))
            await sync(db, storage, origin)

    asyncio.run(scenario())
    with db.engine.connect() as conn:
        assert conn.execute(select(table.c.upload_time)).scalars().all() == ["2024-01-31T12:34:56.123456Z"]
