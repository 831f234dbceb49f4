"""The resync shortcut in SQL: units the repository holds unchanged are declared without the operators.

Each test syncs from a real aiohttp server on 127.0.0.1, on SQLite and PostgreSQL; what is fetched
again is read from the server's request counts, never from timing.
"""

from __future__ import annotations

import asyncio
import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from pendingops import RemoteConfig, declarative_version
from pendingops.db import unchanged as unchanged_sql
from pendingops.db.schema import Artifact, RemoteArtifact
from pendingops.operators._unchanged import _rows
from pendingops.plugins.file import FileContent
from tests.conftest import count_statements, declared_in_sql, declared_one_by_one, file_set, file_units, version_content
from tests.remote_server import RemoteServer


def _files(n: int, tag: str = "") -> dict[str, bytes]:
    return {f"dir{i % 3}/file-{i:04}": f"{tag}bytes of {i}".encode() for i in range(n)}


def _sync(db, storage, server, files, *, mirror=True, policy="immediate", url=None, repository="r", **options):
    """Sync ``files`` as declared by ``server`` (its manifest names them); return the result."""

    async def scenario():
        manifest = url or server.manifest_url
        return await declarative_version(
            file_units(manifest, files),
            db=db,
            storage=storage,
            remote=RemoteConfig(url=manifest, policy=policy, retries=0),
            repository=repository,
            mirror=mirror,
            batch_wait=0.01,
            **options,
        )

    return asyncio.run(scenario())


def _served(files):
    return RemoteServer(files=dict(files))


def _looked_up(statements: list[str]) -> int:
    """Statements of the whole path's content lookup (dedup): none when every unit was unchanged."""
    return sum(1 for statement in statements if "key_digest IN" in statement)


def test_unchanged_units_are_declared_and_not_fetched_again(db, storage):
    files = _files(30)

    async def scenario():
        async with _served(files) as server:
            first = await _run(db, storage, server, files)
            fetched = server.file_requests()
            with count_statements(db) as statements:
                again = await _run(db, storage, server, files)
            return first, fetched, again, server.file_requests(), statements

    first, fetched, again, fetched_after, statements = asyncio.run(scenario())
    assert _looked_up(statements) == 0 and declared_one_by_one(statements) == 0
    assert declared_in_sql(statements)
    assert first.added == 30 and fetched == 30
    assert (again.added, again.removed, again.created, again.filtered) == (0, 0, False, 0)
    assert fetched_after == fetched  # nothing fetched again
    assert version_content(db, "r") == file_set(files)


async def _run(db, storage, server, files, *, mirror=True, **options):
    return await declarative_version(
        file_units(server.manifest_url, files),
        db=db,
        storage=storage,
        remote=RemoteConfig(url=server.manifest_url, retries=0),
        repository="r",
        mirror=mirror,
        batch_wait=0.01,
        **options,
    )


def test_a_unit_whose_stored_file_was_deleted_is_fetched_again(db, storage):
    files = _files(10)
    victim = "dir0/file-0003"

    async def scenario():
        async with _served(files) as server:
            await _run(db, storage, server, files)
            digest = hashlib.sha256(files[victim]).hexdigest()
            storage.delete(storage.location_for(digest))
            result = await _run(db, storage, server, files)
            return result, dict(server.requests)

    result, requests = asyncio.run(scenario())
    assert requests[victim] == 2
    assert sum(count for path, count in requests.items() if path != "PULP_MANIFEST") == 11
    assert storage.exists(storage.location_for(hashlib.sha256(files[victim]).hexdigest()))
    assert version_content(db, "r") == file_set(files)
    assert not result.created


