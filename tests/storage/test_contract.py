"""The ArtifactStorage contract, run once per backend: local folder and S3 (moto's server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys

import pytest

from pendingops.storage.base import ArtifactStorage


def _temp_with(storage: ArtifactStorage, data: bytes):
    temp = storage.new_temp_path()
    temp.write_bytes(data)
    return temp


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_stores_under_the_content_address_and_consumes_the_temp_file(any_storage: ArtifactStorage) -> None:
    data = b"some artifact bytes"
    temp = _temp_with(any_storage, data)

    location = any_storage.put(temp, _sha(data))

    assert location == f"artifacts/{_sha(data)[:2]}/{_sha(data)[2:]}" == any_storage.location_for(_sha(data))
    assert not temp.exists()
    assert any_storage.exists(location)
    with any_storage.open(location) as handle:
        assert handle.read() == data
    assert list(any_storage.iter_locations()) == [location]


def test_put_async_is_put_for_the_event_loop(any_storage: ArtifactStorage) -> None:
    data = b"async bytes"

    async def scenario() -> tuple[str, bool, bool]:
        location = await any_storage.put_async(_temp_with(any_storage, data), _sha(data))
        missing = any_storage.location_for(_sha(b"never stored"))
        return location, await any_storage.exists_async(location), await any_storage.exists_async(missing)

    location, present, absent = asyncio.run(scenario())
    assert (present, absent) == (True, False)
    with any_storage.open(location) as handle:
        assert handle.read() == data


def test_put_twice_is_idempotent_and_delete_is_too(any_storage: ArtifactStorage) -> None:
    data = b"same bytes"
    first = any_storage.put(_temp_with(any_storage, data), _sha(data))
    second = any_storage.put(_temp_with(any_storage, data), _sha(data))
    assert first == second and list(any_storage.iter_locations()) == [first]
    any_storage.delete(first)
    assert not any_storage.exists(first)
    any_storage.delete(first)  # deleting what is gone is fine
    assert list(any_storage.iter_locations()) == []


def test_open_of_a_missing_artifact_is_file_not_found(any_storage: ArtifactStorage) -> None:
    with pytest.raises(FileNotFoundError):
        any_storage.open(any_storage.location_for(_sha(b"nothing")))


def test_reads_come_in_chunks_of_any_size(any_storage: ArtifactStorage) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    location = any_storage.put(_temp_with(any_storage, data), _sha(data))
    pieces = []
    with any_storage.open(location) as handle:
        while chunk := handle.read(100_003):
            pieces.append(chunk)
    assert b"".join(pieces) == data


def test_iter_locations_lists_every_artifact_in_order(any_storage: ArtifactStorage) -> None:
    blobs = [f"blob {i}".encode() for i in range(12)]
    stored = {any_storage.put(_temp_with(any_storage, blob), _sha(blob)) for blob in blobs}
    assert list(any_storage.iter_locations()) == sorted(stored)


def test_temp_paths_are_fresh_local_paths_carrying_the_pid(any_storage: ArtifactStorage) -> None:
    paths = {any_storage.new_temp_path() for _ in range(100)}
    assert len(paths) == 100
    assert all(p.name.startswith(f"{os.getpid()}-") and not p.exists() and p.parent.is_dir() for p in paths)


def test_stale_temp_files_of_dead_processes_go_live_ones_stay(any_storage: ArtifactStorage) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = any_storage.new_temp_path().parent
    mine = _temp_with(any_storage, b"mine")
    stale = folder / f"{dead.pid}-abc.part"
    stale.write_bytes(b"stale")
    stale_work = folder / f"{dead.pid}-def.work"
    stale_work.mkdir()

    assert any_storage.remove_stale_temp_files() == 2

    assert mine.exists() and not stale.exists() and not stale_work.exists()
    assert any_storage.remove_stale_temp_files() == 0
