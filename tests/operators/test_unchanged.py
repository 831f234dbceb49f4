"""The resync shortcut in SQL: units the repository holds unchanged are declared without the operators.

Each test syncs from a real aiohttp server on 127.0.0.1, on SQLite and PostgreSQL; what is fetched
again is read from the server's request counts, never from timing.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from pendingops import RemoteConfig, declarative_version
from pendingops import operators as ops
from pendingops.db import unchanged as unchanged_sql
from pendingops.db.schema import Artifact, ContentArtifact, RemoteArtifact, RepositoryContent
from pendingops.db.versions import find_repository, latest_version, membership_filter
from pendingops.operators._unchanged import _rows
from pendingops.pending import PendingArtifact, PendingContent
from pendingops.plugins.file import FileContent
from pendingops.plugins.python import PythonContent
from tests.conftest import compared_in_sql, count_statements, file_set, file_units, key_lookups, version_content
from tests.remote_server import RemoteServer


def _files(n: int, tag: str = "") -> dict[str, bytes]:
    return {f"dir{i % 3}/file-{i:04}": f"{tag}bytes of {i}".encode() for i in range(n)}


def _sync(
    db, storage, server, files, *, mirror=True, policy="immediate", url=None, repository="r", artifacts=None, **options
):
    """Sync ``files`` as declared by ``server`` (its manifest names them); return the result.

    ``artifacts``: how many artifacts the unit of a path declares (1 when not given), see ``_with_artifacts``."""

    async def scenario():
        manifest = url or server.manifest_url
        return await declarative_version(
            _with_artifacts(file_units(manifest, files), artifacts or {}),
            db=db,
            storage=storage,
            remote=RemoteConfig(url=manifest, policy=policy, retries=0),
            repository=repository,
            mirror=mirror,
            batch_wait=0.01,
            **options,
        )

    return asyncio.run(scenario())


def _with_artifacts(units: list[PendingContent], counts: dict[str, int]) -> list[PendingContent]:
    """Give the unit of each path ``counts[path] - 1`` artifacts beside its file, with bytes of their own:
    ``.extra1`` with no size (as a PEP 658 metadata file), ``.extra2`` with one."""
    for unit in units:
        path, first = unit.fields["relative_path"], unit.artifacts[0]
        for n in range(1, counts.get(path, 1)):
            data = f"{first.sha256} extra {n}".encode()
            size = len(data) if n > 1 else None
            digest = hashlib.sha256(data).hexdigest()
            unit.artifacts.append(PendingArtifact(f"{first.url}.extra{n}", f"{path}.extra{n}", size, digest))
    return units


def _served(files):
    return RemoteServer(files=dict(files))


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
    assert key_lookups(statements) == 0
    assert compared_in_sql(statements)
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
    assert key_lookups(statements) == 1  # the three changed units, in one batch
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


def test_a_batch_leaves_no_row_behind_for_the_next_comparison(db, storage):
    # The comparison's table outlives its transaction (one per connection): the no-op resync's rows
    # must be gone when the next resync compares, where the same indexes name other units.
    files = _files(10)
    changed = dict(files) | {"dir0/file-0003": b"new bytes\n"}

    async def scenario():
        async with _served(files) as server:
            await _run(db, storage, server, files)
            await _run(db, storage, server, files)
            server.files.update(changed)
            result = await _run(db, storage, server, changed)
            return result, dict(server.requests)

    result, requests = asyncio.run(scenario())
    assert (result.added, result.removed) == (1, 1)
    assert requests["dir0/file-0003"] == 2
    assert version_content(db, "r") == file_set(changed)


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
    assert key_lookups(statements) == 0


def test_a_resync_of_a_thousand_unchanged_units_takes_a_handful_of_statements(db, storage):
    files = _files(1000)
    url = "http://127.0.0.1:9/PULP_MANIFEST"
    _sync(db, storage, None, files, policy="on_demand", url=url)
    with count_statements(db) as statements:
        again = _sync(db, storage, None, files, policy="on_demand", url=url, batch_size=1000)
    assert not again.created
    assert key_lookups(statements) == 0
    # lock, version, run record and finish included; the comparison itself is a few per batch
    assert len(statements) <= 40, statements


manifests = st.dictionaries(
    st.sampled_from([f"f{i}" for i in range(12)]), st.sampled_from([b"a", b"b", b"c"]), max_size=12
)


def _artifact_counts(*manifests: dict[str, bytes]) -> dict[str, int]:
    """1 to 3 artifacts per unit, always as many for a path and its bytes: the store outlives an example,
    and a unit stored with other files than it declares is a conflict."""
    return {
        path: 1 + hashlib.sha256(path.encode() + data).digest()[0] % 3 for m in manifests for path, data in m.items()
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=manifests, new=manifests, mirror=st.booleans())
def test_the_version_is_what_was_declared_whatever_the_shortcut_took(db, storage, old, new, mirror):
    """Random old and new manifests of units with 1 to 3 artifacts: mirror gives the new set, additive
    the union (a path listed with new bytes is another unit, so both stay)."""
    url = "http://127.0.0.1:9/PULP_MANIFEST"
    repository = f"p{abs(hash((tuple(sorted(old.items())), tuple(sorted(new.items())), mirror)))}"
    if old:
        _sync(
            db, storage, None, old, policy="on_demand", url=url, repository=repository, artifacts=_artifact_counts(old)
        )
    before = version_content(db, repository) if old else set()
    if new or old:
        options = {"policy": "on_demand", "url": url, "repository": repository, "artifacts": _artifact_counts(new)}
        again = _sync(db, storage, None, new, mirror=mirror, **options)
        assert again.failed_count == 0
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


# -- units with more than one artifact: a distribution and its PEP 658 metadata file ---------------

#: a distribution's bytes and its metadata file's (None: the index offers none)
Dists = dict[str, tuple[bytes, bytes | None]]


def _dists(n: int, *, project: str = "pkg", metadata: bool = True) -> Dists:
    """``n`` wheels of ``project``, each with a metadata file or none."""
    return {
        f"{project}_{i}-1.0-py3-none-any.whl": (
            f"{project} {i}".encode(),
            f"Summary: {i}\n".encode() if metadata else None,
        )
        for i in range(n)
    }


def _index(dists: Dists) -> dict[str, bytes]:
    """What the server holds: each file, and each metadata file both next to it and under ``moved/``."""
    files = {}
    for name, (data, metadata) in dists.items():
        files[f"files/{name}"] = data
        if metadata is not None:
            files[f"files/{name}.metadata"] = files[f"moved/{name}.metadata"] = metadata
    return files


def _python_units(server: RemoteServer, dists: Dists, moved: frozenset[str] = frozenset()) -> list[PendingContent]:
    """The units the python plugin makes of ``dists``: the file (sha256, size), and its metadata file
    (sha256, no size) when there is one, served from ``moved/`` for the names in ``moved``."""
    units = []
    for name, (data, metadata) in sorted(dists.items()):
        digest, path = hashlib.sha256(data).hexdigest(), f"packages/{name}"
        fields = {"filename": name, "sha256": digest, "name": "pkg", "version": "1.0", "packagetype": "bdist_wheel"}
        fields |= {"yanked": False, "yanked_reason": ""}
        artifacts = [PendingArtifact(f"{server.base_url}files/{name}", path, len(data), digest)]
        if metadata is not None:
            url = f"{server.base_url}{'moved' if name in moved else 'files'}/{name}.metadata"
            artifacts.append(PendingArtifact(url, path + ".metadata", sha256=hashlib.sha256(metadata).hexdigest()))
        units.append(PendingContent(PythonContent, fields, artifacts))
    return units


async def _python_sync(db, storage, server, dists, *, moved=frozenset(), units=None, passed=None, **options) -> Any:
    """Sync ``dists`` (or ``units``) in mirror mode; the filenames of the units ``unchanged`` passed on go
    to ``passed``."""

    async def seen(unit: PendingContent) -> None:
        if passed is not None:
            passed.append(unit.fields["filename"])

    return await declarative_version(
        units or _python_units(server, dists, moved),
        db=db,
        storage=storage,
        remote=RemoteConfig(url=server.base_url + "simple/", retries=0),
        repository="py",
        mirror=True,
        pipeline=[ops.unchanged(), ops.enrich(seen, name="seen"), ops.dedup(), ops.download(), ops.save()],
        batch_wait=0.01,
        **options,
    )


def _python_held(db) -> dict[str, tuple[int, int]]:
    """filename -> (content id, its ContentArtifacts) of each unit in py's latest version."""
    table, rc, ca = PythonContent.__table__, RepositoryContent.__table__, ContentArtifact.__table__
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, "py")
        files = select(ca.c.content_id, ca.c.id).subquery()
        query = (
            select(table.c.filename, table.c.id, files.c.id)
            .join(rc, rc.c.content_id == table.c.id)
            .join(files, files.c.content_id == table.c.id)
            .where(membership_filter(repo_id, latest_version(conn, repo_id)))
        )
        held: dict[str, tuple[int, int]] = {}
        for filename, content_id, _ in conn.execute(query):
            held[filename] = (content_id, held.get(filename, (content_id, 0))[1] + 1)
        return held


