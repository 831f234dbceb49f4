"""Database outages: a PostgreSQL restart at several moments of a sync. The reported outcome is the
stored outcome, and two syncs of one repository never both write a version.

The restarts happen in a private cluster this module creates (initdb into a temporary folder, on a
free port) and removes, so the shared test server is never disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import event, func, select, text

from pendingops import (
    Database,
    LocalStorage,
    PendingContent,
    RemoteConfig,
    SyncFailed,
    declarative_version,
    default_pipeline,
    open_database,
)
from pendingops import operators as ops
from pendingops.db.database import connection_lost
from pendingops.db.locks import LockBusy
from pendingops.db.schema import ContentArtifact, SyncRun
from pendingops.db.versions import VersionError
from pendingops.maintenance.orphans import remove_orphans
from pendingops.remote import Policy
from tests.conftest import assert_artifacts_intact, file_set, file_units, version_content, version_numbers
from tests.cutting_proxy import CuttingProxy
from tests.pg_cluster import PrivateCluster, pg_bin
from tests.remote_server import RemoteServer
from tests.server_thread import ServerThread

pytestmark = pytest.mark.postgres

SCRIPT = str(Path(sys.executable).with_name("pendingops"))
FILES = {f"d{i % 4}/f{i:03}": f"outage file {i}".encode() * 8 for i in range(48)}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    if pg_bin("initdb") is None or pg_bin("pg_ctl") is None:
        message = "PostgreSQL's initdb and pg_ctl are not installed"
        if os.environ.get("PENDINGOPS_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="pendingops-cluster-"))
    folder.chmod(0o755)
    private = PrivateCluster(folder)
    private.create()
    try:
        yield private
    finally:
        private.remove()


@pytest.fixture
def outage_db(cluster: PrivateCluster) -> Iterator[Database]:
    db = open_database(cluster.url, create=False)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.create_schema()
    yield db
    db.close()


def _restart_before(db: Database, cluster: PrivateCluster, statement_start: str) -> Callable[[], int]:
    """Restart the server just before a statement starting with ``statement_start`` runs (its second
    one when ``statement_start`` begins with ``2nd ``)."""
    nth = 2 if statement_start.startswith("2nd ") else 1
    statement_start = statement_start.removeprefix("2nd ")
    seen: list[int] = []
    fired: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not fired and statement.lstrip().startswith(statement_start):
            seen.append(1)
            if len(seen) == nth:
                fired.append(1)
                cluster.restart()

    event.listen(db.engine, "before_cursor_execute", before)
    return lambda: len(fired)


def _sync(
    db: Database,
    storage: LocalStorage,
    server: RemoteServer,
    pipeline: list | None = None,
    policy: Policy = "immediate",
    **options: Any,
) -> Any:
    async def run() -> Any:
        async with server:
            units = file_units(server.manifest_url, FILES)
            try:
                return await declarative_version(
                    units,
                    db=db,
                    storage=storage,
                    remote=RemoteConfig(url=server.manifest_url, policy=policy),
                    repository="r",
                    mirror=True,
                    batch_size=12,
                    batch_wait=0.01,
                    pipeline=pipeline,
                    **options,
                )
            except SyncFailed as exc:
                return exc

    return asyncio.run(run())


def _assert_truthful(db: Database, storage: LocalStorage, outcome: Any) -> None:
    """Success if and only if a complete new version holds every file; failure leaves no new version."""
    runs = SyncRun.__table__
    with db.engine.connect() as conn:
        states = conn.execute(select(runs.c.state)).scalars().all()
    if isinstance(outcome, SyncFailed):
        assert "\n" not in str(outcome)
        with contextlib.suppress(VersionError):  # raised if the outage came before the repository was registered
            assert version_numbers(db, "r") == [0]
        assert not states or states[-1] != "completed"
    else:
        assert outcome.version.number == 1 and outcome.added == len(FILES)
        assert version_numbers(db, "r") == [0, 1]
        assert version_content(db, "r") == file_set(FILES)
        assert states[-1] == "completed"
    assert_artifacts_intact(db, storage)


MOMENTS = pytest.mark.parametrize(
    ("moment", "statement"),
    [
        ("while registering the repository", "INSERT INTO repository_version "),
        ("while starting the version", "2nd INSERT INTO repository_version "),
        ("while recording the run", "INSERT INTO sync_run "),
        ("during a dedup lookup", "SELECT content.id, content.content_type"),
        ("during a save batch", "INSERT INTO content "),
        ("while adding to the version", "INSERT INTO repository_content "),
        ("while finishing the version", "UPDATE repository_version SET complete"),
    ],
)


@MOMENTS
def test_a_restart_inside_a_database_batch_is_ridden_out(outage_db, storage, cluster, moment, statement):
    """The batch's transaction is rolled back by the restart and runs again on a fresh connection:
    the sync succeeds with the one version it was building."""
    fired = _restart_before(outage_db, cluster, statement)
    outcome = _sync(outage_db, storage, RemoteServer(dict(FILES)))
    assert fired() == 1
    assert not isinstance(outcome, SyncFailed), f"{moment}: {outcome}"
    _assert_truthful(outage_db, storage, outcome)
    with outage_db.engine.connect() as conn:
        assert conn.execute(select(SyncRun.__table__.c.state)).scalars().all() == ["completed"]


@MOMENTS
def test_with_no_retry_time_a_restart_inside_a_batch_fails_the_sync_and_says_so(
    outage_db, storage, cluster, moment, statement
):
    fired = _restart_before(outage_db, cluster, statement)
    outcome = _sync(outage_db, storage, RemoteServer(dict(FILES)), db_retry_seconds=0)
    assert fired() == 1
    assert isinstance(outcome, SyncFailed), moment
    assert "database connection lost" in str(outcome) and "no new version" in str(outcome)
    _assert_truthful(outage_db, storage, outcome)
    rerun = _sync(outage_db, storage, RemoteServer(dict(FILES)))  # the rerun completes the version
    _assert_truthful(outage_db, storage, rerun)
    assert not isinstance(rerun, SyncFailed)


@pytest.mark.parametrize("retry_seconds", [0, 30])
def test_a_finish_whose_commit_answer_is_lost_is_reported_as_the_success_it_was(
    outage_db, storage, cluster, retry_seconds
):
    """The finishing transaction reaches the server and commits; the connection is cut before its
    answer comes back. The run record, written in that transaction, tells the sync it succeeded."""
    with CuttingProxy(cluster.port, marker=b"UPDATE repository_version SET complete") as proxy:
        through_proxy = open_database(cluster.url.replace(f":{cluster.port}/", f":{proxy.port}/"), create=False)
        try:
            outcome = _sync(through_proxy, storage, RemoteServer(dict(FILES)), db_retry_seconds=retry_seconds)
        finally:
            through_proxy.close()
    assert proxy.cuts == 1
    assert not isinstance(outcome, SyncFailed), str(outcome)
    _assert_truthful(outage_db, storage, outcome)
    with outage_db.engine.connect() as conn:
        assert conn.execute(select(SyncRun.__table__.c.state)).scalars().all() == ["completed"]


def test_an_outage_longer_than_the_retry_time_fails_the_sync_and_says_so(outage_db, storage, cluster):
    """The server goes down during a save batch and stays down until the sync has given up."""
    fired: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not fired and statement.lstrip().startswith("INSERT INTO content "):
            fired.append(1)
            cluster.stop()

    event.listen(outage_db.engine, "before_cursor_execute", before)
    try:
        outcome = _sync(outage_db, storage, RemoteServer(dict(FILES)), db_retry_seconds=1)
    finally:
        cluster.start()
    assert fired
    assert isinstance(outcome, SyncFailed)
    assert "database connection lost" in str(outcome) and "during save; retried for" in str(outcome)
    assert "no new version" in str(outcome) and "\n" not in str(outcome)
    assert version_numbers(outage_db, "r") == [0]
    runs = SyncRun.__table__
    with outage_db.engine.connect() as conn:  # the database was down: the failure could not be recorded
        assert conn.execute(select(runs.c.state)).scalars().all() == ["running"]
    rerun = _sync(outage_db, storage, RemoteServer(dict(FILES)))
    _assert_truthful(outage_db, storage, rerun)
    assert not isinstance(rerun, SyncFailed)
    with outage_db.engine.connect() as conn:  # the next sync of the repository closes that record
        first, second = conn.execute(select(runs.c.state, runs.c.error).order_by(runs.c.id)).all()
    assert first.state == "failed" and "ended without recording its outcome" in first.error
    assert second.state == "completed"


def test_a_restart_during_downloads_costs_a_pause_not_the_sync(outage_db, storage, cluster):
    """The server restarts while files download and batches are saved: later batches retry on fresh
    connections, the lost locks are taken again, and the version is finished."""
    started = asyncio.Event()

    async def restart_once(unit: PendingContent) -> None:
        if unit.fields["relative_path"] == "d1/f009" and not started.is_set():
            started.set()
            await asyncio.to_thread(cluster.restart)

    outcome = _sync(outage_db, storage, RemoteServer(dict(FILES)), [ops.enrich(restart_once), *_default()])
    assert started.is_set()
    assert not isinstance(outcome, SyncFailed), str(outcome)
    _assert_truthful(outage_db, storage, outcome)


def test_a_second_sync_during_the_outage_and_the_first_never_both_write_a_version(outage_db, storage, cluster):
    """Sync A holds its first batch at the end of its pipeline, its window full, so it does no database
    work; the server restarts (A's locks go with its session); sync B of the same repository runs to
    the end; A resumes, retries on a fresh connection, takes the locks again and must still fail,
    fenced by the version B discarded: only B's version exists."""
    b_files = {"only-b.txt": b"written by sync B"}

    async def scenario() -> tuple[Any, Any]:
        async with RemoteServer(dict(FILES)) as server_a, RemoteServer(dict(b_files)) as server_b:
            a, resume = await _sync_held_at_a_full_window(outage_db, storage, server_a)
            await asyncio.to_thread(cluster.restart)
            other = open_database(cluster.url, create=False)
            try:
                b = await declarative_version(
                    file_units(server_b.manifest_url, b_files),
                    db=other,
                    storage=storage,
                    remote=RemoteConfig(url=server_b.manifest_url),
                    repository="r",
                    mirror=True,
                    batch_wait=0.01,
                    wait_for_lock=False,  # A's lock went with its session: B must not wait for it
                )
            finally:
                other.close()
            resume.set()
            try:
                return await a, b
            except SyncFailed as exc:
                return exc, b

    a, b = asyncio.run(scenario())
    # A fails: on the lost connection, or at its next write, fenced by the version B discarded.
    assert isinstance(a, SyncFailed) and ("lock was lost" in str(a) or "database connection lost" in str(a))
    assert b.version.number == 1
    assert version_numbers(outage_db, "r") == [0, 1]
    assert version_content(outage_db, "r") == file_set(b_files)
    assert_artifacts_intact(outage_db, storage)


def _unlinked_files(db: Database) -> int:
    """Content artifacts that do not point at a stored artifact (not downloaded yet)."""
    ca = ContentArtifact.__table__
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).where(ca.c.artifact_id.is_(None))).scalar_one()


