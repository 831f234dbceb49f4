"""Fetching a version's files that an on_demand sync recorded: stored when they match, else reported."""

from __future__ import annotations

import asyncio

from pendingops import RemoteConfig, declarative_version
from pendingops.maintenance.fetch_missing import fetch_missing, unfetched_files
from tests.conftest import file_units
from tests.remote_server import Fault, RemoteServer
from tests.serve.served import GatedOrigin
from tests.serve.test_on_demand import record, stored_artifacts


def test_missing_files_are_fetched_checked_and_linked(db, storage) -> None:
    files = {"good.txt": b"good", "bad.txt": b"bad bytes"}

    def run() -> tuple:
        async def scenario() -> tuple:
            async with GatedOrigin(dict(files), corrupt={"bad.txt"}) as origin:
                origin.gate.set()
                await record(db, storage, origin, files)
                report = await asyncio.to_thread(fetch_missing, db, storage, "r")
                return report, origin.base_url

        return asyncio.run(scenario())

    report, base_url = run()
    assert report.fetched == 1 and stored_artifacts(db) == 1
    assert [path for path, _ in report.failed] == ["bad.txt"]
    assert base_url + "bad.txt" in report.failed[0][1]
    with db.engine.connect() as conn:
        assert [path for _, path in unfetched_files(conn, "r")] == ["bad.txt"]


def test_a_private_destination_is_reached_only_if_the_repository_allows_it(db, storage) -> None:
    files = {"f.txt": b"kept on another loopback server"}

    async def scenario() -> None:
        async with RemoteServer(dict(files)) as remote, RemoteServer(dict(files)) as elsewhere:
            remote.faults["f.txt"] = Fault(redirect_to=elsewhere.base_url + "f.txt")
            for repository, allowed in (("strict", False), ("lenient", True)):
                settings = RemoteConfig(
                    url=remote.manifest_url, policy="on_demand", retries=0, allow_private_destinations=allowed
                )
                units = file_units(remote.manifest_url, files)
                await declarative_version(units, db=db, storage=storage, remote=settings, repository=repository)
            strict = await asyncio.to_thread(fetch_missing, db, storage, "strict")
            assert strict.fetched == 0 and elsewhere.requests["f.txt"] == 0
            assert "refused: 127.0.0.1 is a loopback address" in strict.failed[0][1]
            lenient = await asyncio.to_thread(fetch_missing, db, storage, "lenient")
            assert lenient.fetched == 1 and elsewhere.requests["f.txt"] == 1

    asyncio.run(scenario())
