"""Pipelines plugin writers build themselves: operators inserted, removed, reordered, batched.

Every scenario runs a whole sync against a real HTTP server on 127.0.0.1 and a real database
(SQLite and PostgreSQL). Concurrency is shown by the order in which things happened, never by time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from reactivex import operators as rx

from pendingops import (
    Database,
    LocalStorage,
    PendingArtifact,
    PendingContent,
    RemoteConfig,
    SyncFailed,
    SyncResult,
    UnitError,
    declarative_version,
    default_pipeline,
)
from pendingops import operators as ops
from pendingops.plugins.file import FileContent
from tests.conftest import assert_no_duplicate_rows, count_rows, version_content
from tests.loopback import LoopbackServer

REPO = "custom"
#: batches flush only when full or when upstream completes, so batch boundaries are exact
EXACT_BATCHES = {"batch_wait": 60.0, "batch_max_wait": 120.0}


@dataclass
class FileServer(LoopbackServer):
    """Serves ``files`` under ``/files/``, licenses one at a time (``GET /license/{path}``) or
    for many files at once (``POST /licenses`` with a JSON list of paths); counts and logs it all.

    ``gates`` hold a file's response until the event is set; ``on_served(path)`` runs after each
    file is served; ``events`` gets ("served", path) in the order files were served.
    """

    files: dict[str, bytes]
    licenses: dict[str, str] = field(default_factory=dict)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    on_served: Callable[[str], None] | None = None
    events: list[tuple[str, str]] = field(default_factory=list)
    file_requests: Counter[str] = field(default_factory=Counter)
    license_requests: Counter[str] = field(default_factory=Counter)
    batch_requests: list[list[str]] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/files/{path:.*}", self._file)
        app.router.add_get("/license/{path:.*}", self._license)
        app.router.add_post("/licenses", self._licenses)
        return app

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.file_requests[path] += 1
        if path not in self.files:
            return web.Response(status=404)
        if path in self.gates:
            await self.gates[path].wait()
        self.events.append(("served", path))
        if self.on_served is not None:
            self.on_served(path)
        return web.Response(body=self.files[path])

    async def _license(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.license_requests[path] += 1
        if path not in self.licenses:
            return web.Response(status=404)
        return web.json_response({"license": self.licenses[path]})

    async def _licenses(self, request: web.Request) -> web.Response:
        paths = await request.json()
        self.batch_requests.append(paths)
        return web.json_response({p: self.licenses[p] for p in paths if p in self.licenses})


def some_files(n: int) -> dict[str, bytes]:
    return {f"f{i:02d}.txt": f"file {i}\n".encode() for i in range(n)}


def file_units(server: FileServer, *, digests: bool = True) -> list[PendingContent]:
    """One FileContent unit per served file; without ``digests`` the sha256 is left to learn."""
    units = []
    for path, data in sorted(server.files.items()):
        sha256 = hashlib.sha256(data).hexdigest() if digests else None
        size = len(data) if digests else None
        artifact = PendingArtifact(url=f"{server.base_url}files/{path}", relative_path=path, size=size, sha256=sha256)
        units.append(PendingContent(FileContent, {"relative_path": path, "sha256": sha256, "size": size}, [artifact]))
    return units


def expected_content(server: FileServer) -> set[tuple[str, str]]:
    return {(path, hashlib.sha256(data).hexdigest()) for path, data in server.files.items()}


async def run(
    server: FileServer,
    db: Database,
    storage: LocalStorage,
    pipeline: Sequence[ops.Operator] | None,
    *,
    units: list[PendingContent] | None = None,
    repository: str = REPO,
    **options: Any,
) -> SyncResult:
    remote = RemoteConfig(url=server.base_url, retries=0, download_concurrency=options.pop("downloads", 10))
    return await declarative_version(
        units if units is not None else file_units(server),
        db=db,
        storage=storage,
        remote=remote,
        repository=repository,
        pipeline=pipeline,
        **options,
    )


# -- inserting ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_an_operator_inserted_anywhere_sees_every_unit_in_the_state_of_its_place(db, storage, position):
    """dedup, download, save: a probe before download sees nothing stored, after save every unit saved."""

    async def scenario() -> None:
        async with FileServer(some_files(12)) as server:
            seen: list[tuple[str, bool, bool]] = []

            async def probe(unit: PendingContent) -> None:
                seen.append((unit.fields["relative_path"], unit.artifacts[0].is_stored, unit.content_id is not None))

            pipeline = [ops.dedup(), ops.download(), ops.save()]
            pipeline.insert(position, ops.enrich(probe, name="probe"))
            result = await run(server, db, storage, pipeline)
            assert result.added == 12 and version_content(db, REPO) == expected_content(server)
            assert sorted(path for path, _, _ in seen) == sorted(server.files)
            assert {(stored, saved) for _, stored, saved in seen} == {(position >= 2, position >= 3)}

    asyncio.run(scenario())


def test_a_plain_rx_operator_composes_with_the_others(db, storage):
    async def scenario() -> None:
        async with FileServer(some_files(5)) as server:
            passed: list[str] = []
            pipeline = [
                ops.dedup(),
                rx.do_action(lambda unit: passed.append(unit.fields["relative_path"])),
                ops.download(),
                ops.save(),
            ]
            result = await run(server, db, storage, pipeline)
            assert result.added == 5 and sorted(passed) == sorted(server.files)

    asyncio.run(scenario())


# -- removing -----------------------------------------------------------------------------------------


def test_without_dedup_a_resync_still_creates_nothing_twice(db, storage):
    async def scenario() -> None:
        async with FileServer(some_files(10)) as server:
            await run(server, db, storage, None)
            requests = sum(server.file_requests.values())
            again = await run(server, db, storage, [ops.download(), ops.save()])
            assert not again.created and again.version.number == 1
            assert sum(server.file_requests.values()) == requests, "stored files are reused, not fetched"
            assert count_rows(db, FileContent) == 10
            assert_no_duplicate_rows(db)

    asyncio.run(scenario())


def test_without_download_the_units_fail_with_a_clear_reason(db, storage):
    async def scenario() -> None:
        async with FileServer(some_files(3)) as server:
            with pytest.raises(SyncFailed, match=r"save failed: .*not downloaded"):
                await run(server, db, storage, [ops.dedup(), ops.save()])
            assert sum(server.file_requests.values()) == 0 and count_rows(db, FileContent) == 0

    asyncio.run(scenario())


# -- reordering ---------------------------------------------------------------------------------------


def test_the_halves_of_dedup_in_any_order_give_the_same_version(db, storage):
    orders = {
        "content first": [ops.query_existing_content(), ops.query_existing_artifacts(), ops.download(), ops.save()],
        "content after download": [
            ops.query_existing_artifacts(),
            ops.download(),
            ops.query_existing_content(),
            ops.save(),
        ],
    }

    async def scenario() -> None:
        async with FileServer(some_files(8)) as server:
            await run(server, db, storage, None, repository="reference")
            requests = sum(server.file_requests.values())
            for name, pipeline in orders.items():
                result = await run(server, db, storage, pipeline, repository=name)
                assert result.added == 8 and version_content(db, name) == expected_content(server)
            assert sum(server.file_requests.values()) == requests
            assert count_rows(db, FileContent) == 8

    asyncio.run(scenario())


async def _learn_digest(unit: PendingContent) -> None:
    """Complete the natural key from the downloaded (or already known) file."""
    artifact = unit.artifacts[0]
    artifact.sha256 = artifact.stored_sha256 or artifact.sha256
    artifact.size = artifact.size if artifact.size is not None else artifact.stored_size
    unit.fields.update(sha256=artifact.sha256, size=artifact.size)


def test_units_without_digests_need_download_before_the_content_lookup(db, storage):
    reordered = [
        ops.query_known_digests(),
        ops.query_existing_artifacts(),
        ops.download(),
        ops.enrich(_learn_digest, when=lambda unit: unit.fields["sha256"] is None, name="learn_digest"),
        ops.query_existing_content(),
        ops.save(),
    ]

    async def scenario() -> None:
        async with FileServer(some_files(6)) as server:
            with pytest.raises(SyncFailed, match="natural key field"):
                await run(server, db, storage, None, units=file_units(server, digests=False))
            result = await run(server, db, storage, reordered, units=file_units(server, digests=False))
            assert result.added == 6 and version_content(db, REPO) == expected_content(server)
            requests = sum(server.file_requests.values())
            again = await run(server, db, storage, reordered, units=file_units(server, digests=False), mirror=True)
            assert not again.created and sum(server.file_requests.values()) == requests

    asyncio.run(scenario())


# -- enrich per batch ---------------------------------------------------------------------------------


def test_enrich_batch_asks_once_per_batch(db, storage):
    async def scenario() -> None:
        async with FileServer(some_files(25)) as server, aiohttp.ClientSession() as http:
            server.licenses = {path: "MIT" for path in server.files if path != "f07.txt"}
            licensed: dict[str, str] = {}

            async def fetch_licenses(units: list[PendingContent]) -> None:
                paths = [unit.fields["relative_path"] for unit in units]
                async with http.post(server.base_url + "licenses", data=json.dumps(paths)) as response:
                    found = await response.json()
                for unit, path in zip(units, paths, strict=True):
                    if path in found:
                        licensed[path] = found[path]
                    else:
                        unit.fail("licenses", f"{path}: no license known")

            pipeline = [ops.enrich_batch(fetch_licenses, size=10), *default_pipeline()]
            result = await run(server, db, storage, pipeline, on_error="skip", **EXACT_BATCHES)
            assert [len(paths) for paths in server.batch_requests] == [10, 10, 5]
            assert sum(server.license_requests.values()) == 0
            assert result.added == 24 and [(f.stage, f.reason) for f in result.failures] == [
                ("licenses", "f07.txt: no license known")
            ]
            assert server.file_requests["f07.txt"] == 0, "a unit failed by the batch step is not downloaded"
            assert len(licensed) == 24

    asyncio.run(scenario())


def test_enrich_per_unit_asks_once_per_unit(db, storage):
    async def scenario() -> None:
        async with FileServer(some_files(25)) as server, aiohttp.ClientSession() as http:
            server.licenses = dict.fromkeys(server.files, "MIT")

            async def fetch_license(unit: PendingContent) -> None:
                async with http.get(server.base_url + "license/" + unit.fields["relative_path"]) as response:
                    if response.status != 200:
                        raise UnitError(f"no license: HTTP {response.status}")
                    unit.extra["license"] = (await response.json())["license"]

            await run(server, db, storage, [ops.enrich(fetch_license, n=5), *default_pipeline()], **EXACT_BATCHES)
            assert server.license_requests == dict.fromkeys(server.files, 1) and server.batch_requests == []

    asyncio.run(scenario())


# -- a slow step does not hold the others -------------------------------------------------------------


def test_a_slow_enrich_before_download_lets_the_other_downloads_go_first(db, storage):
    """Unit f00's enrich waits until every other file was served; it only can if their units
    pass the enrich step and get downloaded while f00's step is still pending."""

    async def scenario() -> None:
        async with FileServer(some_files(10)) as server:
            events = server.events
            slow, others = "f00.txt", set(server.files) - {"f00.txt"}
            others_served = asyncio.Event()
            server.on_served = lambda path: others <= {p for e, p in events if e == "served"} and others_served.set()

            async def step(unit: PendingContent) -> None:
                path = unit.fields["relative_path"]
                events.append(("enrich-start", path))
                if path == slow:
                    await others_served.wait()
                events.append(("enrich-end", path))

            pipeline = [ops.dedup(), ops.enrich(step, n=4), ops.download(n=3), ops.save()]
            result = await asyncio.wait_for(run(server, db, storage, pipeline), 60)
            assert result.added == 10
            started, ended = events.index(("enrich-start", slow)), events.index(("enrich-end", slow))
            assert all(started < events.index(("served", path)) < ended for path in others)
            assert ended < events.index(("served", slow))

    asyncio.run(scenario())


