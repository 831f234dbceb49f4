"""S3 outages (issue findings): a stall, a refusal, 503 bursts, behind a fault-injecting proxy in front of moto.

Faults are cued by the traffic (after so many requests) and healed on events the proxy sees (a
client gave up on a held request), never by clocks; timeouts and retry times are set short.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

import pytest

from pendingops import Database, RemoteConfig, sync_remote
from pendingops.plugins.file import FilePlugin
from pendingops.storage import s3 as s3_module
from pendingops.storage.base import StorageError, StorageUnavailable
from pendingops.storage.owner import StorageOwnedElsewhere, claim_storage
from pendingops.storage.s3 import S3Storage, s3_timeouts
from tests.cli.test_cli import Cli
from tests.conftest import POSTGRES_URL, fresh_database
from tests.cutting_proxy import FaultProxy
from tests.remote_server import Fault, RemoteServer
from tests.server_thread import ServerThread

pytestmark = pytest.mark.s3


def _files(count: int, pad: int = 0) -> dict[str, bytes]:
    """``count`` small files, each ``pad`` bytes longer: past 64 KiB a body is streamed into storage
    as it downloads instead of being written in a batch after it."""
    return {f"dir/file-{i:03d}.txt": f"outage file {i}\n".encode() * (i + 1) + b"." * pad for i in range(count)}


def _sync(db: Database, storage: S3Storage, files: dict[str, bytes], **options: object) -> object:
    async def scenario() -> object:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url)
            return await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", **options)

    return asyncio.run(scenario())


def _in_background(work: object) -> threading.Thread:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_a_stall_longer_than_the_read_timeout_is_ridden_out(
    db: Database, faulty_s3: FaultProxy, s3_url: str, tmp_path: Path
) -> None:
    """Finding 1: S3 stalls mid-sync, requests time out and are retried; once it answers again the sync
    ends with every file stored, under --on-error skip (nothing skipped)."""
    files = _files(30)
    storage = S3Storage(s3_url, tmp_path / "staging")
    try:
        faulty_s3.stall_after(20)

        def heal_once_a_request_timed_out() -> None:
            try:
                faulty_s3.wait_for("dropped", 1)
            finally:
                faulty_s3.heal()  # whatever happened: a failed wait must not leave the sync stalled

        healer = _in_background(heal_once_a_request_timed_out)
        result = _sync(db, storage, files, on_error="skip", storage_retry_seconds=60)
        healer.join(60)
        assert healer.errors == []  # type: ignore[attr-defined]
        assert faulty_s3.dropped >= 1  # a request did time out and was tried again
        assert (result.version.number, result.added, result.failed_count) == (1, len(files), 0)  # type: ignore[attr-defined]
        wanted = [storage.location_for(hashlib.sha256(data).hexdigest()) for data in files.values()]
        assert storage.missing(wanted) == []
    finally:
        storage.close()


def test_a_burst_of_slow_down_answers_is_ridden_out(
    db: Database, faulty_s3: FaultProxy, s3_url: str, tmp_path: Path
) -> None:
    """Finding 4: 503 SlowDown to 6 requests in a row (a few seconds of pauses), from the sync's first request on."""
    files = _files(12)
    storage = S3Storage(s3_url, tmp_path / "staging")
    try:
        faulty_s3.fail_next(6)
        result = _sync(db, storage, files, on_error="skip", storage_retry_seconds=60)
        assert faulty_s3.slowed == 6
        assert (result.version.number, result.added, result.failed_count) == (1, len(files), 0)  # type: ignore[attr-defined]
    finally:
        storage.close()


def test_an_outage_met_by_the_start_up_check_is_ridden_out(faulty_s3: FaultProxy, s3_url: str, tmp_path: Path) -> None:
    """The storage's first request (is the bucket there?) meets 503 SlowDown three times: it is tried
    again like any later request, and the storage opens; past the retry time it fails in one line."""
    faulty_s3.fail_next(3)
    storage = S3Storage(s3_url, tmp_path / "staging", retry_seconds=60)
    storage.close()
    assert faulty_s3.slowed == 3
    faulty_s3.refuse()
    try:
        with pytest.raises(StorageUnavailable, match=rf"^storage {s3_url} unreachable for \d+ s \("):
            S3Storage(s3_url, tmp_path / "staging", retry_seconds=0.5)
    finally:
        faulty_s3.heal()


