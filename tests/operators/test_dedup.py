"""dedup and its two halves: what is stored is found, so nothing is downloaded or created twice."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from pendingops import PendingArtifact, PendingContent, RemoteConfig, declarative_version
from pendingops import operators as ops
from pendingops.db.schema import Artifact, Content, ContentArtifact, RemoteArtifact
from pendingops.plugins.file import FileContent
from tests.conftest import assert_no_duplicate_rows, count_rows, file_set, file_units, version_content
from tests.remote_server import RemoteServer

FILES = {f"d/f{i}": f"file {i}".encode() for i in range(12)}


def _syncs(db, storage, server: RemoteServer, *plans):
    """Run one sync per (repository, files, options) in ``plans`` against ``server``; return results."""

    async def scenario():
        results = []
        async with server:
            for repository, files, options in plans:
                units = file_units(server.manifest_url, files)
                options = {"remote": RemoteConfig(url=server.manifest_url), "batch_wait": 0.01, **options}
                results.append(
                    await declarative_version(units, db=db, storage=storage, repository=repository, **options)
                )
        return results

    return asyncio.run(scenario())


def _counts(db) -> tuple[int, ...]:
    return tuple(count_rows(db, t) for t in (Artifact, Content, ContentArtifact, RemoteArtifact))


def test_a_resync_downloads_and_creates_nothing(db, storage):
    server = RemoteServer(FILES)
    first, second = _syncs(db, storage, server, ("r", FILES, {"batch_size": 5}), ("r", FILES, {"batch_size": 5}))
    assert first.added == 12 and server.file_requests() == 12
    assert not second.created and second.added == 0 and second.version.number == 1
    assert server.file_requests() == 12
    assert _counts(db) == (12, 12, 12, 12)


def test_another_repository_reuses_stored_content_and_artifacts(db, storage):
    server = RemoteServer(FILES)
    _, other = _syncs(db, storage, server, ("a", FILES, {}), ("b", FILES, {"mirror": True}))
    assert other.added == 12 and server.file_requests() == 12
    assert _counts(db) == (12, 12, 12, 12)
    assert version_content(db, "b") == version_content(db, "a") == file_set(FILES)


def test_new_content_with_stored_bytes_is_linked_without_a_download(db, storage):
    copies = {f"copy/{path}": data for path, data in FILES.items()}
    server = RemoteServer(FILES | copies)
    _syncs(db, storage, server, ("r", FILES, {}), ("r", copies, {}))
    assert server.file_requests() == 12
    assert _counts(db) == (12, 24, 24, 24)
    assert version_content(db, "r") == file_set(FILES | copies)


def test_shared_bytes_within_one_sync_are_downloaded_once(db, storage):
    same = {f"same/{i}": b"identical bytes" for i in range(6)}
    server = RemoteServer(same, delay=0.02)
    (result,) = _syncs(db, storage, server, ("r", same, {"batch_size": 2}))
    assert result.added == 6
    assert server.file_requests() == 1
    assert _counts(db) == (1, 6, 6, 6)


@pytest.mark.parametrize(
    "lookup", [ops.query_existing_artifacts, ops.query_existing_content], ids=["artifacts", "content"]
)
def test_each_lookup_alone_avoids_second_downloads(db, storage, lookup):
    server = RemoteServer(FILES)
    pipeline = [lookup(), ops.download(), ops.save()]
    first, second = _syncs(
        db, storage, server, ("a", FILES, {"pipeline": pipeline}), ("b", FILES, {"pipeline": [lookup(), *pipeline[1:]]})
    )
    assert first.added == second.added == 12
    assert server.file_requests() == 12
    assert _counts(db) == (12, 12, 12, 12)
    assert_no_duplicate_rows(db)


def test_present_units_are_counted(db, storage):
    server = RemoteServer(FILES)
    seen = []
    half = dict(list(FILES.items())[:6])
    _syncs(db, storage, server, ("r", half, {}), ("r", FILES, {"on_progress": seen.append}))
    final = seen[-1]
    assert (final.done("seen"), final.done("present"), final.done("downloaded"), final.done("associated")) == (
        12,
        6,
        6,
        6,
    )


def test_a_stored_artifact_is_linked_only_when_every_declared_digest_agrees(db, storage):
    """Bytes already stored under the declared sha256 are shared with a new unit only if the unit's
    other declared digests agree too: a wrong md5 fails the unit, as a fresh download would."""
    data = b"shared bytes\n" * 10
    sha256 = hashlib.sha256(data).hexdigest()

    def unit(server: RemoteServer, path: str, md5_of: bytes) -> PendingContent:
        digests = {"md5": hashlib.md5(md5_of).hexdigest()}
        artifact = PendingArtifact(server.base_url + "f", path, size=len(data), sha256=sha256, digests=digests)
        return PendingContent(FileContent, {"relative_path": path, "sha256": sha256, "size": len(data)}, [artifact])

    async def scenario():
        async with RemoteServer({"f": data}) as server:
            options = {"db": db, "storage": storage, "remote": RemoteConfig(url=server.manifest_url, retries=0)}
            first = await declarative_version([unit(server, "one", data)], repository="one", **options)
            assert first.added == 1 and server.file_requests() == 1
            wrong = await declarative_version(
                [unit(server, "two", b"other bytes")], repository="two", on_error="skip", **options
            )
            assert wrong.failed_count == 1 and "md5 mismatch" in wrong.failures[0].reason
            assert not wrong.created

    asyncio.run(scenario())
