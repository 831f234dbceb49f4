"""When each version was made, and the sync runs (started, finished, remote) that made it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from pendingops import RemoteConfig, sync_remote
from pendingops.maintenance.history import iso, version_history
from pendingops.plugins.file import FilePlugin
from tests.remote_server import RemoteServer


def test_versions_record_their_creation_and_sync_runs(db, storage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)

    async def scenario() -> str:
        async with RemoteServer({"a": b"1"}) as server:
            remote = RemoteConfig(url=server.manifest_url)
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")  # nothing changed
            server.files = {"b": b"2"}
            await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r", mirror=True)
            return server.manifest_url

    url = asyncio.run(scenario())
    with db.engine.connect() as conn:
        history = version_history(conn, "r")
    assert sorted(history) == [0, 1, 2]
    assert history[0].runs == []  # the empty version 0 comes with the repository
    for number, mirror in ((1, False), (2, True)):
        [run] = history[number].runs
        assert (run.remote, run.mirror) == (url, mirror)
        assert run.finished is not None
        assert iso(before) <= iso(run.started) <= iso(run.finished)
        assert iso(history[number].created) >= iso(before)
    assert iso(history[1].runs[0].started) <= iso(history[2].runs[0].started)
    assert iso(history[1].created).endswith("Z")