def test_a_refused_upload_fails_with_the_upload_error_not_its_cleanup(
    faulty_s3: FaultProxy, s3_url: str, tmp_path: Path
) -> None:
    """The first error wins: a large file's upload (in parts, through a temporary key) refused, the
    cleanup of that key never masks the upload's own error."""
    storage = S3Storage(s3_url, tmp_path / "staging", retry_seconds=0.5, part_size=5 * 1024 * 1024)
    data = b"x" * (5 * 1024 * 1024 + 1)
    try:
        temp = storage.new_temp_path()
        temp.write_bytes(data)
        faulty_s3.refuse()
        with pytest.raises(StorageUnavailable) as caught:
            storage.put(temp, hashlib.sha256(data).hexdigest())
        message = str(caught.value)
        assert message.startswith(f"storage {s3_url} unreachable")
        assert "create_multipart_upload" in message and "delete_object" not in message
    finally:
        faulty_s3.heal()
        storage.close()


def test_a_small_upload_to_a_storage_that_stalls_for_good_gives_up(
    faulty_s3: FaultProxy, s3_url: str, tmp_path: Path
) -> None:
    """A stalled S3 takes a small PutObject's request and never answers: the upload ends within the
    retry time and a timeout (no body held back for a "100 Continue" that never comes)."""
    storage = S3Storage(s3_url, tmp_path / "staging", retry_seconds=0.5)
    data = b"small body\n" * 10
    try:
        temp = storage.new_temp_path()
        temp.write_bytes(data)
        faulty_s3.stall()
        upload = _in_background(lambda: storage.put(temp, hashlib.sha256(data).hexdigest()))
        upload.join(120)  # a hang detector, not a margin: the upload gives up after about 2.5 s
        assert not upload.is_alive(), "the upload to a stalled storage never gave up"
        [error] = upload.errors  # type: ignore[attr-defined]
        assert isinstance(error, StorageUnavailable), error
        assert str(error).startswith(f"storage {s3_url} unreachable")
        assert faulty_s3.dropped >= 1  # the client gave up on a request the stall held
    finally:
        faulty_s3.heal()
        storage.close()


