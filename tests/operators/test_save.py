"""save: whole units in atomic batches; units that cannot be saved fail with a clear reason."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import select

from pendingops import PendingArtifact, PendingContent, RemoteConfig, SyncFailed, declarative_version
from pendingops import operators as ops
from pendingops.db.schema import Artifact, Content, ContentArtifact, RemoteArtifact
from pendingops.plugins.file import FileContent, file_url
from pendingops.progress import ProgressSnapshot
from tests.conftest import (
    StrictContent,
    count_rows,
    file_set,
    file_unit,
    file_units,
    version_content,
    version_numbers,
)
from tests.remote_server import RemoteServer

FILES = {f"f{i:02}": f"file {i}".encode() for i in range(8)}


def _run(db, storage, units_for, *, files=FILES, policy="immediate", **options):
    """Sync ``units_for(manifest_url)`` from a server holding ``files``; return the result and the server."""
    server = RemoteServer(files)

    async def scenario():
        async with server:
            return await declarative_version(
                units_for(server.manifest_url),
                db=db,
                storage=storage,
                remote=RemoteConfig(url=server.manifest_url, policy=policy),
                repository="r",
                batch_wait=0.01,
                **options,
            )

    return asyncio.run(scenario()), server


def _strict(i: int, value: int | None = None) -> PendingContent:
    return PendingContent(StrictContent, {"name": f"s{i:02}", "value": i if value is None else value})


def test_a_database_error_fails_the_sync_and_its_batch_saves_nothing(db, storage):
    units = [_strict(i, -1 if i == 9 else i) for i in range(12)]
    with pytest.raises(SyncFailed, match="IntegrityError"):
        _run(db, storage, lambda url: units, policy="on_demand", batch_size=4)
    with db.engine.connect() as conn:
        names = sorted(conn.execute(select(StrictContent.__table__.c.name)).scalars())
    # Batches are saved whole: the batch of s09 left nothing, earlier ones are all there.
    assert names in ([], [f"s{i:02}" for i in range(4)], [f"s{i:02}" for i in range(8)])
    assert count_rows(db, Content) == len(names)
    assert version_numbers(db, "r") == [0]


def test_content_without_artifacts(db, storage):
    result, _ = _run(db, storage, lambda url: [_strict(i) for i in range(5)], policy="on_demand")
    assert result.added == 5 and count_rows(db, StrictContent) == 5 and count_rows(db, Artifact) == 0


def test_a_unit_with_an_incomplete_natural_key_fails_at_save(db, storage):
    def units_for(url: str) -> list[PendingContent]:
        units = file_units(url, FILES)
        units[2].fields.pop("sha256")
        return units

    result, _ = _run(db, storage, units_for, on_error="skip")
    (failure,) = result.failures
    assert failure.stage == "save" and failure.reason == "natural key field(s) sha256 still unknown at save"
    assert failure.unit.startswith("file (relative_path=f02")
    assert result.added == 7 and count_rows(db, FileContent) == 7


def test_save_without_download_refuses_unstored_artifacts(db, storage):
    result, server = _run(
        db, storage, lambda url: file_units(url, FILES), pipeline=[ops.dedup(), ops.save()], on_error="skip"
    )
    assert result.failed_count == 8 and not result.created
    assert {f.reason for f in result.failures} == {
        f"artifact(s) {p} not downloaded (is download() before save()?)" for p in FILES
    }
    assert count_rows(db, Content) == 0 and server.file_requests() == 0


def test_a_key_completed_after_download_is_saved_once(db, storage):
    """Like a remote that publishes no digests: sha256 is learned from the downloaded file."""

    def units_for(url: str) -> list[PendingContent]:
        return [
            PendingContent(FileContent, {"relative_path": p}, [PendingArtifact(url=file_url(url, p), relative_path=p)])
            for p in FILES
        ]

    async def complete_key(unit: PendingContent) -> None:
        (artifact,) = unit.artifacts
        unit.fields.update(sha256=artifact.stored_sha256, size=artifact.stored_size)

    def pipeline():
        return [ops.download(), ops.enrich(complete_key), ops.query_existing_content(), ops.save()]

    first, _ = _run(db, storage, units_for, pipeline=pipeline())
    assert first.added == 8 and version_content(db, "r") == file_set(FILES)
    again, _ = _run(db, storage, units_for, pipeline=pipeline())
    assert not again.created
    assert count_rows(db, Content) == count_rows(db, Artifact) == 8


def test_stored_content_declared_with_a_new_artifact_fails_instead_of_losing_it(db, storage):
    url = "http://127.0.0.1:9/PULP_MANIFEST"  # on demand: nothing is fetched
    remote = RemoteConfig(url=url, policy="on_demand")
    first = file_unit(url, "a.txt", b"a")

    def changed() -> PendingContent:  # a.txt again, now claiming a second file
        unit = file_unit(url, "a.txt", b"a")
        unit.artifacts.append(PendingArtifact(url=url + "extra", relative_path="extra.bin", size=1))
        return unit

    async def run(units, **options):
        return await declarative_version(units, db=db, storage=storage, remote=remote, repository="r", **options)

    assert asyncio.run(run([first])).added == 1
    result = asyncio.run(run([changed(), file_unit(url, "b.txt", b"b")], on_error="skip"))
    assert result.added == 1 and result.failed_count == 1
    failure = result.failures[0]
    assert failure.stage == "dedup" and "'extra.bin'" in failure.reason and "natural key" in failure.reason
    assert count_rows(db, ContentArtifact) == 2  # a.txt's and b.txt's; no row for the undeclared path
    with pytest.raises(SyncFailed, match=r"extra\.bin"):
        asyncio.run(run([changed()]))


def _named(name: str, url: str, path: str, data: bytes) -> PendingContent:
    """A unit whose natural key is its name alone, holding ``data`` at ``path``."""
    artifact = PendingArtifact(url=url, relative_path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    return PendingContent(StrictContent, {"name": name, "value": 1}, [artifact])


def _remote_artifact_digests(db) -> list[str]:
    with db.engine.connect() as conn:
        return sorted(conn.execute(select(RemoteArtifact.__table__.c.sha256)).scalars())


@pytest.mark.parametrize("policy", ["immediate", "on_demand"])
def test_a_stored_key_declared_with_other_bytes_fails_and_keeps_the_stored_bytes(db, storage, policy):
    """name=a saved with X; the remote changes the file; name=a declaring Y fails in another repository."""
    old, new = b"the old bytes", b"the new bytes"

    async def sync(data: bytes, repository: str, **options):
        async with RemoteServer({"a.bin": data}) as server:
            units = [_named("a", server.base_url + "a.bin", "a.bin", data)]
            remote = RemoteConfig(url=server.manifest_url, policy=policy)
            try:
                return await declarative_version(
                    units, db=db, storage=storage, remote=remote, repository=repository, batch_wait=0.01, **options
                ), server
            except SyncFailed as exc:
                return exc, server

    first, _ = asyncio.run(sync(old, "r"))
    assert first.added == 1
    failed, server = asyncio.run(sync(new, "r2"))
    assert isinstance(failed, SyncFailed)
    assert "sha256" in str(failed) and "natural key" in str(failed)
    assert server.requests["a.bin"] == 0  # the new bytes were never fetched
    skipped, _ = asyncio.run(sync(new, "r2", on_error="skip"))
    assert skipped.failed_count == 1 and skipped.added == 0 and not skipped.created
    assert _remote_artifact_digests(db) == [hashlib.sha256(old).hexdigest()]
    assert count_rows(db, Artifact) == (1 if policy == "immediate" else 0)


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_one_key_declared_with_two_different_paths_gives_the_same_result_in_any_batching(db, storage, batch_size):
    files = {"p1": b"first file", "p2": b"second file"}

    async def sync():
        async with RemoteServer(files) as server:
            units = [_named("a", server.base_url + path, path, data) for path, data in files.items()]
            return await declarative_version(
                units,
                db=db,
                storage=storage,
                remote=RemoteConfig(url=server.manifest_url),
                repository="r",
                batch_wait=0.01,
                batch_size=batch_size,
                on_error="skip",
            )

    result = asyncio.run(sync())
    assert result.added == 1 and result.failed_count == 1
    assert "natural key" in result.failures[0].reason
    with db.engine.connect() as conn:
        paths = conn.execute(select(ContentArtifact.__table__.c.relative_path)).scalars().all()
    assert len(paths) == 1  # the content holds the first declaration's file only


def test_saved_never_counts_a_unit_whose_row_another_sync_wrote_after_its_lookup(db, storage):
    """Two syncs of one manifest into two repositories, each held before its save until both looked
    everything up and found nothing stored; the first saves, then the second: the second wrote no
    content row, so it reports every unit linked to stored content and none saved."""
    arrived: dict[str, int] = {"first": 0, "second": 0}
    looked_up = {name: asyncio.Event() for name in arrived}
    go = {name: asyncio.Event() for name in arrived}
    finals: dict[str, ProgressSnapshot] = {}

    def hold(name: str):
        async def before_save(unit: PendingContent) -> None:
            arrived[name] += 1
            if arrived[name] == len(FILES):
                looked_up[name].set()
            await go[name].wait()

        return before_save

    def final(name: str):
        def listen(snapshot: ProgressSnapshot) -> None:
            if snapshot.finished:
                finals[name] = snapshot

        return listen

    async def scenario() -> None:
        async with RemoteServer(dict(FILES)) as server:

            def sync(name: str):
                return asyncio.ensure_future(
                    declarative_version(
                        file_units(server.manifest_url, FILES),
                        db=db,
                        storage=storage,
                        remote=RemoteConfig(url=server.manifest_url),
                        repository=name,
                        batch_wait=0.01,
                        pipeline=[ops.dedup(), ops.download(), ops.enrich(hold(name), n=len(FILES)), ops.save()],
                        on_progress=final(name),
                    )
                )

            first, second = sync("first"), sync("second")
            both_looked_up = asyncio.ensure_future(asyncio.gather(*(event.wait() for event in looked_up.values())))
            await asyncio.wait([first, second, both_looked_up], return_when=asyncio.FIRST_COMPLETED)
            assert both_looked_up.done(), "a sync ended before it reached its save"
            assert count_rows(db, Content) == 0  # both passed their lookups before anything was saved
            go["first"].set()
            assert (await first).added == len(FILES)
            go["second"].set()
            assert (await second).added == len(FILES)

    asyncio.run(scenario())
    assert (finals["first"].done("saved"), finals["first"].done("linked")) == (len(FILES), 0)
    assert (finals["second"].done("saved"), finals["second"].done("linked")) == (0, len(FILES))
    assert count_rows(db, Content) == len(FILES)
    assert version_content(db, "first") == version_content(db, "second") == file_set(FILES)