def _fetched(server: RemoteServer) -> dict[str, int]:
    return {path: count for path, count in server.requests.items() if path != "PULP_MANIFEST"}


def test_a_resync_of_units_with_two_artifacts_settles_them_in_sql(db, storage):
    """A distribution and its metadata file, beside distributions without one, in one batch: a no-op
    resync finishes all of them in ``unchanged``, fetches nothing and makes no new version."""
    dists = _dists(6) | _dists(3, project="plain", metadata=False) | {"other-1.0.tar.gz": (b"sdist", None)}
    passed: list[str] = []

    async def scenario():
        async with RemoteServer(files=_index(dists)) as server:
            first = await _python_sync(db, storage, server, dists)
            fetched, before = _fetched(server), _python_held(db)
            with count_statements(db) as statements:
                again = await _python_sync(db, storage, server, dists, passed=passed)
            return first, again, fetched, _fetched(server), before, statements

    first, again, fetched, fetched_after, before, statements = asyncio.run(scenario())
    assert (first.added, first.failed_count) == (10, 0) and sum(fetched.values()) == 6 * 2 + 3 + 1
    assert sorted(count for _, count in before.values()) == [1] * 4 + [2] * 6
    assert passed == []  # not one went on
    assert (again.created, again.added, again.removed, again.failed_count) == (False, 0, 0, 0)
    assert fetched_after == fetched
    assert _python_held(db) == before
    assert key_lookups(statements) == 0
    assert compared_in_sql(statements)


