"""After an interruption (Ctrl-C, a deadline) ``filtered`` counts only the units a pipeline dropped,
never the units the interruption cut off inside it. Both databases; the remote holds every file
download until the test has interrupted the sync, so the cut is made by the server's events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
import reactivex.operators as rx
from aiohttp import web

from pendingops import RemoteConfig, default_pipeline, sync_remote
from pendingops.plugins.file import FilePlugin
from pendingops.progress import ProgressSnapshot
from tests.remote_server import RemoteServer

#: file requests the remote answers nothing to before the test interrupts the sync
HELD = 4


@dataclass
class _HoldsDownloads(RemoteServer):
    """Holds every file download until ``release`` is set; ``asked`` is set once HELD are waiting."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["path"] != "PULP_MANIFEST":
            self.waiting += 1
            if self.waiting >= HELD:
                self.asked.set()
            await self.release.wait()
        return await super()._handle(request)


def _interrupted(db, storage, files: dict[str, bytes], **options) -> list[ProgressSnapshot]:
    """Start a sync, cancel it once HELD downloads wait at the remote; the snapshots it reported."""
    snapshots: list[ProgressSnapshot] = []

    async def scenario() -> None:
        async with _HoldsDownloads(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url, download_concurrency=HELD)
            sync = asyncio.ensure_future(
                sync_remote(
                    FilePlugin(), remote, db=db, storage=storage, repository="r", window=40,
                    on_progress=snapshots.append, progress_interval=3600, **options,
                )
            )
            await server.asked.wait()
            sync.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sync
            server.release.set()

    asyncio.run(scenario())
    return snapshots


def test_units_cut_off_by_an_interruption_are_not_counted_filtered(db, storage):
    files = {f"f{i:03}": f"interrupted {i}".encode() for i in range(200)}
    final = _interrupted(db, storage, files)[-1]
    assert final.finished
    assert final.done("seen") >= HELD  # units were inside the pipeline when it was cut
    assert final.done("filtered") == 0


def test_units_a_filter_dropped_before_the_interruption_still_count(db, storage):
    files = {f"a-skip/{i}": f"skipped {i}".encode() for i in range(10)}
    files |= {f"b/{i:03}": f"kept {i}".encode() for i in range(200)}
    kept = rx.filter(lambda unit: not unit.fields["relative_path"].startswith("a-skip/"))
    final = _interrupted(db, storage, files, pipeline=[kept, *default_pipeline()])[-1]
    assert final.done("seen") >= 10 + HELD
    assert final.done("filtered") == 10
