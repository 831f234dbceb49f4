"""An outage that outlasts the retry, seen from the command line: one line says what happened, no
traceback and no lock-release noise; the details are there at ``--log-level debug``.

The server of a private cluster stops when the remote is asked for its first file (an event the test
server controls, not a guessed time) and stays down until the sync has given up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import text

from pendingops import open_database
from tests.pg_cluster import PrivateCluster
from tests.remote_server import RemoteServer
from tests.server_thread import ServerThread
from tests.test_outages import cluster  # noqa: F401  (the module's private cluster fixture)

pytestmark = pytest.mark.postgres

SCRIPT = str(Path(sys.executable).with_name("pendingops"))
FILES = {f"d{i % 4}/f{i:03}": f"long outage file {i}".encode() * 8 for i in range(24)}


@dataclass
class _StopsTheDatabase(RemoteServer):
    """Stops the database server when the first file is asked for."""

    database: Any = None
    stopped: bool = False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self.stopped and request.match_info["path"] != "PULP_MANIFEST":
            self.stopped = True
            await asyncio.to_thread(self.database.stop)
        return await super()._handle(request)


def _empty_schema(cluster: PrivateCluster) -> None:  # noqa: F811
    db = open_database(cluster.url, create=False)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.close()


def _sync_through_outage(cluster: PrivateCluster, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:  # noqa: F811
    _empty_schema(cluster)
    server = _StopsTheDatabase(dict(FILES), database=cluster)
    try:
        with ServerThread(server=server) as served:
            command = [SCRIPT, "--db", cluster.url, "--storage", str(tmp_path / "storage"), *options, "sync",
                       served.manifest_url, "--repo", "r", "--db-retry-seconds", "1"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        if not cluster.running():
            cluster.start()
    assert server.stopped
    return done


def test_an_outage_longer_than_the_retry_is_one_line(cluster, tmp_path):  # noqa: F811
    done = _sync_through_outage(cluster, tmp_path)
    assert done.returncode == 1, done.stderr
    # the plain progress lines a sync writes off a terminal are not about the outage
    lines = [line for line in done.stderr.splitlines() if not line.startswith("progress ")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pendingops: sync failed: database connection lost"), lines
    assert "retried for" in lines[0] and "no new version" in lines[0], lines
    assert "Traceback" not in done.stdout + done.stderr


def test_at_debug_level_the_outage_shows_its_details(cluster, tmp_path):  # noqa: F811
    done = _sync_through_outage(cluster, tmp_path, "--log-level", "debug")
    assert done.returncode == 1, done.stderr
    assert "trying again" in done.stderr and "could not release" in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].startswith("pendingops: sync failed: database connection lost")
