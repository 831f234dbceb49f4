"""Property: whatever files and versions, each version's listing and bytes over HTTP are its content."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from urllib.parse import quote, unquote

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from pendingops import LocalStorage
from tests.conftest import fresh_database
from tests.serve.served import content_server, file_url, sync_files

#: paths with the characters URLs treat specially; none is both a file and another's folder
PATHS = ["a", "b c", "d/e%", "d/f#?", "g/h/ü+", "x y/z", "g/h/i/j"]

syncs = st.lists(
    st.tuples(st.dictionaries(st.sampled_from(PATHS), st.binary(max_size=64), max_size=len(PATHS)), st.booleans()),
    min_size=1,
    max_size=3,
)


def expected_versions(history: list[tuple[dict[str, bytes], bool]]) -> dict[int, dict[str, bytes]]:
    """What each version serves: per path, the file the latest version added (a model of the store)."""
    held: dict[tuple[str, bytes], int] = {}
    versions: dict[int, dict[str, bytes]] = {0: {}}
    number = 0
    for files, mirror in history:
        declared = set(files.items())
        changed = bool(declared - set(held)) or (mirror and bool(set(held) - declared))
        if not changed:
            continue
        number += 1
        if mirror:
            held = {unit: added for unit, added in held.items() if unit in declared}
        for unit in declared:
            held.setdefault(unit, number)
        served: dict[str, tuple[int, bytes]] = {}
        for (path, data), added in held.items():
            if path not in served or served[path][0] < added:
                served[path] = (added, data)
        versions[number] = {path: data for path, (_, data) in served.items()}
    return versions


async def listed_files(session: aiohttp.ClientSession, url: str) -> set[str]:
    """Every file path reachable by walking the JSON listings from ``url`` (a version's top folder)."""
    found: set[str] = set()
    folders = [""]
    while folders:
        folder = folders.pop()
        async with session.get(URL(url + folder, encoded=True), headers={"Accept": "application/json"}) as response:
            assert response.status == 200
            entries = (await response.json())["entries"]
        for entry in entries:
            if entry["type"] == "folder":
                folders.append(folder + quote(entry["name"].removesuffix("/")) + "/")
            else:
                found.add(unquote(folder) + entry["name"])
    return found - {"PULP_MANIFEST"}


@pytest.mark.parametrize("db_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
@given(history=syncs)
def test_every_version_is_served_as_it_is(db_kind: str, tmp_path_factory: pytest.TempPathFactory, history) -> None:
    tmp: Path = tmp_path_factory.mktemp("serve")
    db, storage = fresh_database(db_kind, tmp), LocalStorage(tmp / "storage")
    try:

        async def scenario() -> None:
            for files, mirror in history:
                await sync_files(db, storage, files, mirror=mirror)
            async with content_server(db, storage) as server, aiohttp.ClientSession() as session:
                for number, files in expected_versions(history).items():
                    top = f"{server.base_url}r/{number}/"
                    assert await listed_files(session, top) == set(files)
                    for path, data in files.items():
                        async with session.get(URL(file_url(server, path, version=number), encoded=True)) as response:
                            assert (response.status, await response.read()) == (200, data), (number, path)
                            assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
                    async with session.get(top + "PULP_MANIFEST") as response:
                        manifest = (await response.read()).decode()
                    assert manifest == "".join(
                        f"{p},{hashlib.sha256(d).hexdigest()},{len(d)}\n" for p, d in sorted(files.items())
                    )

        asyncio.run(scenario())
    finally:
        db.close()