def test_a_changed_url_size_or_digest_goes_through_the_pipeline(db, storage):
    files = _files(10)

    async def scenario():
        async with _served(files) as server:
            await _run(db, storage, server, files)
            # The stored rows say otherwise than the remote now declares: a unit compared on these
            # columns is not unchanged, and the pipeline writes this remote's row again.
            with db.engine.begin() as conn:
                ra = RemoteArtifact.__table__
                conn.execute(update(ra).where(ra.c.url.like("%file-0001")).values(url="http://elsewhere/x"))
                conn.execute(update(ra).where(ra.c.url.like("%file-0002")).values(size=999))
                conn.execute(update(ra).where(ra.c.url.like("%file-0004")).values(sha256="0" * 64))
            with count_statements(db) as statements:
                result = await _run(db, storage, server, files)
            return result, statements

    result, statements = asyncio.run(scenario())
    assert not result.created
    assert _looked_up(statements) == 1  # the three changed units, in one batch
    ra = RemoteArtifact.__table__
    with db.engine.connect() as conn:
        rows = {
            (url.rsplit("/", 1)[-1], size, sha)
            for url, size, sha in conn.execute(ra.select().with_only_columns(ra.c.url, ra.c.size, ra.c.sha256))
        }
    assert ("file-0001", len(files["dir1/file-0001"]), hashlib.sha256(files["dir1/file-0001"]).hexdigest()) in rows
    assert ("file-0002", len(files["dir2/file-0002"]), hashlib.sha256(files["dir2/file-0002"]).hexdigest()) in rows
    assert ("file-0004", len(files["dir1/file-0004"]), hashlib.sha256(files["dir1/file-0004"]).hexdigest()) in rows
    # the three went through save, which rewrote their RemoteArtifact rows
    assert any(
        s.lstrip().upper().startswith(("INSERT INTO REMOTE_ARTIFACT", "UPDATE REMOTE_ARTIFACT")) for s in statements
    )


def test_a_stored_artifact_of_other_bytes_is_not_unchanged(db, storage):
    files = _files(6)

    async def scenario():
        async with _served(files) as server:
            await _run(db, storage, server, files)
            with db.engine.begin() as conn:
                art = Artifact.__table__
                digest = hashlib.sha256(files["dir0/file-0000"]).hexdigest()
                conn.execute(update(art).where(art.c.sha256 == digest).values(size=1))
            return await _run(db, storage, server, files, on_error="skip")

    result = asyncio.run(scenario())
    # The stored bytes contradict the remote: the unit is looked at by the whole path, which says so.
    assert result.failed_count == 1


def test_mirror_removes_what_is_no_longer_declared_and_additive_keeps_it(db, storage):
    files = _files(20)
    kept = dict(list(sorted(files.items()))[:15])
    new = {f"new/{p}": d for p, d in _files(3, tag="new ").items()}

    async def scenario():
        async with _served({**files, **new}) as server:
            await _run(db, storage, server, files)
            mirror = await _run(db, storage, server, {**kept, **new})
            in_mirror = version_content(db, "r")
            additive = await _run(db, storage, server, kept, mirror=False)
            return mirror, in_mirror, additive

    mirror, in_mirror, additive = asyncio.run(scenario())
    assert (mirror.added, mirror.removed) == (3, 5)
    assert in_mirror == file_set({**kept, **new})
    assert (additive.added, additive.removed, additive.created) == (0, 0, False)
    assert version_content(db, "r") == file_set({**kept, **new})


def test_on_demand_resync_declares_unchanged_units_in_sql(db, storage):
    files = _files(12)
    url = "http://127.0.0.1:9/PULP_MANIFEST"  # never contacted: on demand
    first = _sync(db, storage, None, files, policy="on_demand", url=url)
    with count_statements(db) as statements:
        again = _sync(db, storage, None, dict(list(files.items())[:10]), policy="on_demand", url=url)
    assert (first.added, again.added, again.removed) == (12, 0, 2)
    assert version_content(db, "r") == file_set(dict(list(files.items())[:10]))
    assert _looked_up(statements) == 0 and declared_one_by_one(statements) == 0


def test_a_resync_of_a_thousand_unchanged_units_takes_a_handful_of_statements(db, storage):
    files = _files(1000)
    url = "http://127.0.0.1:9/PULP_MANIFEST"
    _sync(db, storage, None, files, policy="on_demand", url=url)
    with count_statements(db) as statements:
        again = _sync(db, storage, None, files, policy="on_demand", url=url, batch_size=1000)
    assert not again.created
    assert _looked_up(statements) == 0 and declared_one_by_one(statements) == 0
    # lock, version, run record and finish included; the comparison itself is a few per batch
    assert len(statements) <= 40, statements