def test_an_outage_retry_restores_every_unit_field_it_touched(outage_db, storage, cluster):
    """Content saved on demand, then resynced immediate: the restart comes just before the statement
    that links the newly downloaded files to their content. The batch's transaction was rolled back,
    so its retry must link them again (the units' marks from the lost attempt put back): after the
    success, no content artifact still lacks its artifact."""
    lazy = _sync(outage_db, storage, RemoteServer(dict(FILES)), policy="on_demand")
    assert not isinstance(lazy, SyncFailed), str(lazy)
    assert _unlinked_files(outage_db) == len(FILES)
    fired = _restart_before(outage_db, cluster, "UPDATE content_artifact SET artifact_id")
    outcome = _sync(outage_db, storage, RemoteServer(dict(FILES)))
    assert fired() == 1
    assert not isinstance(outcome, SyncFailed), str(outcome)
    assert (outcome.version.number, outcome.created) == (1, False)
    assert _unlinked_files(outage_db) == 0
    assert version_content(outage_db, "r") == file_set(FILES)
    assert_artifacts_intact(outage_db, storage)


@dataclass
class _SlowFileServer(RemoteServer):
    """Holds its answer for the file ``held`` until ``release`` is set."""

    held: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def _respond(self, request: web.Request, path: str, data: bytes) -> web.StreamResponse:
        if path == self.held:
            await self.release.wait()
        return await super()._respond(request, path, data)


