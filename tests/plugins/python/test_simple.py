"""A version served as a simple index at API version 1.1 (PEP 700): the JSON project page has the
project's versions, each file's size and, where the remote's JSON page gave one, its upload time;
a yank reason is kept. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from pendingops import RemoteConfig, sync_remote
from pendingops.plugins.python import PythonPlugin
from pendingops.plugins.python.simple import JSON_TYPE
from tests.plugins.python_index import NegotiatingIndex, index_files, sample_projects
from tests.remote_server import RemoteServer
from tests.serve.served import content_server

UPLOADED = "2024-05-06T07:08:09.123456Z"


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url, headers={"Accept": JSON_TYPE}) as response:
        assert (response.status, response.headers["Content-Type"]) == (200, JSON_TYPE)
        return json.loads(await response.read())


@pytest.mark.parametrize("policy", ["immediate", "on_demand"])
def test_a_served_json_page_is_api_1_1_with_versions_sizes_and_upload_times(db, storage, policy: str) -> None:
    projects = sample_projects()
    alpha = projects["Alpha_Pkg"]
    alpha[1] = replace(alpha[1], upload_time=UPLOADED)  # the others: the remote gives no upload time

    async def scenario() -> None:
        async with NegotiatingIndex(projects=projects) as origin:
            remote = RemoteConfig(url=origin.base_url + "simple/", policy=policy)
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py")
            assert origin.requests[f"files/{alpha[0].filename}"] == (policy == "immediate")
        async with content_server(db, storage, plugins=[PythonPlugin()]) as server, aiohttp.ClientSession() as http:
            simple = f"{server.base_url}py/latest/simple/"
            root = await get_json(http, simple)
            assert root["meta"] == {"api-version": "1.1"}
            page = await get_json(http, simple + "alpha-pkg/")
            assert page["meta"] == {"api-version": "1.1"}
            assert page["versions"] == ["1.0", "2.0", "2.5", "3.0"]
            files = {entry["filename"]: entry for entry in page["files"]}
            assert {name: entry["size"] for name, entry in files.items()} == {d.filename: len(d.data) for d in alpha}
            assert {name: entry.get("upload-time") for name, entry in files.items()} == {
                d.filename: d.upload_time for d in alpha
            }
            assert "upload-time" not in files[alpha[0].filename]  # absent, not null, when the remote gave none
            assert files["alpha_pkg-2.5-py3-none-any.whl"]["yanked"] == "broken build"
            assert files["alpha_pkg-1.0-py3-none-any.whl"]["yanked"] is False

    asyncio.run(scenario())


def test_a_file_whose_size_no_one_knows_yet_is_listed_without_one(db, storage) -> None:
    """on_demand from an HTML index: nothing is fetched and the page declared no size, until pip asks."""
    projects = {"beta": sample_projects()["beta"][:1]}

    async def scenario() -> None:
        async with RemoteServer(index_files(projects)) as origin:
            remote = RemoteConfig(url=origin.base_url + "simple/", policy="on_demand")
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py")
            async with content_server(db, storage, plugins=[PythonPlugin()]) as server, aiohttp.ClientSession() as h:
                page_url = f"{server.base_url}py/latest/simple/beta/"
                [entry] = (await get_json(h, page_url))["files"]
                assert "size" not in entry and "upload-time" not in entry
                async with h.get(page_url + "../../" + "packages/beta/" + entry["filename"]) as response:
                    assert await response.read() == projects["beta"][0].data  # fetched and stored now
                [entry] = (await get_json(h, page_url))["files"]
                assert entry["size"] == len(projects["beta"][0].data)

    asyncio.run(scenario())
