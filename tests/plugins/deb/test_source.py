"""Syncing real Debian archives (dpkg-deb packages, gpg-signed Release files) from a local HTTP server,
on SQLite and PostgreSQL: what is fetched, checked, kept, and what a hostile archive gets."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import lzma
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.context import SyncFailed, SyncResult
from pendingops.download.fetcher import DownloadError
from pendingops.maintenance.lifecycle import diff_versions, retain
from pendingops.maintenance.listing import iter_version_content
from pendingops.maintenance.orphans import remove_orphans
from pendingops.plugins.deb import DebPlugin
from pendingops.plugins.deb.content import DebReleaseMember
from pendingops.plugins.deb.options import DebOptionError
from pendingops.plugins.deb.packages import PackagesIndexError
from pendingops.plugins.deb.release import ReleaseError
from pendingops.plugins.deb.source import Limits
from tests.plugins.deb.archive import HELLO, TOOL, WORLD, Deb, Signer, stable, write_tree
from tests.remote_server import Fault
from tests.server_thread import ServerThread

INDEX = "dists/stable/main/binary-amd64/Packages.xz"


def sync(
    db: Database,
    storage: LocalStorage,
    url: str,
    plugin: DebPlugin | None = None,
    *,
    mirror: bool = True,
    **options: str,
) -> SyncResult:
    remote = RemoteConfig(url=url, retries=0, options={"suites": "stable", **options})
    run = sync_remote(plugin or DebPlugin(), remote, db=db, storage=storage, repository="deb", mirror=mirror)
    return asyncio.run(run)


def units(db: Database, number: int | None = None) -> dict[str, Any]:
    """The version's units: packages by name, suites by "suite:NAME"."""
    found = {}
    for unit in iter_version_content(db, "deb", number):
        name = unit.fields["package"] if unit.content_type == "deb" else f"suite:{unit.fields['suite']}"
        found[name] = unit
    return found


def stored_bytes(storage: LocalStorage, unit: Any) -> dict[str, bytes]:
    return {f.relative_path: storage.open(f.location).read() for f in unit.files if f.location is not None}


def members(db: Database, release_id: int) -> set[tuple[str, str, str]]:
    table = DebReleaseMember.__table__
    query = select(table.c.component, table.c.index_architecture, table.c.package_key)
    with db.engine.connect() as conn:
        return set(map(tuple, conn.execute(query.where(table.c.release_id == release_id))))


def test_a_mirror_sync_checks_everything_and_keeps_the_suites_files(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    files = stable(signer).files()
    with ServerThread(files) as origin:
        result = sync(db, storage, origin.base_url)
        by_hash = f"dists/stable/main/binary-amd64/by-hash/SHA256/{hashlib.sha256(files[INDEX]).hexdigest()}"
        assert origin.requests[by_hash] == 1 and INDEX not in origin.requests  # Acquire-By-Hash: yes
        for name in ("InRelease", "Release", "Release.gpg"):
            assert origin.requests[f"dists/stable/{name}"] == 1
        for deb in (HELLO, WORLD, TOOL):
            assert origin.requests[deb.filename()] == 1

        assert (result.version.number, result.added, result.failed_count) == (1, 4, 0)
        found = units(db)
        assert set(found) == {"hello", "world", "tool", "suite:stable"}
        tool = found["tool"]
        assert tool.natural_key == {
            "package": "tool",
            "version": "0.1",
            "architecture": "amd64",
            "sha256": hashlib.sha256(TOOL.data).hexdigest(),
        }
        assert (tool.fields["depends"], tool.fields["description"], tool.fields["stanza"]) == (
            "hello",
            "the tool test package",
            TOOL.stanza(),
        )
        assert stored_bytes(storage, tool) == {TOOL.filename(): TOOL.data}
        suite = found["suite:stable"]
        kept = {INDEX, by_hash, *(f"dists/stable/{n}" for n in ("InRelease", "Release", "Release.gpg"))}
        assert stored_bytes(storage, suite) == {path: files[path] for path in kept}  # byte for byte
        assert (suite.fields["codename"], suite.fields["architectures"], suite.fields["filtered"]) == (
            "stable",
            "amd64",
            False,
        )
        assert {(c, a) for c, a, _ in members(db, suite.content_id)} == {("main", "amd64")}
        assert len(members(db, suite.content_id)) == 3

        again = sync(db, storage, origin.base_url)  # the Release files are the same: nothing else is read
        assert again.remote_unchanged and not again.created
        assert origin.requests[by_hash] == 1 and origin.requests["dists/stable/InRelease"] == 2
        forced = asyncio.run(
            sync_remote(
                DebPlugin(),
                RemoteConfig(url=origin.base_url, options={"suites": "stable"}),
                db=db,
                storage=storage,
                repository="deb",
                mirror=True,
                force=True,
            )
        )
        # the whole sync ran; the index already stored (its bytes checked again) was not fetched again
        assert not forced.created and not forced.remote_unchanged and origin.requests[by_hash] == 1
        assert origin.requests["dists/stable/InRelease"] == 3
        assert all(origin.requests[deb.filename()] == 1 for deb in (HELLO, WORLD, TOOL))


@pytest.mark.parametrize(("signed", "kept"), [("release", {"Release", "Release.gpg"}), ("none", {"Release"})])
def test_an_archive_without_inrelease_or_by_hash(
    db: Database, storage: LocalStorage, signer: Signer, signed: str, kept: set[str]
) -> None:
    files = stable(signer, signed=signed, by_hash=False, compressions=("gz", "")).files()
    with ServerThread(files) as origin:
        result = sync(db, storage, origin.base_url)
        assert origin.requests["dists/stable/InRelease"] == 1  # asked for first; 404
        assert origin.requests["dists/stable/main/binary-amd64/Packages.gz"] == 1
    assert result.added == 4
    suite = units(db)["suite:stable"]
    expected = {f"dists/stable/{n}" for n in kept} | {"dists/stable/main/binary-amd64/Packages.gz"}
    assert stored_bytes(storage, suite) == {path: files[path] for path in expected}


def test_a_file_url_archive(db: Database, storage: LocalStorage, signer: Signer, tmp_path: Path) -> None:
    root = write_tree(stable(signer).files(), tmp_path / "archive")
    assert sync(db, storage, root.as_uri()).added == 4


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (Fault(wrong_bytes=True), "sha256 mismatch"),
        (Fault(oversize=10), "larger than the expected"),
        (Fault(truncate=True), ""),
    ],
)
def test_an_index_that_does_not_match_its_release_fails_the_sync_with_one_line(
    db: Database, storage: LocalStorage, signer: Signer, fault: Fault, problem: str
) -> None:
    files = stable(signer, by_hash=False).files()
    with ServerThread(files) as origin:
        origin.faults[INDEX] = fault
        with pytest.raises(DownloadError) as caught:
            sync(db, storage, origin.base_url)
        assert not any(path.startswith("pool/") for path in origin.requests)  # no package fetched
    message = str(caught.value)
    assert INDEX in message and problem in message and "\n" not in message
    assert list(iter_version_content(db, "deb")) == []


