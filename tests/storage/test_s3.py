"""S3Storage on moto's S3 server: multipart uploads, no visible half-object, stale temporary keys."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pendingops import Database, RemoteConfig, sync_remote
from pendingops.plugins.file import FilePlugin
from pendingops.storage.base import StorageError
from pendingops.storage.owner import OWNER_MARKER
from pendingops.storage.s3 import S3Storage, parse_s3_url, this_host
from tests.remote_server import RemoteServer
from tests.s3_server import client

pytestmark = pytest.mark.s3
MiB = 1024 * 1024


def _keys(endpoint: str, storage: S3Storage) -> list[str]:
    page = client(endpoint).list_objects_v2(Bucket=storage.bucket)
    return sorted(item["Key"] for item in page.get("Contents", ()))


def _uploads(endpoint: str, storage: S3Storage) -> list[str]:
    return [item["Key"] for item in client(endpoint).list_multipart_uploads(Bucket=storage.bucket).get("Uploads", ())]


def test_a_large_file_goes_up_in_parts_and_leaves_only_its_content_address(s3_storage: S3Storage, s3_env: str) -> None:
    data = os.urandom(11 * MiB + 3)  # three parts of 5 MiB
    sha256 = hashlib.sha256(data).hexdigest()
    temp = s3_storage.new_temp_path()
    temp.write_bytes(data)

    location = s3_storage.put(temp, sha256)

    assert _keys(s3_env, s3_storage) == [f"pendingops/test/{location}"]
    assert _uploads(s3_env, s3_storage) == []
    with s3_storage.open(location) as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == sha256


def test_a_killed_upload_leaves_no_visible_object_and_its_parts_are_removed(
    s3_storage: S3Storage, s3_url: str, s3_env: str, tmp_path: Path
) -> None:
    """SIGKILL after the first part: nothing under artifacts/, and the dead upload is aborted later."""
    data = os.urandom(11 * MiB)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    child = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from pendingops.storage.s3 import S3Storage
        storage = S3Storage({s3_url!r}, {str(tmp_path / "child")!r}, part_size=5 * 1024 * 1024)
        real = storage._call
        async def call(operation, **params):
            if operation == "upload_part" and params["PartNumber"] == 2:
                print("first part stored", flush=True)
                await asyncio.sleep(3600)
            return await real(operation, **params)
        storage._call = call
        storage.put(Path({str(source)!r}), {hashlib.sha256(data).hexdigest()!r})
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "first part stored"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    assert list(s3_storage.iter_locations()) == []
    assert not s3_storage.exists(s3_storage.location_for(hashlib.sha256(data).hexdigest()))
    assert len(_uploads(s3_env, s3_storage)) == 1
    assert s3_storage.remove_stale_temp_files() == 1
    assert _uploads(s3_env, s3_storage) == [] and _keys(s3_env, s3_storage) == []


def test_stale_temp_objects_go_by_dead_pid_here_and_by_age_elsewhere(s3_storage: S3Storage, s3_env: str) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    s3 = client(s3_env)
    temp = "pendingops/test/tmp/"
    host = this_host()
    names = {
        "dead here": f"{temp}{host}/{dead.pid}-a.part",
        "alive here": f"{temp}{host}/{os.getpid()}-b.part",
        "other host": f"{temp}some-other-host/{dead.pid}-c.part",
    }
    for key in names.values():
        s3.put_object(Bucket=s3_storage.bucket, Key=key, Body=b"half")

    assert s3_storage.remove_stale_temp_files() == 1
    assert _keys(s3_env, s3_storage) == sorted([names["alive here"], names["other host"]])
    assert list(s3_storage.iter_locations()) == []  # temporary keys are never artifacts

    s3_storage.stale_after = 0  # another host's leftovers go once old enough
    assert s3_storage.remove_stale_temp_files() == 2
    assert _keys(s3_env, s3_storage) == []


def test_a_missing_bucket_is_a_clear_storage_error(s3_env: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot use storage s3://no-such-bucket-here/x"):
        S3Storage("s3://no-such-bucket-here/x", tmp_path)


def test_no_credentials_is_a_clear_storage_error_at_once(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials at all is no outage: the start-up check fails at once, naming the storage,
    instead of riding it out for the retry time and calling the storage unreachable."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # nor an instance to ask for them
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(StorageError) as caught:
        S3Storage(s3_url, tmp_path, retry_seconds=5)
    assert str(caught.value) == f"cannot use storage {s3_url}: head_bucket failed: Unable to locate credentials"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://my.bucket-1/a/b/", ("my.bucket-1", "a/b/")),
        ("s3://bucket//a//b", ("bucket", "a/b/")),
    ],
)
def test_s3_urls_parse(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize("url", ["s3://", "s3://B", "s3://x/../y", "s3://bucket/a?b", "s3://-bucket/p"])
def test_bad_s3_urls_are_refused(url: str) -> None:
    with pytest.raises(StorageError, match="bad S3 storage URL"):
        parse_s3_url(url)


def test_the_ownership_marker_is_create_only(s3_storage: S3Storage, s3_env: str) -> None:
    """Of two databases recording themselves as the owner, the second finds the first's record intact."""
    assert s3_storage.read_marker(OWNER_MARKER) is None
    assert s3_storage.create_marker(OWNER_MARKER, "a") is True
    assert s3_storage.create_marker(OWNER_MARKER, "b") is False
    assert s3_storage.read_marker(OWNER_MARKER) == "a"
    assert _keys(s3_env, s3_storage) == [f"pendingops/test/{OWNER_MARKER}"]


def _stored(storage: S3Storage, data: bytes) -> str:
    temp = storage.new_temp_path()
    temp.write_bytes(data)
    return storage.put(temp, hashlib.sha256(data).hexdigest())


def test_the_batched_missing_check_looks_under_the_prefix(s3_storage: S3Storage, s3_env: str) -> None:
    stored = _stored(s3_storage, b"stored under the prefix")
    absent = s3_storage.location_for(hashlib.sha256(b"never stored").hexdigest())
    assert s3_storage.prefix == "pendingops/test/" and f"{s3_storage.prefix}{stored}" in _keys(s3_env, s3_storage)
    assert s3_storage.missing([stored, absent]) == [absent]
    assert s3_storage.missing([stored]) == []


def test_a_second_repository_syncing_the_same_files_on_s3_finds_every_one_stored(
    db: Database, s3_storage: S3Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """The second sync finds every file stored (checked in the bucket, under the prefix): it asks the
    remote for its manifest only, and takes no stored file for missing (a run that did would be no
    base for the next one's shortcut)."""
    files = {f"dir/file-{i}.txt": f"shared file {i}".encode() for i in range(6)}
    caplog.set_level(logging.WARNING, logger="pendingops")

    async def scenario() -> None:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=s3_storage, repository="first")
            assert server.file_requests() == len(files)
            second = await sync_remote(FilePlugin(), remote, db=db, storage=s3_storage, repository="second")
            assert (second.version.number, second.added) == (1, len(files))
            assert server.file_requests() == len(files)
            assert not [m for m in caplog.messages if "missing from storage" in m]
            third = await sync_remote(FilePlugin(), remote, db=db, storage=s3_storage, repository="second")
            assert third.remote_unchanged

    asyncio.run(scenario())
