"""An export is servable as it is: a static web server serves it, and another sync reads it back.

What plugins publish in an export links relative to the export's top folder (no ``file://`` URL of
the machine that exported it). The python plugin's static index and the deb plugin's archive are
served the same way in tests/plugins/test_python.py and tests/plugins/deb/test_apt.py.
"""

from __future__ import annotations

import asyncio
import json

from pendingops import Database, LocalStorage, RemoteConfig, open_database, sync_remote
from pendingops.db.versions import find_repository, latest_version
from pendingops.maintenance.export import export_version
from pendingops.plugins import VersionRef
from pendingops.plugins.cookbook import CookbookContent, CookbookPlugin, parse_universe
from pendingops.plugins.file import FilePlugin
from tests.conftest import version_content
from tests.plugins.cookbook_server import CookbookServer
from tests.plugins.python_index import StaticFolder
from tests.plugins.test_cookbook import offer, sync
from tests.remote_server import RemoteServer

FILES = {"a.txt": b"alpha\n", "docs/b.txt": b"bravo\n", "docs/deep/c.bin": bytes(range(256))}


def test_a_file_export_served_statically_is_synced_by_another_pendingops(db: Database, storage, tmp_path) -> None:
    dest = tmp_path / "export"

    async def scenario() -> set[tuple[str, str]]:
        async with RemoteServer(dict(FILES)) as origin:
            await sync_remote(
                FilePlugin(), RemoteConfig(url=origin.manifest_url), db=db, storage=storage, repository="r"
            )
        result = await asyncio.to_thread(export_version, db, storage, "r", dest, plugins=[FilePlugin()])
        assert result.published == ["PULP_MANIFEST"]
        assert "file:" not in (dest / "PULP_MANIFEST").read_text()
        other_db = open_database(f"sqlite:///{tmp_path / 'other.db'}")
        other_storage = LocalStorage(tmp_path / "other-storage")
        try:
            async with StaticFolder(dest) as static:
                remote = RemoteConfig(url=static.base_url + "PULP_MANIFEST")
                await sync_remote(FilePlugin(), remote, db=other_db, storage=other_storage, repository="copy")
                assert {path for path in static.requests if path != "PULP_MANIFEST"} == set(FILES)
            return version_content(other_db, "copy")
        finally:
            other_db.close()

    assert asyncio.run(scenario()) == version_content(db, "r")


def test_a_cookbook_export_served_statically_is_synced_into_another_repository(db: Database, storage, tmp_path) -> None:
    dest = tmp_path / "export"

    async def scenario() -> dict[tuple[str, str], bytes]:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as origin:
            await sync(origin, db, storage, repository="books")
            tarballs = {key: version.tarball for key, version in origin.cookbooks.items()}
        result = await asyncio.to_thread(
            export_version, db, storage, "books", dest, plugins=[FilePlugin(), CookbookPlugin()]
        )
        assert result.published == ["universe", "api/ (3 pages)"]
        universe = json.loads((dest / "universe").read_bytes())
        urls = sorted(entry["download_url"] for versions in universe.values() for entry in versions.values())
        assert urls == ["./apt-7.4.0.tar.gz", "./apt-7.5.0.tar.gz", "./nginx-2.7.6.tar.gz"]
        # read as the sync reads it, relative to where the universe is
        where = static_url = "http://127.0.0.1:9/some/export/universe"
        assert {e.download_url for e in parse_universe(universe, where)} == {
            static_url.replace("universe", name)
            for name in ("apt-7.4.0.tar.gz", "apt-7.5.0.tar.gz", "nginx-2.7.6.tar.gz")
        }
        async with StaticFolder(dest) as static:
            remote = RemoteConfig(url=static.base_url, retries=0)
            copied = await sync_remote(CookbookPlugin(), remote, db=db, storage=storage, repository="copy")
            # the digests are unknown to this remote: every tarball comes from the static server
            assert {p for p in static.requests if p.endswith(".tar.gz")} == {
                "apt-7.4.0.tar.gz",
                "apt-7.5.0.tar.gz",
                "nginx-2.7.6.tar.gz",
            }
        assert copied.version.content_count == 3 and not copied.failures
        return tarballs

    tarballs = asyncio.run(scenario())
    copied = cookbook_versions(db, "copy")
    assert copied == cookbook_versions(db, "books")
    assert {(name, version) for name, version, _ in copied} == set(tarballs)


def cookbook_versions(db: Database, repository: str) -> set[tuple[str, str, str]]:
    """(name, version, tarball sha256) of the cookbooks in the latest version, read as a plugin reads them."""
    with db.engine.connect() as conn:
        repository_id = find_repository(conn, repository)
        number = latest_version(conn, repository_id)
    rows = VersionRef(db, repository_id, number, "./").units(CookbookContent)
    return {(row.name, row.version, row.content_id) for row in rows}
