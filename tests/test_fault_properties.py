"""Hypothesis: whatever mix of faults a remote serves, a sync that skips failed units leaves a
consistent store, fails exactly the units whose faults outlast the retries, and a rerun against the
healed remote completes the version. Real server, both databases.

Examples share the test's database and storage; each has a repository and bytes of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.context import SyncResult
from pendingops.db.schema import Artifact, ContentArtifact, RepositoryContent
from pendingops.db.versions import find_repository, latest_version, membership_filter
from pendingops.plugins.file import FileContent, FilePlugin
from tests.conftest import (
    assert_artifacts_intact,
    assert_no_duplicate_rows,
    failed_paths,
    file_set,
    version_content,
)
from tests.remote_server import HTML_PAGE, Fault, RemoteServer

RETRIES = 1
#: A stall or a drip lasts until the client hangs up, so only the client's read timeout ends it; that
#: timeout is far above what a healthy answer takes on a loaded machine, so healthy files never time out.
SETTINGS: dict[str, Any] = {"read_timeout": 2.0, "retries": RETRIES, "retry_backoff": 0.01}
#: the client's redirect limit per attempt (a redirect loop healing sooner is followed)
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class Kind:
    """A kind of fault, and whether trying again can get past it."""

    name: str
    fault: Fault
    retryable: bool


KINDS = [
    Kind("404", Fault(status=404), retryable=False),
    Kind("403", Fault(status=403), retryable=False),
    Kind("500", Fault(status=500), retryable=True),
    Kind("503", Fault(status=503), retryable=True),
    Kind("429 + Retry-After", Fault(status=429, retry_after=0), retryable=True),
    Kind("reset", Fault(reset=True), retryable=True),
    Kind("short body", Fault(truncate=True), retryable=True),
    Kind("stall", Fault(stall=math.inf), retryable=True),
    Kind("drip", Fault(drip=math.inf), retryable=True),
    Kind("wrong bytes", Fault(wrong_bytes=True), retryable=True),
    Kind("oversize", Fault(oversize=7), retryable=False),
    Kind("html", Fault(html=True), retryable=False),  # the page is longer than every file here
    Kind("redirect loop", Fault(redirect_loop=True), retryable=False),
]

#: per file: no fault, or a kind of fault served ``times`` times (None: for ever)
fault_plans = st.lists(
    st.one_of(st.none(), st.tuples(st.sampled_from(KINDS), st.sampled_from([None, 1, 2]))),
    min_size=1,
    max_size=12,
)


def _heals(kind: Kind, times: int | None) -> bool:
    """Whether a file served with this fault arrives within one sync."""
    if times is None:
        return False
    if kind.name == "redirect loop":
        return times < MAX_REDIRECTS  # healed while the client still follows redirects
    return kind.retryable and times <= RETRIES


def _attempts(kind: Kind, times: int | None) -> int | None:
    """Requests the server sees for a faulty file (None: not predicted, a loop's length is the client's)."""
    if kind.name == "redirect loop":
        return None if times is None else times + 1
    if not kind.retryable:
        return 1
    if times is not None and times <= RETRIES:
        return times + 1
    return RETRIES + 1


def _version_artifacts(db: Database, repository: str) -> list[tuple[str, str, str | None, int | None]]:
    """(relative_path, content sha256, stored sha256, stored size) of every file in the latest version."""
    files, rc = FileContent.__table__, RepositoryContent.__table__
    ca, artifact = ContentArtifact.__table__, Artifact.__table__
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, repository)
        number = latest_version(conn, repo_id)
        query = (
            select(files.c.relative_path, files.c.sha256, artifact.c.sha256, artifact.c.size)
            .join(rc, rc.c.content_id == files.c.id)
            .join(ca, ca.c.content_id == files.c.id)
            .outerjoin(artifact, artifact.c.id == ca.c.artifact_id)
            .where(membership_filter(repo_id, number))
        )
        return [tuple(row) for row in conn.execute(query)]


def _check_store(db: Database, storage: LocalStorage, repository: str) -> None:
    # Every stored artifact's bytes hash to its recorded sha256 and size; no temporary file is left.
    assert_artifacts_intact(db, storage)
    assert_no_duplicate_rows(db)
    # The version holds only units whose artifact is stored, with the bytes the unit declares.
    for path, declared, stored, size in _version_artifacts(db, repository):
        assert stored == declared, path
        location = storage.location_for(declared)
        assert storage.exists(location)
        with storage.open(location) as handle:
            assert len(handle.read()) == size


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=fault_plans)
def test_any_mix_of_faults_leaves_a_consistent_store_and_a_rerun_completes_it(
    db: Database, storage: LocalStorage, plan: list[tuple[Kind, int | None] | None]
) -> None:
    salt = uuid.uuid4().hex
    repository = f"r-{salt}"
    files = {f"d{i % 3}/f{i:02d}.bin": f"{salt}:{i}\n".encode() * 2 for i in range(len(plan))}
    assert all(len(data) < len(HTML_PAGE) for data in files.values())
    faults = {
        path: dataclasses.replace(step[0].fault, times=step[1])
        for path, step in zip(sorted(files), plan, strict=True)
        if step is not None
    }
    kinds = {path: step for path, step in zip(sorted(files), plan, strict=True) if step is not None}
    expected_failed = {path for path, (kind, times) in kinds.items() if not _heals(kind, times)}

    async def sync(server: RemoteServer) -> SyncResult:
        remote = RemoteConfig(url=server.manifest_url, **SETTINGS)
        return await sync_remote(
            FilePlugin(), remote, db=db, storage=storage, repository=repository, on_error="skip", batch_wait=0.005
        )

    async def scenario() -> tuple[SyncResult, SyncResult, RemoteServer, dict[str, int]]:
        async with RemoteServer(dict(files), faults=faults) as server:
            first = await sync(server)
            after_first = dict(server.requests)
            server.faults = {}  # the remote heals
            second = await sync(server)
            return first, second, server, after_first

    first, second, server, after_first = asyncio.run(scenario())

    # The first sync: exactly the units whose fault outlasted the retries failed, each reported once.
    reported = failed_paths(first.failures)
    assert sorted(reported) == sorted(expected_failed)
    assert first.failed_count == len(expected_failed)
    for failure in first.failures:
        assert failure.stage == "download"
        assert failure.reason.startswith(server.base_url), failure.reason
    in_version = {path for path, _ in version_content(db, repository, first.version.number)}
    assert in_version | set(reported) == set(files)  # every unit not in the version is reported...
    assert in_version.isdisjoint(reported)  # ...and no unit in it
    healthy = {path: data for path, data in files.items() if path in in_version}
    assert version_content(db, repository, first.version.number) == file_set(healthy)
    # No retry storm: a fault costs the attempts the retries allow, never more.
    for path in files:
        step = kinds.get(path)
        expected = 1 if step is None else _attempts(*step)
        if expected is None:
            assert 1 < after_first[path] <= MAX_REDIRECTS + 1, path
        else:
            assert after_first[path] == expected, (path, step)
    _check_store(db, storage, repository)

    # The rerun against the healed remote fetches only what failed, once, and completes the version.
    assert second.failed_count == 0 and second.failures == []
    assert version_content(db, repository) == file_set(files)
    assert second.added == len(expected_failed)
    for path in files:
        assert server.requests[path] - after_first.get(path, 0) == (path in expected_failed), path
    _check_store(db, storage, repository)