manifests = st.dictionaries(
    st.sampled_from([f"f{i}" for i in range(12)]), st.sampled_from([b"a", b"b", b"c"]), max_size=12
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=manifests, new=manifests, mirror=st.booleans())
def test_the_version_is_what_was_declared_whatever_the_shortcut_took(db, storage, old, new, mirror):
    """Random old and new manifests: mirror gives the new set, additive the union (a path listed
    with new bytes is another unit, so both stay)."""
    url = "http://127.0.0.1:9/PULP_MANIFEST"
    repository = f"p{abs(hash((tuple(sorted(old.items())), tuple(sorted(new.items())), mirror)))}"
    if old:
        _sync(db, storage, None, old, policy="on_demand", url=url, repository=repository)
    before = version_content(db, repository) if old else set()
    if new or old:
        _sync(db, storage, None, new, policy="on_demand", url=url, repository=repository, mirror=mirror)
    if not old and not new:
        return
    expected = file_set(new) if mirror else before | file_set(new)
    assert version_content(db, repository) == expected


def test_a_unit_removed_earlier_or_held_by_another_repository_is_added_again(db, storage):
    files = _files(8)
    fewer = dict(list(sorted(files.items()))[:5])
    url = "http://127.0.0.1:9/PULP_MANIFEST"
    _sync(db, storage, None, files, policy="on_demand", url=url)
    _sync(db, storage, None, fewer, policy="on_demand", url=url)  # three leave the repository
    again = _sync(db, storage, None, files, policy="on_demand", url=url)
    assert (again.added, again.removed) == (3, 0)
    assert version_content(db, "r") == file_set(files)
    # a repository with content of its own: the comparison runs, and must not take r's members for its own
    _sync(db, storage, None, {"seed": b"seed"}, policy="on_demand", url=url, repository="other")
    other = _sync(db, storage, None, files, policy="on_demand", url=url, repository="other")
    assert (other.added, other.removed) == (8, 1)
    assert version_content(db, "other") == file_set(files)


def test_a_stored_null_field_the_unit_declares_is_filled_not_skipped(db, storage):
    files = _files(5)
    url = "http://127.0.0.1:9/PULP_MANIFEST"
    _sync(db, storage, None, files, policy="on_demand", url=url)
    table = FileContent.__table__
    with db.engine.begin() as conn:  # as saved by a release whose model had no size column
        conn.execute(update(table).values(size=None))
    _sync(db, storage, None, files, policy="on_demand", url=url)
    with db.engine.connect() as conn:
        sizes = dict(conn.execute(select(table.c.relative_path, table.c.size)).all())
    assert sizes == {path: len(data) for path, data in files.items()}


def test_the_comparison_walks_the_batch_and_probes_the_store_by_index(db, storage):
    """Its cost follows the batch, not the store: only the loaded batch is scanned, every table of the
    store is probed through an index (a hash or merge join, a Bloom filter, would read all of a table
    per batch)."""
    files = _files(3000)
    url = "http://127.0.0.1:9/PULP_MANIFEST"
    _sync(db, storage, None, files, policy="on_demand", url=url)  # its statistics are refreshed after it
    units = file_units(url, files)[-200:]
    with db.engine.begin() as conn:
        temp = unchanged_sql._temp_table(FileContent)
        temp.create(conn)
        unchanged_sql._load(conn, db, temp, _rows(units)[FileContent])
        query = unchanged_sql._matches(temp, FileContent, 1, 1, True, db.dialect)
        compiled = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
        plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(prefix + compiled))
        conn.rollback()
    if db.dialect == "sqlite":
        # the batch is scanned, then the rows it found (to count them per unit); no table of the store
        scanned = {line.split()[1] for line in plan.splitlines() if line.startswith("SCAN ")}
        assert "unchanged_file_content" in scanned, plan
        store = {"file_content", "repository_content", "content_artifact", "any_ca", "remote_artifact", "artifact"}
        assert not scanned & store, plan
        # a Bloom filter or an automatic index is built by reading a whole table, for every batch
        assert "BLOOM" not in plan and "AUTOMATIC" not in plan, plan
    else:
        assert "Seq Scan on unchanged_file_content" in plan, plan
        assert plan.count("Seq Scan") == 1 and "Hash" not in plan and "Merge" not in plan, plan
