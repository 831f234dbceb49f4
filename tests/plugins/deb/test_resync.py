"""A resync of a real served archive through the deb pipeline, which starts with ``unchanged``.

Each test syncs twice from one archive served on 127.0.0.1 (the same URLs both times), on SQLite and
PostgreSQL. What is fetched again is read from the server's request counts, what the comparison settled
from the SQL statements sent, never from timing. The packages settled there never reach the ``members``
step; the suites' lists must hold them all the same (they are recorded on the suite unit, by key).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.db.versions import find_repository
from pendingops.plugins import VersionRef
from pendingops.plugins.deb import DebPlugin
from pendingops.plugins.deb.content import DebPackage
from pendingops.plugins.deb.publish import own_indexes, render, static
from pendingops.plugins.deb.stanza import read_stanzas
from tests.conftest import compared_in_sql, count_statements, key_lookups
from tests.plugins.deb.archive import HELLO, TOOL, WORLD, Archive, Deb, Signer, stable
from tests.remote_server import RemoteServer
from tests.server_thread import ServerThread

TOOL_02 = Deb("tool", "0.2", depends="hello")


def ref(db: Database, number: int) -> VersionRef:
    with db.engine.connect() as conn:
        return VersionRef(db, find_repository(conn, "deb"), number, "http://server/deb/1/")


def ours(db: Database, number: int) -> bool:
    with db.engine.connect() as conn:
        return own_indexes(conn, ref(db, number).repository_id, number)


def held(db: Database, number: int) -> dict[str, tuple[int, str]]:
    """package name -> (content id, version) of each package the version holds."""
    return {row.package: (row.id, row.version) for row in ref(db, number).units(DebPackage)}


def listed(db: Database, number: int, index: str = "main/binary-amd64/Packages") -> list[str]:
    """The (package version) pairs the suite's Packages index lists, as our indexes are worked out."""
    found = render(ref(db, number), f"stable/{index}", "*/*")
    assert found is not None
    return [f"{s.fields['Package']} {s.fields['Version']}" for s in read_stanzas([b"".join(found.body)])]


def debs_fetched(origin: RemoteServer) -> dict[str, int]:
    return {path: count for path, count in origin.requests.items() if path.startswith("pool/")}


async def _sync(db: Database, storage: LocalStorage, origin: RemoteServer, **kwargs: Any) -> Any:
    remote = RemoteConfig(url=origin.base_url, retries=0, options={"suites": "stable"})
    return await sync_remote(DebPlugin(), remote, db=db, storage=storage, repository="deb", **kwargs)


def resync(
    db: Database, storage: LocalStorage, first: Archive, second: Archive, **kwargs: Any
) -> tuple[Any, Any, dict[str, int], dict[str, int], list[str]]:
    """Sync ``first``, then ``second`` from the same server; both results, the .deb requests after each,
    and the statements of the second sync. The same archive twice is served byte for byte: signing it
    again would give new signatures (they carry the second they were made in), a changed suite."""
    served = first.files()
    with ServerThread(served) as origin:
        before = asyncio.run(_sync(db, storage, origin, mirror=True))
        fetched = debs_fetched(origin)
        origin.files = served if second is first else second.files()
        with count_statements(db) as statements:
            after = asyncio.run(_sync(db, storage, origin, mirror=True, **kwargs))
        return before, after, fetched, debs_fetched(origin), statements


def test_an_unchanged_archive_is_settled_in_sql_and_no_deb_is_fetched_again(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    archive = stable(signer)
    first, again, fetched, fetched_after, statements = resync(db, storage, archive, archive, force=True)
    number = first.version.number
    exported = {path: b"".join(body) for path, body in static(ref(db, number))}
    assert fetched == {deb.filename(): 1 for deb in (HELLO, WORLD, TOOL)}
    assert fetched_after == fetched  # not one .deb fetched again
    assert (again.created, again.added, again.removed, again.failed_count) == (False, 0, 0, 0)
    assert again.version.number == number and not ours(db, number)
    assert listed(db, number) == ["hello 1.0", "tool 0.1", "world 2.0"]
    assert {path: b"".join(body) for path, body in static(ref(db, number))} == exported
    # the three packages and the suite unit (its Release files and indexes) were settled by the comparison
    assert compared_in_sql(statements) and key_lookups(statements) == 0


def test_a_changed_package_gets_a_suite_list_that_holds_the_unchanged_ones_too(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    first, second, fetched, fetched_after, statements = resync(
        db, storage, stable(signer), stable(signer, HELLO, WORLD, TOOL_02)
    )
    old, new = first.version.number, second.version.number
    before, after = held(db, old), held(db, new)
    assert second.created and (second.added, second.removed) == (2, 2)  # tool and the suite unit, each replaced
    assert fetched_after == {**fetched, TOOL_02.filename(): 1}
    assert compared_in_sql(statements)  # hello and world settled there, never reaching the members step
    assert {name: after[name] for name in ("hello", "world")} == {name: before[name] for name in ("hello", "world")}
    assert after["tool"][1] == "0.2"
    assert listed(db, new) == ["hello 1.0", "tool 0.2", "world 2.0"]
    assert not ours(db, new)  # the suite's list and the version's packages agree: the upstream's set
    assert listed(db, old) == ["hello 1.0", "tool 0.1", "world 2.0"]


def test_a_mirror_resync_removes_a_package_that_left(db: Database, storage: LocalStorage, signer: Signer) -> None:
    _, second, fetched, fetched_after, statements = resync(db, storage, stable(signer), stable(signer, HELLO, WORLD))
    new = second.version.number
    assert second.created and (second.added, second.removed) == (1, 2)  # the new suite unit; tool and the old one
    assert fetched_after == fetched
    assert compared_in_sql(statements)
    assert {name: version for name, (_, version) in held(db, new).items()} == {"hello": "1.0", "world": "2.0"}
    assert listed(db, new) == ["hello 1.0", "world 2.0"]
    assert not ours(db, new)
