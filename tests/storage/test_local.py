"""LocalStorage: content-addressed layout, atomic put, removal of dead processes' temp files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from pendingops import LocalStorage, StorageError


def _write_temp(storage: LocalStorage, data: bytes):
    temp = storage.new_temp_path()
    temp.write_bytes(data)
    return temp


def test_put_renames_the_temp_file_into_its_digest_location(storage):
    data = b"some artifact bytes"
    sha256 = hashlib.sha256(data).hexdigest()
    temp = _write_temp(storage, data)
    inode = temp.stat().st_ino

    location = storage.put(temp, sha256)

    assert location == f"artifacts/{sha256[:2]}/{sha256[2:]}" == storage.location_for(sha256)
    assert not temp.exists()
    final = storage.local_path(location)
    # The same inode: the file was renamed (atomic on one filesystem), never copied byte by byte.
    assert final.stat().st_ino == inode
    assert storage.exists(location)
    with storage.open(location) as handle:
        assert handle.read() == data
    assert list((storage.root / "tmp").iterdir()) == []


def test_put_twice_is_idempotent(storage):
    data = b"same bytes"
    sha256 = hashlib.sha256(data).hexdigest()
    first = storage.put(_write_temp(storage, data), sha256)
    second = storage.put(_write_temp(storage, data), sha256)
    assert first == second
    assert storage.local_path(first).read_bytes() == data
    assert list((storage.root / "tmp").iterdir()) == []
    storage.delete(first)
    assert not storage.exists(first)
    storage.delete(first)  # deleting what is gone is fine


def test_temp_paths_are_fresh_and_carry_the_pid(storage):
    paths = {storage.new_temp_path() for _ in range(100)}
    assert len(paths) == 100
    assert all(p.name.startswith(f"{os.getpid()}-") and not p.exists() for p in paths)


def test_remove_stale_temp_files_removes_only_dead_writers_files(storage):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        tmp = storage.root / "tmp"
        mine = _write_temp(storage, b"mine")
        other_live = tmp / f"{alive.pid}-abc.part"
        other_live.write_bytes(b"live")
        stale = tmp / f"{dead.pid}-def.part"
        stale.write_bytes(b"stale")
        nameless = tmp / "garbage.part"
        nameless.write_bytes(b"?")
        unrelated = tmp / f"{dead.pid}-notes.txt"
        unrelated.write_bytes(b"not ours")
        stale_work = tmp / f"{dead.pid}-xyz.work"
        (stale_work / "sub").mkdir(parents=True)
        (stale_work / "sub" / "manifest").write_bytes(b"left behind")
        live_work = tmp / f"{alive.pid}-uvw.work"
        live_work.mkdir()

        assert storage.remove_stale_temp_files() == 3

        assert mine.exists() and other_live.exists() and unrelated.exists() and live_work.exists()
        assert not stale.exists() and not nameless.exists() and not stale_work.exists()
        assert storage.remove_stale_temp_files() == 0
    finally:
        alive.stdin.close()
        alive.wait()


def test_unusable_root_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot use storage directory"):
        LocalStorage(blocker / "storage")


def test_put_bytes_many_writes_each_body_into_place_as_put_does(storage):
    """Small bodies written in one call: each at its digest location, with put's mode, nothing left in tmp;
    a shard folder removed under the kept descriptors is opened again."""
    bodies = [f"small body {i}".encode() for i in range(20)]
    items = [(hashlib.sha256(body).hexdigest(), body) for body in bodies]
    assert storage.put_bytes_many(items) == [None] * len(items)
    reference = storage.local_path(storage.put(_write_temp(storage, b"by put"), hashlib.sha256(b"by put").hexdigest()))
    for sha256, body in items:
        path = storage.local_path(storage.location_for(sha256))
        assert path.read_bytes() == body
        assert path.stat().st_mode == reference.stat().st_mode
    assert list((storage.root / "tmp").iterdir()) == []

    sha256, body = items[0]
    shard = storage.local_path(storage.location_for(sha256)).parent
    for path in shard.iterdir():
        path.unlink()
    shard.rmdir()
    assert storage.put_bytes_many([(sha256, body)]) == [None]
    assert storage.local_path(storage.location_for(sha256)).read_bytes() == body
    storage.close()


def test_put_bytes_many_reports_a_failed_file_and_writes_the_others(storage):
    """One body that cannot be written (its shard name is taken by a file) is reported, not raised,
    and leaves no temporary file; the others of the call are written."""
    good, bad = b"good body", b"bad body"
    bad_sha = hashlib.sha256(bad).hexdigest()
    (storage.root / "artifacts" / bad_sha[:2]).write_bytes(b"not a folder")
    results = storage.put_bytes_many([(bad_sha, bad), (hashlib.sha256(good).hexdigest(), good)])
    assert isinstance(results[0], OSError) and results[1] is None
    assert storage.exists(storage.location_for(hashlib.sha256(good).hexdigest()))
    assert list((storage.root / "tmp").iterdir()) == []
