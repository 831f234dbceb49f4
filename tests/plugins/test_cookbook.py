"""The cookbook plugin against a real Supermarket-style server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select

from pendingops import (
    Database,
    LocalStorage,
    ProgressSnapshot,
    RemoteConfig,
    SyncContext,
    SyncFailed,
    SyncResult,
    sync_remote,
)
from pendingops.db.schema import Artifact, Content, RemoteArtifact, RepositoryContent
from pendingops.db.versions import find_repository, latest_version, membership_filter
from pendingops.plugins import available_plugins
from pendingops.plugins.cookbook import (
    CookbookContent,
    CookbookPlugin,
    UniverseEntry,
    UniverseError,
    cookbook_unit,
    metadata_url,
    parse_universe,
    universe_url,
)
from pendingops.plugins.cookbook.plugin import _base_versions_of
from tests.conftest import TIGHT_LIMIT, count_rows
from tests.plugins.cookbook_server import CookbookServer, CookbookVersion, Key, cookbook, make_tarball

REPO = "cookbooks"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def offer(*keys: str, tag: str = "") -> dict[Key, CookbookVersion]:
    """Cookbook versions written 'name@version', each with a generated tarball."""
    return dict(cookbook(*key.split("@"), tag=tag) for key in keys)


async def sync(
    server: CookbookServer,
    db: Database,
    storage: LocalStorage,
    *,
    repository: str = REPO,
    plugin: CookbookPlugin | None = None,
    policy: str = "immediate",
    **options: Any,
) -> SyncResult:
    remote = RemoteConfig(url=server.base_url, retries=0, policy=policy)  # type: ignore[arg-type]
    return await sync_remote(
        plugin or CookbookPlugin(), remote, db=db, storage=storage, repository=repository, **options
    )


def version_cookbooks(db: Database, repository: str = REPO, number: int | None = None) -> set[tuple[str, str, str]]:
    """(name, version, content_id) of every cookbook in a version (the latest by default)."""
    table, rc = CookbookContent.__table__, RepositoryContent.__table__
    with db.engine.connect() as conn:
        repo_id = find_repository(conn, repository)
        if number is None:
            number = latest_version(conn, repo_id)
        rows = conn.execute(
            select(table.c.name, table.c.version, table.c.content_id)
            .join(rc, rc.c.content_id == table.c.id)
            .where(membership_filter(repo_id, number))
        ).all()
    found = {tuple(row) for row in rows}
    assert len(found) == len(rows), "a cookbook version is in the repository twice"
    return found  # type: ignore[return-value]


def expected(server: CookbookServer, *keys: str) -> set[tuple[str, str, str]]:
    """What a version holding these 'name@version' cookbooks from ``server`` looks like."""
    out = set()
    for key in keys:
        name, version = key.split("@")
        out.add((name, version, sha(server.cookbooks[(name, version)].tarball)))
    return out


def stored_row(db: Database, name: str, version: str) -> Any:
    table = CookbookContent.__table__
    with db.engine.connect() as conn:
        return conn.execute(select(table).where(table.c.name == name, table.c.version == version)).one()


# -- units of the plugin ----------------------------------------------------------------------------


def test_plugin_is_registered_and_builds_urls():
    assert isinstance(available_plugins()["cookbook"], CookbookPlugin)
    assert universe_url("https://supermarket.example/") == "https://supermarket.example/universe"
    assert universe_url("https://supermarket.example/universe") == "https://supermarket.example/universe"
    assert (
        metadata_url("https://s.example/", "my cb", "1.2.0")
        == "https://s.example/api/v1/cookbooks/my%20cb/versions/1.2.0"
    )


def test_universe_is_checked_and_sorted():
    entries = parse_universe(
        {
            "nginx": {"10.0.0": {"download_url": "https://s/n10"}, "2.7.6": {"download_url": "https://s/n2"}},
            "apt": {"7.4.0": {"download_url": "https://s/apt", "dependencies": {"x": ">= 1.0"}}},
        }
    )
    assert [(e.name, e.version) for e in entries] == [("apt", "7.4.0"), ("nginx", "2.7.6"), ("nginx", "10.0.0")]
    assert entries[0].dependencies == {"x": ">= 1.0"}
    for bad, message in [
        ([], "expected a JSON object"),
        ({"../etc": {}}, "invalid cookbook name"),
        ({"apt": {"1.0/../x": {"download_url": "https://s/x"}}}, "invalid version"),
        ({"apt": {"1.0.0": {"download_url": "ftp://s/x"}}}, "download_url must be"),
        ({"apt": {"1.0.0": {"download_url": "https://s/x", "dependencies": ["x"]}}}, "dependencies must map"),
    ]:
        with pytest.raises(UniverseError, match=message):
            parse_universe(bad)


# -- whole syncs ------------------------------------------------------------------------------------


def test_sync_stores_each_version_once_with_its_metadata(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as server:
            server.cookbooks[("nginx", "2.7.6")].dependencies = {"apt": ">= 7.0"}
            result = await sync(server, db, storage)
            assert (result.version.number, result.added, result.failed_count) == (1, 3, 0)
            assert version_cookbooks(db) == expected(server, "apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")
            assert server.tarball_requests == {key: 1 for key in server.cookbooks}
            assert server.metadata_requests == {key: 1 for key in server.cookbooks}
            row = stored_row(db, "nginx", "2.7.6")
            tarball = server.cookbooks[("nginx", "2.7.6")].tarball
            assert (row.license, row.tarball_size, row.published_at) == (
                "Apache-2.0",
                len(tarball),
                "2024-01-02T03:04:05Z",
            )
            assert (row.description, row.maintainer, row.dependencies) == (
                "Installs nginx",
                "Test Kitchen",
                {"apt": ">= 7.0"},
            )

    asyncio.run(scenario())


def test_an_unchanged_universe_ends_the_sync_after_fetching_it(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage, mirror=True)
            seen = (server.universe_requests, server.tarball_count(), server.metadata_count())
            again = await sync(server, db, storage, mirror=True)
            assert again.remote_unchanged and not again.created and again.version.number == 1
            assert (server.universe_requests, server.tarball_count(), server.metadata_count()) == (
                seen[0] + 1,
                *seen[1:],
            )
            server.cookbooks.update(offer("apt@7.5.0"))  # the universe changes: a whole sync
            changed = await sync(server, db, storage, mirror=True)
            assert not changed.remote_unchanged and (changed.version.number, changed.added) == (2, 1)
            refreshing = CookbookPlugin(refresh_metadata=True)  # looks beyond the universe: never short-cut
            assert not (await sync(server, db, storage, mirror=True, plugin=refreshing)).remote_unchanged
            assert not (await sync(server, db, storage, mirror=True, plugin=refreshing)).remote_unchanged

    asyncio.run(scenario())


def test_content_id_is_the_sha256_of_the_stored_tarball(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0")) as server:
            await sync(server, db, storage)
            tarball = server.cookbooks[("apt", "7.4.0")].tarball
            row = stored_row(db, "apt", "7.4.0")
            assert row.content_id == sha(tarball)
            with db.engine.connect() as conn:
                location = conn.execute(select(Artifact.__table__.c.location)).scalar_one()
            with storage.open(location) as handle:
                assert handle.read() == tarball

    asyncio.run(scenario())


def test_resync_downloads_and_asks_nothing(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage)
            tarballs, metadata = server.tarball_count(), server.metadata_count()
            for mirror in (False, True):
                again = await sync(server, db, storage, mirror=mirror)
                assert not again.created and again.version.number == 1
            assert (server.tarball_count(), server.metadata_count()) == (tarballs, metadata)
            assert server.universe_requests == 3

    asyncio.run(scenario())


def test_mirror_resync_follows_the_universe_and_keeps_old_versions(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage)
            first = version_cookbooks(db)
            del server.cookbooks[("apt", "7.4.0")]
            server.cookbooks.update(offer("apt@7.6.0"))
            result = await sync(server, db, storage, mirror=True)
            assert (result.version.number, result.added, result.removed) == (2, 1, 1)
            assert version_cookbooks(db) == expected(server, "apt@7.5.0", "apt@7.6.0", "nginx@2.7.6")
            assert version_cookbooks(db, number=1) == first
            assert server.tarball_requests[("apt", "7.6.0")] == 1 and server.tarball_count() == 4

    asyncio.run(scenario())


def test_additive_resync_adds_and_removes_nothing(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage)
            before = version_cookbooks(db)
            del server.cookbooks[("apt", "7.4.0")]
            server.cookbooks.update(offer("apt@7.6.0"))
            result = await sync(server, db, storage)
            assert (result.version.number, result.added, result.removed, result.version.content_count) == (2, 1, 0, 3)
            assert version_cookbooks(db) == before | expected(server, "apt@7.6.0")

    asyncio.run(scenario())


def test_second_repository_of_the_same_remote_downloads_nothing(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage, repository="first")
            tarballs, metadata = server.tarball_count(), server.metadata_count()
            contents, artifacts = count_rows(db, Content), count_rows(db, Artifact)
            result = await sync(server, db, storage, repository="second")
            assert (result.version.number, result.added) == (1, 3)
            assert server.tarball_count() == tarballs, "digests known from RemoteArtifacts: no download"
            assert server.metadata_count() == metadata, "content already saved: no metadata request"
            assert version_cookbooks(db, "second") == version_cookbooks(db, "first")
            assert (count_rows(db, Content), count_rows(db, Artifact)) == (contents, artifacts)

    asyncio.run(scenario())


def test_without_known_digests_every_tarball_is_downloaded_again(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage, repository="first")
            result = await sync(
                server, db, storage, repository="second", plugin=CookbookPlugin(trust_known_digests=False)
            )
            assert result.added == 2 and server.tarball_count() == 4
            assert count_rows(db, Content) == 2 and count_rows(db, Artifact) == 2

    asyncio.run(scenario())


def test_failed_metadata_request_skips_that_version(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as server:
            server.metadata_faults[("apt", "7.5.0")] = 404
            result = await sync(server, db, storage, on_error="skip")
            assert (result.added, result.failed_count) == (2, 1)
            (failure,) = result.failures
            assert failure.stage == "metadata" and "HTTP 404" in failure.reason and "apt, 7.5.0" in failure.unit
            assert version_cookbooks(db) == expected(server, "apt@7.4.0", "nginx@2.7.6")
            server.metadata_faults.clear()
            healed = await sync(server, db, storage, on_error="skip")
            assert (healed.added, healed.failed_count) == (1, 0)
            assert version_cookbooks(db) == expected(server, "apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")

    asyncio.run(scenario())


def test_failed_metadata_request_fails_the_sync_by_default(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "nginx@2.7.6")) as server:
            server.metadata_faults[("nginx", "2.7.6")] = 500
            with pytest.raises(SyncFailed, match=r"cookbook nginx, 2\.7\.6.*metadata failed.*HTTP 500"):
                await sync(server, db, storage)
            with db.engine.connect() as conn:
                assert latest_version(conn, find_repository(conn, REPO)) == 0

    asyncio.run(scenario())


def test_failed_metadata_refresh_keeps_the_base_version_in_mirror_mode(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage)
            server.metadata_faults[("apt", "7.4.0")] = 404
            del server.cookbooks[("nginx", "2.7.6")]
            server.cookbooks.update(offer("nginx@2.8.0"))
            plugin = CookbookPlugin(refresh_metadata=True)
            snapshots: list[ProgressSnapshot] = []
            result = await sync(
                server, db, storage, plugin=plugin, mirror=True, on_error="skip", on_progress=snapshots.append
            )
            assert (result.added, result.removed, result.failed_count) == (1, 1, 1)
            assert result.failures[0].stage == "metadata"
            # apt 7.4.0 failed after its key was complete and looked up: the base version had it, so
            # the core keeps it (the plugin's by-name fallback had nothing to do).
            assert snapshots[-1].finished and "kept" not in snapshots[-1].stages
            assert version_cookbooks(db) == expected(server, "apt@7.4.0", "apt@7.5.0", "nginx@2.8.0")
            assert server.metadata_requests[("apt", "7.5.0")] == 2, "refresh asks again for saved versions"

    asyncio.run(scenario())


def test_changed_tarball_is_a_new_unit_and_old_versions_keep_the_old_one(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage)
            old = expected(server, "apt@7.4.0")
            # The remote republishes apt 7.4.0 with other bytes at a new url.
            server.cookbooks.update(offer("apt@7.4.0", tag=" (rebuilt)"))
            server.cookbooks[("apt", "7.4.0")].path = "files/apt-7.4.0-r2.tar.gz"
            result = await sync(server, db, storage, mirror=True)
            assert (result.added, result.removed) == (1, 1)
            new = expected(server, "apt@7.4.0")
            assert new != old
            assert version_cookbooks(db) == new | expected(server, "nginx@2.7.6")
            assert old <= version_cookbooks(db, number=1) and not new & version_cookbooks(db, number=1)
            assert count_rows(db, CookbookContent) == 3

    asyncio.run(scenario())


def test_tarball_replaced_at_the_same_url_is_found_by_downloading(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0")) as server:
            await sync(server, db, storage)
            old = expected(server, "apt@7.4.0")
            server.cookbooks.update(offer("apt@7.4.0", tag=" (rebuilt)"))
            trusting = await sync(server, db, storage, mirror=True)
            assert not trusting.created, "the known digest is trusted: the replacement is not seen"
            checking = await sync(server, db, storage, mirror=True, plugin=CookbookPlugin(trust_known_digests=False))
            new = expected(server, "apt@7.4.0")
            assert (checking.added, checking.removed) == (1, 1) and version_cookbooks(db) == new
            assert version_cookbooks(db, number=1) == old
            # The url now led to two digests: the known-digest lookup no longer guesses, it downloads.
            downloads = server.tarball_count()
            again = await sync(server, db, storage, mirror=True)
            assert not again.created and server.tarball_count() == downloads + 1
            assert version_cookbooks(db) == new

    asyncio.run(scenario())


def test_failures_before_the_key_is_complete_keep_the_base_version_in_mirror_mode(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "apt@7.5.0", "nginx@2.7.6")) as server:
            await sync(server, db, storage)
            base = version_cookbooks(db)
            # Both republished at new urls: apt 7.4.0's tarball cannot be fetched, nginx's metadata fails.
            for key, tag in ((("apt", "7.4.0"), "a"), (("nginx", "2.7.6"), "n")):
                server.cookbooks.update(offer("@".join(key), tag=tag))
                server.cookbooks[key].path = f"files/{key[0]}-{key[1]}-{tag}.tar.gz"
            server.tarball_faults[("apt", "7.4.0")] = 404
            server.metadata_faults[("nginx", "2.7.6")] = 404
            del server.cookbooks[("apt", "7.5.0")]
            snapshots: list[ProgressSnapshot] = []
            result = await sync(server, db, storage, mirror=True, on_error="skip", on_progress=snapshots.append)
            assert (result.added, result.removed, result.failed_count) == (0, 1, 2)
            assert {f.stage for f in result.failures} == {"download", "metadata"}
            assert snapshots[-1].done("kept") == 2, "both kept by name and version"
            assert version_cookbooks(db) == {c for c in base if c[:2] != ("apt", "7.5.0")}

    asyncio.run(scenario())


def test_tarball_whose_metadata_names_another_cookbook_is_refused(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0")) as server:
            server.cookbooks[("nginx", "1.0.0")] = CookbookVersion(
                make_tarball("nginx", "1.0.0", metadata={"name": "evil"})
            )
            server.cookbooks[("old", "0.1.0")] = CookbookVersion(make_tarball("old", "0.1.0", metadata={}))
            result = await sync(server, db, storage, on_error="skip")
            (failure,) = result.failures
            assert failure.stage == "read_tarball" and "metadata.json says name 'evil'" in failure.reason
            assert {c[:2] for c in version_cookbooks(db)} == {("apt", "7.4.0"), ("old", "0.1.0")}
            assert stored_row(db, "old", "0.1.0").description is None

    asyncio.run(scenario())


def test_bad_universe_fails_before_any_download(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0")) as server:
            server.cookbooks[("apt", "x.y")] = CookbookVersion(b"")
            with pytest.raises(UniverseError, match=r"cookbook 'apt' version 'x\.y': invalid version"):
                await sync(server, db, storage)
            assert server.tarball_count() == 0

    asyncio.run(scenario())


def test_on_demand_sync_needs_digests_known_from_an_earlier_download(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0", "nginx@2.7.6")) as server:
            lazy = await sync(server, db, storage, repository="lazy", policy="on_demand", on_error="skip")
            assert lazy.added == 0 and {f.stage for f in lazy.failures} == {"complete_key"}
            await sync(server, db, storage, repository="eager")
            lazy = await sync(server, db, storage, repository="lazy", policy="on_demand")
            assert lazy.added == 2 and server.tarball_count() == 2
            assert version_cookbooks(db, "lazy") == version_cookbooks(db, "eager")

    asyncio.run(scenario())


def test_metadata_requests_run_while_other_tarballs_download(db, storage):
    """The other tarballs are held until cb00's metadata request arrives, and that request is
    answered only once they were all served: the sync finishes only if downloads go on while a
    metadata request is pending, and the server's log shows that order."""

    async def scenario() -> None:
        async with CookbookServer(offer(*(f"cb{i:02d}@1.0.0" for i in range(12)))) as server:
            first = ("cb00", "1.0.0")
            others = set(server.cookbooks) - {first}
            asked, all_served = asyncio.Event(), asyncio.Event()
            server.metadata_gates[first] = all_served
            server.tarball_gates = dict.fromkeys(others, asked)
            served: set[Key] = set()

            def on_tarball(name: str, version: str) -> None:
                served.add((name, version))
                if others <= served:
                    all_served.set()

            server.on_tarball_served = on_tarball
            server.on_metadata_request = lambda name, version: (name, version) == first and asked.set()
            remote = RemoteConfig(url=server.base_url, retries=0, download_concurrency=3)
            result = await asyncio.wait_for(
                sync_remote(CookbookPlugin(), remote, db=db, storage=storage, repository=REPO), 60
            )
            assert result.added == 12
            order = [e for e in server.events if e[0] != "universe"]
            asked_at, answered_at = order.index(("metadata-request", *first)), order.index(("metadata", *first))
            assert order.index(("tarball", *first)) < asked_at
            assert all(asked_at < order.index(("tarball", *key)) < answered_at for key in others)

    asyncio.run(scenario())