def test_a_package_that_does_not_match_its_stanza_fails_that_unit(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    with ServerThread(stable(signer).files()) as origin:
        origin.faults[HELLO.filename()] = Fault(wrong_bytes=True)
        with pytest.raises(SyncFailed, match="sha256 mismatch"):
            sync(db, storage, origin.base_url)
        remote = RemoteConfig(url=origin.base_url, retries=0, options={"suites": "stable"})
        run = sync_remote(DebPlugin(), remote, db=db, storage=storage, repository="deb", mirror=True, on_error="skip")
        result = asyncio.run(run)
    [failure] = result.failures
    assert failure.unit.startswith("deb hello, 1.0, amd64") and "sha256 mismatch" in failure.reason
    assert set(units(db)) == {"world", "tool", "suite:stable"}


def bomb(compress: Any) -> bytes:
    """Valid stanzas compressed once and the stream repeated: 80 MB once decompressed, a few KB packed."""
    return compress((HELLO.stanza() + "\n").encode() * 2_000) * 100


@pytest.mark.parametrize(
    ("path", "compress"),
    [("main/binary-amd64/Packages.xz", lzma.compress), ("main/binary-amd64/Packages.gz", gzip.compress)],
)
def test_a_decompression_bomb_stops_at_the_cap(
    db: Database, storage: LocalStorage, signer: Signer, path: str, compress: Any
) -> None:
    suffix = path.rpartition(".")[2]
    archive = stable(signer, compressions=(suffix,), replaced={path: bomb(compress)})
    with ServerThread(archive.files()) as origin:
        plugin = DebPlugin(limits=Limits(unpacked_index_bytes=4_000_000))
        with pytest.raises(PackagesIndexError, match="larger than 4000000 bytes once decompressed") as caught:
            sync(db, storage, origin.base_url, plugin)
        assert "\n" not in str(caught.value)
        small = DebPlugin(limits=Limits(index_bytes=1000))  # refused unread: the Release gives its size
        with pytest.raises(ReleaseError, match="over the limit of 1000"):
            sync(db, storage, origin.base_url, small)
        assert not any(p.startswith("pool/") for p in origin.requests)
    assert list(iter_version_content(db, "deb")) == []


@pytest.mark.parametrize(
    "filename", ["../../../../outside/evil.deb", "/tmp/evil.deb", "pool/../../evil.deb", "dists/stable/evil.deb"]
)
def test_a_filename_outside_pool_is_refused_before_anything_is_fetched(
    db: Database, storage: LocalStorage, signer: Signer, filename: str, tmp_path: Path
) -> None:
    text = HELLO.stanza().replace(HELLO.filename(), filename).encode()
    archive = stable(signer, compressions=("xz",), replaced={"main/binary-amd64/Packages.xz": lzma.compress(text)})
    with ServerThread(archive.files()) as origin:
        with pytest.raises(PackagesIndexError, match="stanza 1 \\('hello'\\)") as caught:
            sync(db, storage, origin.base_url)
        assert not any("evil" in path or path.startswith("pool/") for path in origin.requests)
    assert "\n" not in str(caught.value) and repr(filename) in str(caught.value)
    assert not (tmp_path / "outside").exists()
    assert list(iter_version_content(db, "deb")) == []


def test_packages_selects_by_name_and_a_name_not_listed_is_one_line(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    with ServerThread(stable(signer).files()) as origin:
        result = sync(db, storage, origin.base_url, packages="hello")
        assert set(units(db)) == {"hello", "suite:stable"} and result.added == 2
        assert origin.requests[WORLD.filename()] == 0
        suite = units(db)["suite:stable"]
        assert suite.fields["filtered"] and "packages=hello" in suite.fields["selection"]
        assert len(members(db, suite.content_id)) == 1
        with pytest.raises(DebOptionError, match=r"^packages: not listed by the indexes read: nosuch$"):
            sync(db, storage, origin.base_url, packages="hello,nosuch")
        with pytest.raises(ReleaseError, match="no Packages index for contrib/binary-amd64"):
            sync(db, storage, origin.base_url, components="main,contrib")
        with pytest.raises(ReleaseError, match="neither InRelease nor Release could be fetched"):
            sync(db, storage, origin.base_url, suites="nosuch")


def test_all_packages_and_two_suites_sharing_a_package(db: Database, storage: LocalStorage, signer: Signer) -> None:
    archive = stable(signer, binary_all=True)
    archive.add("stable-updates", Deb("hello", "1.1")).add("stable-updates", WORLD)
    with ServerThread(archive.files()) as origin:
        result = sync(db, storage, origin.base_url, suites="stable,stable-updates")
        assert origin.requests[WORLD.filename()] == 1  # listed four times, one unit, fetched once
    assert result.added == 6  # hello 1.0, hello 1.1, world, tool, two suites
    found = {
        (u.content_type, u.fields.get("package") or u.fields["suite"], u.fields.get("version"))
        for u in iter_version_content(db, "deb")
    }
    assert ("deb", "hello", "1.1") in found and ("deb", "hello", "1.0") in found
    suites = {u.fields["suite"]: u for u in iter_version_content(db, "deb") if u.content_type == "deb_release"}
    assert suites["stable"].fields["architectures"] == "all amd64"
    listings = members(db, suites["stable"].content_id)
    assert sum(1 for c, a, _ in listings if a == "all") == 1 and sum(1 for c, a, _ in listings if a == "amd64") == 3
    assert len(members(db, suites["stable-updates"].content_id)) == 3  # world twice (binary-all and amd64), hello


def test_a_new_version_of_a_package_is_a_changed_item(db: Database, storage: LocalStorage, signer: Signer) -> None:
    with ServerThread(stable(signer).files()) as origin:
        sync(db, storage, origin.base_url)
    with ServerThread(stable(signer, Deb("hello", "1.1"), WORLD, TOOL).files()) as origin:
        result = sync(db, storage, origin.base_url)
        assert origin.requests[WORLD.filename()] == 0 and origin.requests[Deb("hello", "1.1").filename()] == 1
    assert (result.added, result.removed) == (2, 2)  # hello and the suite, each replaced
    changed = diff_versions(db, "deb", 1, 2)
    pairs = {
        (after.content_type, after.fields.get("package") or after.fields["suite"]): (before, after)
        for before, after in changed.changed
    }
    assert set(pairs) == {("deb", "hello"), ("deb_release", "stable")}
    before, after = pairs[("deb", "hello")]
    assert (before.fields["version"], after.fields["version"]) == ("1.0", "1.1")
    assert changed.added == changed.removed == []


def test_orphan_cleanup_removes_a_replaced_suite_with_the_packages_it_listed(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    with ServerThread(stable(signer).files()) as origin:
        sync(db, storage, origin.base_url)
    old = units(db)["suite:stable"].content_id
    with ServerThread(stable(signer, Deb("hello", "1.1"), WORLD, TOOL).files()) as origin:
        sync(db, storage, origin.base_url)
    new = units(db)["suite:stable"].content_id
    assert len(members(db, old)) == len(members(db, new)) == 3
    retain(db, "deb", 1)
    report = remove_orphans(db, storage)
    assert report.content == 2  # hello 1.0 and the old suite, its listings with it
    assert members(db, old) == set() and len(members(db, new)) == 3
    assert set(units(db)) == {"hello", "world", "tool", "suite:stable"}