def test_a_large_upload_to_a_storage_that_stops_reading_gives_up(
    faulty_s3: FaultProxy, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage that takes a request but stops reading its body: a body larger than the socket buffers is
    never sent whole, and no read timeout runs while it is being sent. The request's whole-time bound
    (connect + read timeouts + size at the slowest rate still an upload) ends it; the rate is raised
    here so the bound is seconds, not the minutes 24 MiB at 64 KiB/s would take."""
    monkeypatch.setattr(s3_module, "_SLOWEST_UPLOAD", 64 * 1024 * 1024)
    storage = S3Storage(s3_url, tmp_path / "staging", retry_seconds=0.5, part_size=32 * 1024 * 1024)
    data = b"large body\n" * (24 * 1024 * 1024 // 11)
    try:
        temp = storage.new_temp_path()
        temp.write_bytes(data)
        faulty_s3.stall(reading=False)
        upload = _in_background(lambda: storage.put(temp, hashlib.sha256(data).hexdigest()))
        upload.join(120)  # a hang detector, not a margin: the upload gives up after a few seconds
        assert not upload.is_alive(), "the upload to a storage that stopped reading never gave up"
        [error] = upload.errors  # type: ignore[attr-defined]
        assert isinstance(error, StorageUnavailable), error
        assert str(error).startswith(f"storage {s3_url} unreachable")
        assert faulty_s3.held >= 1
    finally:
        faulty_s3.heal()
        storage.close()


@pytest.fixture
def faulty_cli(
    db_kind: str, tmp_path: Path, s3_url: str, faulty_s3: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> Cli:
    db = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    db.close()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return Cli(url, s3_url)  # type: ignore[arg-type]


@pytest.mark.parametrize("pad", [0, 70_000], ids=["small-bodies", "streamed-bodies"])
@pytest.mark.parametrize("fault", ["refuse", "stall"])
def test_storage_down_for_good_ends_the_sync_in_one_line_and_no_short_version(
    faulty_cli: Cli, faulty_s3: FaultProxy, s3_url: str, fault: str, pad: int
) -> None:
    """Findings 2, 3, 5: S3 refuses (or stalls) for good mid-sync under --on-error skip: the process exits
    with one line naming the storage, no version (not a short one), no traceback; the rerun completes.
    Both ways a body reaches storage: written in a batch after its download, or streamed as it comes.
    The last file is held by the remote until the end: only the storage outage can end the sync (a sync
    that skipped units instead would wait for it, and the run would time out)."""
    files = _files(40, pad)
    held = threading.Event()
    last = sorted(files)[-1]
    with ServerThread(server=RemoteServer(dict(files), faults={last: Fault(stall=3600, until=held)})) as server:
        if fault == "refuse":
            faulty_s3.refuse_after(30)
        else:
            faulty_s3.stall_after(30)
        try:
            options = ("--repo", "r", "--quiet", "--on-error", "skip", "--storage-retry-seconds", "2")
            done = faulty_cli.run("sync", server.manifest_url, *options)
        finally:
            held.set()
        server.faults.pop(last)
        assert done.returncode == 1, (done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert f"storage {s3_url} unreachable" in lines[0] and "no new version; rerun" in lines[0], lines
        assert "new version" not in done.stdout
        listed = faulty_cli.run("versions", "r")
        assert "1" not in listed.stdout.split(), listed.stdout

        faulty_s3.heal()
        again = faulty_cli.run("sync", server.manifest_url, "--repo", "r", "--quiet", "--on-error", "skip")
        assert again.returncode == 0, again.stderr
        assert "new version 1" in again.stdout and f"{len(files)} unit" in again.stdout, again.stdout


@pytest.mark.parametrize("pad", [0, 70_000], ids=["small-bodies", "streamed-bodies"])
def test_uploads_failing_alone_stop_the_sync_rather_than_skip_units(
    faulty_cli: Cli, faulty_s3: FaultProxy, s3_url: str, pad: int
) -> None:
    """Finding 3 where only the uploads meet the outage (every PUT answered 503 SlowDown, existence checks
    answered): under --on-error skip the sync still ends as a whole, in one line, with no new version.
    The remote's last file is held until the end, so a sync that skipped the failed units would wait."""
    with ServerThread(_files(3)) as first:
        assert faulty_cli.run("sync", first.manifest_url, "--repo", "r", "--quiet").returncode == 0
    files = _files(20, pad)
    held = threading.Event()
    last = sorted(files)[-1]
    with ServerThread(server=RemoteServer(dict(files), faults={last: Fault(stall=3600, until=held)})) as server:
        faulty_s3.fail_puts()
        try:
            options = ("--repo", "r", "--quiet", "--on-error", "skip", "--storage-retry-seconds", "1")
            done = faulty_cli.run("sync", server.manifest_url, *options)
        finally:
            held.set()
            faulty_s3.heal()
    assert done.returncode == 1, (done.stdout, done.stderr)
    [line] = done.stderr.strip().splitlines()
    assert f"storage {s3_url} unreachable" in line and "no new version; rerun" in line, line
    assert faulty_s3.slowed >= 1
    listed = faulty_cli.run("versions", "r")
    assert "2" not in listed.stdout.split(), listed.stdout


def test_the_ownership_refusal_names_the_bucket_and_prefix(db: Database, s3_storage: S3Storage, tmp_path: Path) -> None:
    """Issue 26 item 5: the S3 storage is named s3://bucket/prefix, not by its Python object."""
    claim_storage(db, s3_storage)
    (tmp_path / "other").mkdir()
    other = fresh_database("sqlite", tmp_path / "other")
    try:
        with pytest.raises(StorageOwnedElsewhere) as caught:
            claim_storage(other, s3_storage)
    finally:
        other.close()
    assert str(s3_storage) == f"s3://{s3_storage.bucket}/pendingops/test"
    assert f"storage s3://{s3_storage.bucket}/pendingops/test belongs to another database" in str(caught.value)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_a_bad_timeout_setting_is_named(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENDINGOPS_S3_READ_TIMEOUT", value)
    with pytest.raises(StorageError, match="PENDINGOPS_S3_READ_TIMEOUT must be a positive number"):
        s3_timeouts()


def test_timeouts_default_to_10_and_30_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PENDINGOPS_S3_CONNECT_TIMEOUT", raising=False)
    monkeypatch.delenv("PENDINGOPS_S3_READ_TIMEOUT", raising=False)
    assert s3_timeouts() == (10.0, 30.0)
    monkeypatch.setenv("PENDINGOPS_S3_CONNECT_TIMEOUT", "2.5")
    assert s3_timeouts() == (2.5, 30.0)