def test_after_an_outage_retry_the_repository_lock_is_held_again(outage_db, storage, cluster):
    """The restart comes during sync 1's first save (its locks go with their connections); the retried save
    succeeds while one of sync 1's files is still held by the remote. Sync 2 of the same repository is
    then refused the lock (sync 1 holds it again, not only the store lock), and sync 1 completes."""
    slow = sorted(FILES)[-1]
    saved: list[str] = []
    all_but_slow_saved = asyncio.Event()

    async def after_save(unit: PendingContent) -> None:
        saved.append(unit.fields["relative_path"])
        if len(saved) == len(FILES) - 1:
            all_but_slow_saved.set()

    fired = _restart_before(outage_db, cluster, "INSERT INTO content ")

    async def scenario() -> tuple[Any, bool, Any]:
        second_files = {"only-2.txt": b"sync 2"}
        async with _SlowFileServer(dict(FILES), held=slow) as server, RemoteServer(second_files) as server_2:
            first = asyncio.ensure_future(
                declarative_version(
                    file_units(server.manifest_url, FILES),
                    db=outage_db,
                    storage=storage,
                    remote=RemoteConfig(url=server.manifest_url),
                    repository="r",
                    mirror=True,
                    batch_size=12,
                    batch_wait=0.01,
                    pipeline=[*_default(), ops.enrich(after_save, n=len(FILES))],
                )
            )
            saved_all_but_slow = asyncio.ensure_future(all_but_slow_saved.wait())
            await asyncio.wait([first, saved_all_but_slow], return_when=asyncio.FIRST_COMPLETED)
            saved_all_but_slow.cancel()
            second: Any = None
            if not first.done():  # else sync 1 failed on its own: reported below
                other = open_database(cluster.url, create=False)
                try:
                    second = await declarative_version(
                        file_units(server_2.manifest_url, second_files),
                        db=other,
                        storage=storage,
                        remote=RemoteConfig(url=server_2.manifest_url),
                        repository="r",
                        mirror=True,
                        wait_for_lock=False,
                    )
                except LockBusy as exc:
                    second = exc
                finally:
                    other.close()
            first_waited = not first.done()
            server.release.set()
            try:
                return second, first_waited, await first
            except SyncFailed as exc:
                return second, first_waited, exc

    second, first_waited, outcome = asyncio.run(scenario())
    assert second is not None, f"sync 1 ended before its slow file was sent: {outcome}"
    assert fired() == 1 and slow not in saved[: len(FILES) - 1]
    assert isinstance(second, LockBusy), f"sync 2 ran while sync 1 was still running: {second}"
    assert first_waited
    assert not isinstance(outcome, SyncFailed), str(outcome)
    _assert_truthful(outage_db, storage, outcome)