CHANGES = ["url", "sha256", "metadata declared", "metadata dropped", "metadata file missing"]


@pytest.mark.parametrize("change", CHANGES)
def test_one_difference_in_one_of_two_artifacts_takes_the_unit_through(db, storage, change):
    """One unit of four differs from what the repository holds in one thing: it alone goes on, and
    the whole path does with it what it does for any unit (a changed file of a stored content is a
    conflict it reports; a file gone from storage is fetched again)."""
    dists = _dists(4)
    target = "pkg_1-1.0-py3-none-any.whl"
    data, metadata = dists[target]
    first, then, moved = dict(dists), dict(dists), frozenset()
    if change == "url":
        moved = frozenset({target})
    elif change == "sha256":
        then[target] = (data, b"Summary: rebuilt\n")
    elif change == "metadata declared":
        first[target] = (data, None)
    elif change == "metadata dropped":
        then[target] = (data, None)
    passed: list[str] = []

    async def scenario():
        async with RemoteServer(files=_index(first)) as server:
            await _python_sync(db, storage, server, first)
            before = _python_held(db)
            if change == "metadata file missing":
                storage.delete(storage.location_for(hashlib.sha256(metadata).hexdigest()))
            server.files = _index(then)
            fetched = _fetched(server)
            result = await _python_sync(db, storage, server, then, moved=moved, passed=passed, on_error="skip")
            return result, before, fetched, _fetched(server)

    result, before, fetched, fetched_after = asyncio.run(scenario())
    assert passed == [target]
    again = {path: count - fetched.get(path, 0) for path, count in fetched_after.items()}
    again = {path: count for path, count in again.items() if count}
    if change in ("url", "metadata file missing"):
        assert result.failed_count == 0 and not result.created
        assert _python_held(db) == before
    if change == "url":
        assert again == {}  # the stored file is the one the new url names
        ra = RemoteArtifact.__table__
        with db.engine.connect() as conn:
            urls = set(conn.execute(select(ra.c.url).where(ra.c.url.like(f"%{target}.metadata"))).scalars())
        assert {url.split("/")[-2] for url in urls} == {"moved"}
    elif change == "metadata file missing":
        assert again == {f"files/{target}.metadata": 1}
        assert storage.exists(storage.location_for(hashlib.sha256(metadata).hexdigest()))
    else:
        # the stored content holds other files than declared: the lookup reports the conflict
        assert result.failed_count == 1 and [target in f.unit for f in result.failures] == [True]


