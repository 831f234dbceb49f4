"""A cookbook export, served by a static web server, is synced by another pendingops (its own database
and storage): the export holds the universe and every version's metadata document, links relative.
A version ``pendingops serve`` serves is synced the same way.

The exporting side runs on SQLite and PostgreSQL; the other pendingops on a fresh SQLite file.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from pendingops import Database, LocalStorage, RemoteConfig, open_database, sync_remote
from pendingops.db.versions import find_repository, latest_version
from pendingops.maintenance.export import export_version
from pendingops.plugins import VersionRef
from pendingops.plugins.cookbook import CookbookContent, CookbookPlugin
from pendingops.plugins.file import FilePlugin
from tests.plugins.cookbook_server import CookbookServer, CookbookVersion, cookbook
from tests.plugins.python_index import StaticFolder
from tests.plugins.test_cookbook import sync
from tests.serve.served import content_server

FIELDS = ("name", "version", "content_id", "dependencies", "license", "tarball_size", "published_at")
FIELDS += ("description", "maintainer")


def _offered() -> dict[tuple[str, str], CookbookVersion]:
    """Cookbook versions whose metadata differ, so a copy that reads none of it cannot match."""
    return dict(
        [
            cookbook("apt", "7.4.0"),
            cookbook("apt", "7.5.0", license="MIT", published_at="2025-06-07T08:09:10Z"),
            cookbook("nginx", "2.7.6", dependencies={"apt": ">= 7.0"}, license="GPL-3.0"),
            cookbook("my_lib.x+y", "1.0", license="BSD-2-Clause"),  # quoted in URLs, as is in file names
        ]
    )


def units(db: Database, repository: str) -> set[tuple]:
    """Every column that describes a cookbook version (no ids) of the repository's latest version."""
    with db.engine.connect() as conn:
        repository_id = find_repository(conn, repository)
        number = latest_version(conn, repository_id)
    rows = VersionRef(db, repository_id, number, "./").units(CookbookContent)
    return {tuple(json.dumps(getattr(row, name), sort_keys=True) for name in FIELDS) for row in rows}


def stored_bytes(storage: LocalStorage, db: Database, repository: str) -> dict[tuple[str, str], bytes]:
    """The stored tarball of each cookbook version, read from ``storage``."""
    with db.engine.connect() as conn:
        repository_id = find_repository(conn, repository)
        number = latest_version(conn, repository_id)
    found = {}
    for row in VersionRef(db, repository_id, number, "./").units(CookbookContent):
        with storage.open(storage.location_for(row.content_id)) as handle:
            found[(row.name, row.version)] = handle.read()
    return found


def test_a_cookbook_export_served_statically_is_synced_by_another_pendingops(
    db: Database, storage: LocalStorage, tmp_path: Path
) -> None:
    dest = tmp_path / "export"
    other_db = open_database(f"sqlite:///{tmp_path / 'other.db'}")
    other_storage = LocalStorage(tmp_path / "other-storage")

    async def scenario() -> dict[tuple[str, str], bytes]:
        async with CookbookServer(_offered()) as origin:
            first = await sync(origin, db, storage, repository="books")
            assert first.version.content_count == 4 and not first.failures
            tarballs = {key: offered.tarball for key, offered in origin.cookbooks.items()}
        result = await asyncio.to_thread(
            export_version, db, storage, "books", dest, plugins=[FilePlugin(), CookbookPlugin()]
        )
        assert result.published == ["universe", "api/ (4 pages)"]
        document = json.loads((dest / "api/v1/cookbooks/nginx/versions/2.7.6").read_bytes())
        assert document["file"] == "../../../../../nginx-2.7.6.tar.gz"  # from its folder to the export's top
        assert (dest / "api/v1/cookbooks/nginx/versions" / document["file"]).read_bytes() == tarballs[
            ("nginx", "2.7.6")
        ]
        async with StaticFolder(dest) as static:
            remote = RemoteConfig(url=static.base_url, retries=0)
            copied = await sync_remote(CookbookPlugin(), remote, db=other_db, storage=other_storage, repository="copy")
            asked = {path for path in static.requests if path != "universe"}
        assert not copied.failures and copied.version.content_count == 4
        # every tarball and every metadata document came from the static server, once each
        assert asked == {f"{name}-{version}.tar.gz" for name, version in tarballs} | {
            f"api/v1/cookbooks/{name}/versions/{version}" for name, version in tarballs
        }
        assert all(static.requests[path] == 1 for path in asked)
        return tarballs

    try:
        tarballs = asyncio.run(scenario())
        copied = units(other_db, "copy")
        assert copied == units(db, "books")
        licenses = {json.loads(unit[FIELDS.index("license")]) for unit in copied}
        assert licenses == {"Apache-2.0", "MIT", "GPL-3.0", "BSD-2-Clause"}  # the metadata documents were read
        assert stored_bytes(other_storage, other_db, "copy") == tarballs
    finally:
        other_db.close()


def test_a_served_cookbook_version_is_synced_by_another_pendingops(
    db: Database, storage: LocalStorage, tmp_path: Path
) -> None:
    other_db = open_database(f"sqlite:///{tmp_path / 'other.db'}")
    other_storage = LocalStorage(tmp_path / "other-storage")

    async def scenario() -> dict[tuple[str, str], bytes]:
        async with CookbookServer(_offered()) as origin:
            await sync(origin, db, storage, repository="books")
            tarballs = {key: offered.tarball for key, offered in origin.cookbooks.items()}
        async with content_server(db, storage, plugins=[CookbookPlugin()]) as server:
            remote = RemoteConfig(url=server.base_url + "books/latest/", retries=0)
            copied = await sync_remote(CookbookPlugin(), remote, db=other_db, storage=other_storage, repository="copy")
        assert not copied.failures and copied.version.content_count == 4
        return tarballs

    try:
        tarballs = asyncio.run(scenario())
        assert units(other_db, "copy") == units(db, "books")
        assert stored_bytes(other_storage, other_db, "copy") == tarballs
    finally:
        other_db.close()
