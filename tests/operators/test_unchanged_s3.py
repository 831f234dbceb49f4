"""The resync's unchanged-units comparison with S3 storage: its stored files are looked for in the
bucket (HEAD requests, ``S3Storage.missing``) rather than on a local disk.

Each test syncs from a real aiohttp server on 127.0.0.1 into moto's S3 server, on SQLite and
PostgreSQL; what is fetched again is read from the remote server's request counts.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from pendingops.progress import ProgressSnapshot
from pendingops.storage.s3 import S3Storage
from tests.conftest import count_statements, file_set, key_lookups, version_content
from tests.operators.test_unchanged import _run
from tests.remote_server import RemoteServer
from tests.s3_server import client

pytestmark = pytest.mark.s3


def _files(n: int) -> dict[str, bytes]:
    return {f"dir{i % 3}/file-{i:04}": f"s3 bytes of {i}\n".encode() * (i + 1) for i in range(n)}


def _object(s3_env: str, storage: S3Storage, data: bytes) -> bytes | None:
    """The bytes of ``data``'s object in the bucket, or None when there is none."""
    key = storage.prefix + storage.location_for(hashlib.sha256(data).hexdigest())
    s3 = client(s3_env)
    try:
        answer = s3.get_object(Bucket=storage.bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    return answer["Body"].read()


def test_a_resync_of_an_unchanged_remote_fetches_nothing_from_it(db, s3_env, s3_storage):
    """Every unit is found unchanged in SQL, its object found in the bucket: nothing is downloaded
    again, no unit takes the whole path, and the version holds every unit."""
    files = _files(12)
    snapshots: list[ProgressSnapshot] = []

    async def scenario():
        async with RemoteServer(dict(files)) as server:
            first = await _run(db, s3_storage, server, files)
            fetched = server.file_requests()
            with count_statements(db) as statements:
                again = await _run(db, s3_storage, server, files, on_progress=snapshots.append)
            return first, fetched, again, server.file_requests(), statements

    first, fetched, again, fetched_after, statements = asyncio.run(scenario())
    assert (first.added, fetched) == (12, 12)
    assert (again.added, again.removed, again.failed_count, again.created) == (0, 0, 0, False)
    assert fetched_after == fetched  # not one GET more from the remote
    assert snapshots[-1].done("present") == 12 and key_lookups(statements) == 0  # all settled as unchanged
    assert version_content(db, "r") == file_set(files)
    assert all(_object(s3_env, s3_storage, data) == data for data in files.values())


def test_a_unit_whose_object_was_deleted_from_the_bucket_is_fetched_again(db, s3_env, s3_storage):
    """One object deleted behind the sync's back: the resync finds it missing in the bucket, fetches
    that unit (one GET) and no other, and the object is back with its bytes."""
    files = _files(10)
    victim = "dir0/file-0003"
    key = s3_storage.prefix + s3_storage.location_for(hashlib.sha256(files[victim]).hexdigest())

    async def scenario():
        async with RemoteServer(dict(files)) as server:
            await _run(db, s3_storage, server, files)
            before = dict(server.requests)
            client(s3_env).delete_object(Bucket=s3_storage.bucket, Key=key)
            assert _object(s3_env, s3_storage, files[victim]) is None
            result = await _run(db, s3_storage, server, files)
            return result, before, dict(server.requests)

    result, before, after = asyncio.run(scenario())
    again = {path: after[path] - before.get(path, 0) for path in files if after[path] != before.get(path, 0)}
    assert again == {victim: 1}  # exactly that one GET
    assert (result.added, result.removed, result.failed_count, result.created) == (0, 0, 0, False)
    assert _object(s3_env, s3_storage, files[victim]) == files[victim]
    assert version_content(db, "r") == file_set(files)