async def _sync_held_at_a_full_window(
    db: Database, storage: LocalStorage, server: RemoteServer
) -> tuple[asyncio.Future[Any], asyncio.Event]:
    """Start a mirror sync of FILES and return once its first batch is held at the end of its pipeline
    with its window (12) full, so it does no database work; it goes on when the event is set."""
    paused, resume = asyncio.Event(), asyncio.Event()
    held: list[PendingContent] = []

    async def hold(unit: PendingContent) -> None:
        held.append(unit)
        if len(held) == 12:  # the whole window: nothing of the sync's is anywhere else
            paused.set()
        await resume.wait()

    sync = asyncio.ensure_future(
        declarative_version(
            file_units(server.manifest_url, FILES),
            db=db,
            storage=storage,
            remote=RemoteConfig(url=server.manifest_url),
            repository="r",
            mirror=True,
            batch_size=12,
            window=12,
            batch_wait=0.01,
            pipeline=[*_default(), ops.associate(), ops.enrich(hold, n=12)],
        )
    )
    await paused.wait()
    return sync, resume


def _default() -> list:
    return default_pipeline()


def test_a_sync_that_lost_its_store_lock_fails_if_an_orphan_cleanup_ran_meanwhile(outage_db, storage, cluster):
    """Sync A idles with its window full; the server restarts (A's shared store lock goes with its
    session); an orphan cleanup takes the store lock and runs; A resumes, takes its locks again, and
    learns from the cleanup's record that what it downloaded may be gone: it fails, no new version."""
    async def scenario() -> Any:
        async with RemoteServer(dict(FILES)) as server:
            a, resume = await _sync_held_at_a_full_window(outage_db, storage, server)
            await asyncio.to_thread(cluster.restart)
            other = open_database(cluster.url, create=False)
            try:
                await asyncio.to_thread(remove_orphans, other, storage)
            finally:
                other.close()
            resume.set()
            try:
                return await a
            except SyncFailed as exc:
                return exc

    outcome = asyncio.run(scenario())
    assert isinstance(outcome, SyncFailed)
    assert "an orphan cleanup ran while this sync had lost its store lock" in str(outcome)
    assert version_numbers(outage_db, "r") == [0]
    rerun = _sync(outage_db, storage, RemoteServer(dict(FILES)))
    _assert_truthful(outage_db, storage, rerun)
    assert not isinstance(rerun, SyncFailed)


