"""Which form a version's dists/ takes (the upstream's files, or our own indexes), and what ours hold,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re

import pytest
from reactivex import operators as rxo

from pendingops import Database, LocalStorage, RemoteConfig, sync_remote
from pendingops.db.versions import find_repository
from pendingops.maintenance.lifecycle import rollback
from pendingops.plugins import VersionRef
from pendingops.plugins.deb import DebPlugin
from pendingops.plugins.deb.publish import own_indexes, render, static
from pendingops.plugins.deb.release import parse_release, signed_text
from pendingops.plugins.deb.signing import SigningError
from pendingops.plugins.deb.stanza import read_stanzas
from tests.plugins.deb.archive import HELLO, TOOL, WORLD, Archive, Deb, Signer, stable
from tests.remote_server import Fault
from tests.server_thread import ServerThread


def sync(
    db: Database,
    storage: LocalStorage,
    archive: Archive,
    *,
    mirror: bool = True,
    faults: dict[str, Fault] | None = None,
    **options: str,
) -> int:
    with ServerThread(archive.files()) as origin:
        origin.faults.update(faults or {})
        remote = RemoteConfig(url=origin.base_url, retries=0, options={"suites": "stable", **options})
        result = asyncio.run(
            sync_remote(DebPlugin(), remote, db=db, storage=storage, repository="deb", mirror=mirror, on_error="skip")
        )
    return result.version.number


def ref(db: Database, number: int) -> VersionRef:
    with db.engine.connect() as conn:
        return VersionRef(db, find_repository(conn, "deb"), number, "http://server/deb/1/")


def ours(db: Database, number: int) -> bool:
    version = ref(db, number)
    with db.engine.connect() as conn:
        return own_indexes(conn, version.repository_id, number)


def page(version: VersionRef, path: str) -> bytes | None:
    found = render(version, path, "*/*")
    return None if found is None else b"".join(found.body)


def listed(version: VersionRef, suite: str = "stable", index: str = "main/binary-amd64/Packages") -> list[str]:
    """The (package version) pairs our index lists, after checking it against our Release."""
    release = parse_release(page(version, f"{suite}/Release") or b"", "Release")
    body, packed = page(version, f"{suite}/{index}"), page(version, f"{suite}/{index}.gz")
    assert body is not None and packed is not None and gzip.decompress(packed) == body
    for name, data in ((index, body), (f"{index}.gz", packed)):
        entry = release.files[name]
        assert (entry.sha256, entry.size) == (hashlib.sha256(data).hexdigest(), len(data))
        folder = index.rpartition("/")[0]
        assert page(version, f"{suite}/{folder}/by-hash/SHA256/{entry.sha256}") == data
    return [f"{s.fields['Package']} {s.fields['Version']}" for s in read_stanzas([body])]


def test_a_mirror_of_the_whole_archive_is_the_upstreams_set(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    number = sync(db, storage, stable(signer))
    assert not ours(db, number)


def test_packages_gives_our_own_unsigned_indexes_of_the_selected_packages(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    number = sync(db, storage, stable(signer), packages="hello,tool")
    assert ours(db, number)
    version = ref(db, number)
    assert listed(version) == ["hello 1.0", "tool 0.1"]
    body = page(version, "stable/main/binary-amd64/Packages")
    assert body == (HELLO.stanza() + "\n" + TOOL.stanza() + "\n").encode()  # each stanza as the upstream wrote it
    release = page(version, "stable/Release") or b""
    assert re.search(rb"^Acquire-By-Hash: yes$", release, re.MULTILINE)
    assert b"Suite: stable\nCodename: stable\n" in release and b"Architectures: amd64\nComponents: main\n" in release
    for missing in ("stable/InRelease", "stable/Release.gpg", "stable/main/binary-i386/Packages", "other/Release"):
        assert render(version, missing, "*/*") is None
    assert render(version, f"stable/main/binary-amd64/by-hash/SHA256/{'0' * 64}", "*/*") is None
    exported = {path: b"".join(body) for path, body in static(version)}
    expected = {f"stable/{path}" for path in ("Release", "main/binary-amd64/Packages", "main/binary-amd64/Packages.gz")}
    assert expected <= set(exported) and all(exported[p] == page(version, p) for p in exported)
    assert sum("/by-hash/SHA256/" in path for path in exported) == 2


def test_an_additive_merge_gets_our_indexes_and_a_rollback_the_upstreams_again(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    first = sync(db, storage, stable(signer), mirror=False)
    second = sync(db, storage, stable(signer, Deb("hello", "1.1"), WORLD), mirror=False)
    assert (ours(db, first), ours(db, second)) == (False, True)
    assert listed(ref(db, second)) == ["hello 1.0", "hello 1.1", "tool 0.1", "world 2.0"]
    back = rollback(db, "deb", first).number
    assert back is not None and not ours(db, back)


def test_a_package_that_failed_makes_the_version_ours(db: Database, storage: LocalStorage, signer: Signer) -> None:
    number = sync(db, storage, stable(signer), faults={HELLO.filename(): Fault(status=404)})
    assert ours(db, number)
    assert listed(ref(db, number)) == ["tool 0.1", "world 2.0"]  # never a package the version lacks


def test_a_package_an_operator_dropped_is_not_listed_though_its_suite_lists_it(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    archive = stable(signer)
    with ServerThread(archive.files()) as origin:
        remote = RemoteConfig(url=origin.base_url, options={"suites": "stable"})
        run = sync_remote(DebPlugin(), remote, db=db, storage=storage, repository="other", mirror=True)
        assert asyncio.run(run).added == 4  # another repository holds hello
        plugin = DebPlugin()
        dropped = [rxo.filter(lambda unit: unit.fields.get("package") != "hello"), *plugin.pipeline()]
        run = sync_remote(plugin, remote, db=db, storage=storage, repository="deb", mirror=True, pipeline=dropped)
        number = asyncio.run(run).version.number
    assert ours(db, number)  # the suite unit (shared with "other") lists hello; the version lacks it
    assert listed(ref(db, number)) == ["tool 0.1", "world 2.0"]


def test_each_suite_lists_its_own_packages(db: Database, storage: LocalStorage, signer: Signer) -> None:
    archive = stable(signer, binary_all=True)
    archive.add("stable-updates", Deb("hello", "1.1")).add("stable-updates", WORLD)
    number = sync(db, storage, archive, suites="stable,stable-updates", packages="hello,world")
    version = ref(db, number)
    assert listed(version) == ["hello 1.0", "world 2.0"]
    assert listed(version, index="main/binary-all/Packages") == ["world 2.0"]
    assert listed(version, "stable-updates") == ["hello 1.1", "world 2.0"]
    assert b"Architectures: all amd64\n" in (page(version, "stable/Release") or b"")


def test_empty_indexes_are_published_each_at_its_own_by_hash_path(
    db: Database, storage: LocalStorage, signer: Signer
) -> None:
    archive = Archive(signer=signer, binary_all=True).add("stable", HELLO).add("stable", TOOL, "contrib")
    number = sync(db, storage, archive, components="main,contrib", packages="hello")
    version = ref(db, number)
    assert listed(version) == ["hello 1.0"]
    for index in ("main/binary-all/Packages", "contrib/binary-all/Packages", "contrib/binary-amd64/Packages"):
        assert listed(version, index=index) == []  # three indexes with the same (empty) bytes
    assert b"Components: main contrib\n" in (page(version, "stable/Release") or b"")


def test_a_signing_key_signs_our_release(
    db: Database, storage: LocalStorage, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror_key = Signer("Our Mirror <mirror@example.org>")
    try:
        monkeypatch.setenv("GNUPGHOME", str(mirror_key.home))
        number = sync(db, storage, stable(signer), packages="hello", signing_key=mirror_key.fingerprint)
        version = ref(db, number)
        release, inrelease = page(version, "stable/Release"), page(version, "stable/InRelease")
        detached = page(version, "stable/Release.gpg")
        assert release and inrelease and detached
        assert signed_text(inrelease, "InRelease") == release
        assert mirror_key.verify(inrelease) and mirror_key.verify(detached, release)
        assert not signer.verify(inrelease)  # the upstream's key does not sign our indexes
        with pytest.raises(SigningError, match="no secret key for it"):
            sync(db, storage, stable(signer), packages="hello", signing_key=signer.fingerprint)
    finally:
        mirror_key.close()