def test_units_that_all_declare_one_of_the_two_files_held_go_through(db, storage):
    """Every unit of the batch declares its file alone (the batch of one-artifact units is compared
    without a count) while the repository holds each with its metadata file too: none is unchanged."""
    dists = _dists(3)
    plain = {name: (data, None) for name, (data, _) in dists.items()}
    passed: list[str] = []

    async def scenario():
        async with RemoteServer(files=_index(dists)) as server:
            await _python_sync(db, storage, server, dists)
            return await _python_sync(db, storage, server, plain, passed=passed, on_error="skip")

    result = asyncio.run(scenario())
    assert sorted(passed) == sorted(dists)
    assert result.failed_count == 3  # the lookup reports each: stored content never changes


def test_a_unit_with_two_artifacts_at_one_path_is_not_compared(db, storage):
    """A unit declaring its file twice (the content holds it and a metadata file, two ContentArtifacts):
    both rows would find the one ContentArtifact at that path, so such a unit is not compared; it goes
    on, and the whole path finds it declares other files than held."""
    dists = _dists(3)
    target = "pkg_1-1.0-py3-none-any.whl"
    passed: list[str] = []

    async def scenario():
        async with RemoteServer(files=_index(dists)) as server:
            await _python_sync(db, storage, server, dists)
            units = _python_units(server, dists)
            twice = next(unit for unit in units if unit.fields["filename"] == target)
            twice.artifacts[1] = replace(twice.artifacts[0])
            return await _python_sync(db, storage, server, dists, units=units, passed=passed, on_error="skip")

    result = asyncio.run(scenario())
    assert passed == [target]
    assert [target in f.unit for f in result.failures] == [True]


@pytest.mark.parametrize("several", [False, True], ids=["one artifact", "two artifacts"])
def test_the_comparison_walks_the_batch_and_probes_the_store_by_index(db, storage, several):
    """Its cost follows the batch, not the store: only the loaded batch is scanned, every table of the
    store is probed through an index (a hash or merge join, a Bloom filter, would read all of a table
    per batch). Both shapes: units of one artifact each, and units of two (their rows counted per unit)."""
    files = _files(3000)
    url = "http://127.0.0.1:9/PULP_MANIFEST"
    counts = dict.fromkeys(files, 2 if several else 1)
    _sync(db, storage, None, files, policy="on_demand", url=url, artifacts=counts)  # its statistics are refreshed
    units = _with_artifacts(file_units(url, files)[-200:], counts)
    with db.engine.begin() as conn:
        temp = unchanged_sql._temp_table(FileContent)
        temp.create(conn)
        unchanged_sql._load(conn, db, temp, _rows(units)[FileContent])
        query = unchanged_sql._matches(temp, FileContent, 1, 1, True, db.dialect, several)
        compiled = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
        plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(prefix + compiled))
        conn.rollback()
    if db.dialect == "sqlite":
        # the batch is scanned (then, with several artifacts, the rows it found); no table of the store
        scanned = {line.split()[1] for line in plan.splitlines() if line.startswith("SCAN ")}
        assert "unchanged_file_content" in scanned, plan
        store = {"file_content", "repository_content", "content_artifact", "any_ca", "remote_artifact", "artifact"}
        assert not scanned & store, plan
        # a Bloom filter or an automatic index is built by reading a whole table, for every batch
        assert "BLOOM" not in plan and "AUTOMATIC" not in plan, plan
    else:
        assert "Seq Scan on unchanged_file_content" in plan, plan
        assert plan.count("Seq Scan") == 1 and "Hash" not in plan and "Merge" not in plan, plan
