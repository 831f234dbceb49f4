"""Fetching a version's files that an on_demand sync recorded: stored when they match, else reported."""

from __future__ import annotations

import asyncio

from pendingops.maintenance.fetch_missing import fetch_missing, unfetched_files
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