def test_a_slow_enrich_after_download_does_not_stop_the_other_downloads(db, storage):
    """The enrich step takes one unit at a time and f00 holds it until every other file was
    served; those files are held by the server until f00's enrich started. Downloads therefore
    have to go on while the only enrich slot is taken."""

    async def scenario() -> None:
        async with FileServer(some_files(10)) as server:
            events = server.events
            slow, others = "f00.txt", set(server.files) - {"f00.txt"}
            slow_started, others_served = asyncio.Event(), asyncio.Event()
            server.gates = dict.fromkeys(others, slow_started)
            server.on_served = lambda path: others <= {p for e, p in events if e == "served"} and others_served.set()

            async def step(unit: PendingContent) -> None:
                path = unit.fields["relative_path"]
                events.append(("enrich-start", path))
                if path == slow:
                    slow_started.set()
                    await others_served.wait()
                events.append(("enrich-end", path))

            pipeline = [ops.dedup(), ops.download(n=2), ops.enrich(step, n=1), ops.save()]
            result = await asyncio.wait_for(run(server, db, storage, pipeline), 60)
            assert result.added == 10
            served_slow = events.index(("served", slow))
            started, ended = events.index(("enrich-start", slow)), events.index(("enrich-end", slow))
            assert served_slow < started
            assert all(started < events.index(("served", path)) < ended for path in others)
            assert all(ended < events.index(("enrich-start", path)) for path in others)

    asyncio.run(scenario())