def test_an_orphan_cleanup_stops_when_the_session_holding_its_lock_is_lost(outage_db, storage, cluster):
    """The cleanup's statements run on the session that holds its exclusive lock: once that session
    is gone, the cleanup cannot go on, on another pooled connection, without the lock while a sync
    starts."""
    first = _sync(outage_db, storage, RemoteServer(dict(FILES)))
    assert not isinstance(first, SyncFailed)
    windows: list[int] = []
    killer = open_database(cluster.url, create=False)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "max(anon_1.id)" in statement:
            windows.append(1)
            if len(windows) == 1:  # end the lock holder's session (this private cluster has no other user)
                with killer.engine.begin() as other:
                    ended = other.execute(
                        text(
                            "SELECT pg_terminate_backend(pid, 30000) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                        )
                    ).scalars().all()
                assert ended == [True]

    event.listen(outage_db.engine, "after_cursor_execute", after)
    try:
        with pytest.raises(Exception) as raised:
            remove_orphans(outage_db, storage)
    finally:
        event.remove(outage_db.engine, "after_cursor_execute", after)
        killer.close()
    assert connection_lost(raised.value) is not None
    assert len(windows) == 1  # nothing was looked at after the lock's session was gone
    rerun = remove_orphans(outage_db, storage)  # a rerun takes the lock again and finishes
    assert (rerun.content, rerun.artifacts) == (0, 0)
    assert_artifacts_intact(outage_db, storage)


def test_a_command_line_sync_waits_for_a_database_that_is_down_and_then_succeeds(cluster, tmp_path):
    """The server is down when the sync starts: it says it is trying again, and once the server is
    back (started when that line appears, not after a guessed time) the sync completes."""
    db = open_database(cluster.url, create=False)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.close()
    cluster.stop()
    try:
        with ServerThread(dict(FILES)) as server:
            command = [SCRIPT, "--db", cluster.url, "--storage", str(tmp_path / "storage"), "sync",
                       server.manifest_url, "--repo", "r", "--quiet"]
            sync = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert sync.stderr is not None
            first = sync.stderr.readline()
            cluster.start()
            out, err = sync.communicate(timeout=300)
    finally:
        if not cluster.running():
            cluster.start()
    assert "cannot open database" in first and "trying again for up to 30 s" in first, first
    assert sync.returncode == 0, err
    assert "new version 1: 48 units" in out
