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


# Linux's anonymous files (O_TMPFILE) where the filesystem has them, else temporary files renamed into place
_WRITE_PATHS = pytest.mark.parametrize("anonymous", [True, False], ids=["anonymous-files", "renamed-files"])


def _on_write_path(storage: LocalStorage, anonymous: bool) -> LocalStorage:
    if anonymous and not storage._anonymous_files:
        pytest.skip("this filesystem has no anonymous files (O_TMPFILE)")
    storage._anonymous_files = anonymous
    return storage


@_WRITE_PATHS
def test_put_bytes_many_writes_each_body_into_place_as_put_does(storage, anonymous):
    """Small bodies written in one call: each at its digest location, with put's mode, nothing left in tmp;
    a shard folder removed under the kept descriptors is opened again."""
    _on_write_path(storage, anonymous)
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


@_WRITE_PATHS
def test_put_bytes_many_reports_a_failed_file_and_writes_the_others(storage, anonymous):
    """One body that cannot be written (its shard name is taken by a file) is reported, not raised,
    and leaves no temporary file; the others of the call are written."""
    _on_write_path(storage, anonymous)
    good, bad = b"good body", b"bad body"
    bad_sha = hashlib.sha256(bad).hexdigest()
    (storage.root / "artifacts" / bad_sha[:2]).write_bytes(b"not a folder")
    results = storage.put_bytes_many([(bad_sha, bad), (hashlib.sha256(good).hexdigest(), good)])
    assert isinstance(results[0], OSError) and results[1] is None
    assert storage.exists(storage.location_for(hashlib.sha256(good).hexdigest()))
    assert list((storage.root / "tmp").iterdir()) == []


@_WRITE_PATHS
def test_put_bytes_many_replaces_a_damaged_file_of_the_same_digest_as_put_does(storage, anonymous):
    """A file already at the digest's location (damaged on disk, say: ``verify --repair`` writes it again)
    is replaced whole by the verified body, on either write path; nothing is left in the shard or tmp."""
    _on_write_path(storage, anonymous)
    body = b"the verified body"
    sha256 = hashlib.sha256(body).hexdigest()
    final = storage.root / storage.location_for(sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"damaged")

    assert storage.put_bytes_many([(sha256, body)]) == [None]

    assert final.read_bytes() == body
    assert sorted(path.name for path in final.parent.iterdir()) == [sha256[2:]]
    assert list((storage.root / "tmp").iterdir()) == []


def test_small_files_are_written_as_anonymous_files_where_the_filesystem_has_them(storage):
    """On Linux's local filesystems a small body never has a name in tmp: the file is created unnamed in
    its shard folder and linked there, so a crash mid-write leaves nothing to clean up. The renamed-file
    way is the fallback, and a filesystem without anonymous files switches to it for good."""
    if not hasattr(os, "O_TMPFILE") or sys.platform != "linux":
        pytest.skip("anonymous files (O_TMPFILE) are Linux's")
    body = b"an anonymous body"
    sha256 = hashlib.sha256(body).hexdigest()
    temp_folder = os.open(storage.root / "tmp", os.O_RDONLY)
    try:
        before = os.fstat(temp_folder).st_mtime_ns
        assert storage.put_bytes_many([(sha256, body)]) == [None]
        # no entry was ever created in (or removed from) tmp
        assert os.fstat(temp_folder).st_mtime_ns == before
    finally:
        os.close(temp_folder)
    assert storage._anonymous_files
    assert storage.local_path(storage.location_for(sha256)).read_bytes() == body