def test_remote_artifacts_record_the_learned_digest(db, storage):
    async def scenario() -> None:
        async with CookbookServer(offer("apt@7.4.0")) as server:
            await sync(server, db, storage)
            ra = RemoteArtifact.__table__
            with db.engine.connect() as conn:
                rows = conn.execute(select(ra.c.url, ra.c.sha256, ra.c.size)).all()
                statements = conn.execute(select(func.count()).select_from(ra)).scalar_one()
            tarball = server.cookbooks[("apt", "7.4.0")].tarball
            assert rows == [(server.download_url(("apt", "7.4.0")), sha(tarball), len(tarball))] and statements == 1

    asyncio.run(scenario())


def test_keeping_failed_versions_respects_the_bound_variable_limit(tight_sqlite, storage):
    """More failed (name, version) pairs in one batch than fit one statement with its other parameters."""
    pairs = TIGHT_LIMIT // 2  # two values a pair: with the repository id and base number, one too many

    async def scenario() -> list[int]:
        remote = RemoteConfig(url="http://127.0.0.1:9/", policy="on_demand")
        async with SyncContext(tight_sqlite, storage, remote, "r", mirror=True) as sync:
            units = [cookbook_unit(UniverseEntry(f"cb{i}", "1.0.0", "http://127.0.0.1:9/x", {})) for i in range(pairs)]
            kept = await tight_sqlite.run(_base_versions_of, sync, units)
            await sync.run(sync.source([]))
        return kept

    assert asyncio.run(scenario()) == []
