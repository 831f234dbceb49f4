"""Parsers with limits (guarantee 4): a remote's universe or tarball costs bounded time and memory.

A tarball must be gzip, is read as a stream with caps on members and decompressed bytes, and keeps
no member in memory; the universe is streamed one bounded entry at a time. Malformed input is a
one-line error (a failed unit, or exit 2 for a bad universe), never an internal error. Bombs are
sized just over lowered caps.
"""

from __future__ import annotations

import asyncio
import bz2
import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from pendingops import Database, LocalStorage, RemoteConfig, SyncResult, sync_remote
from pendingops.download.fetcher import Fetcher
from pendingops.plugins.cookbook import CookbookPlugin, iter_universe, read_metadata_json
from pendingops.plugins.cookbook import tarball as cookbook_tarball
from tests.cli.test_hostile_input import Env, assert_nothing_stored, assert_one_line_error, env  # noqa: F401
from tests.plugins.cookbook_server import CookbookServer, CookbookVersion, cookbook, make_tarball
from tests.server_thread import ServerThread


def _tar(members: dict[str, bytes], *, empty_files: int = 0) -> bytes:
    """An uncompressed tar of ``empty_files`` empty members, then ``members``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for index in range(empty_files):
            tar.addfile(tarfile.TarInfo(f"bomb/{index}"))
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


METADATA = json.dumps({"name": "bomb", "version": "1.0.0"}).encode()


def _sync_bomb(db: Database, storage: LocalStorage, tarball: bytes) -> SyncResult:
    offered = dict([cookbook("good", "1.0.0")])
    offered[("bomb", "1.0.0")] = CookbookVersion(tarball)

    async def scenario() -> SyncResult:
        async with CookbookServer(offered) as server:
            remote = RemoteConfig(url=server.base_url, retries=0)
            return await sync_remote(CookbookPlugin(), remote, db=db, storage=storage, repository="r", on_error="skip")

    return asyncio.run(scenario())


def _assert_only_bomb_failed(result: SyncResult, reason: str) -> None:
    [failure] = result.failures
    assert failure.unit.startswith("cookbook bomb, 1.0.0, ")
    assert failure.reason == f"bomb-1.0.0.tar.gz: {reason}"
    assert (result.added, result.version.content_count) == (1, 1)  # the bomb was not saved


def test_a_tarball_with_more_members_than_the_cap_fails_its_unit(db, storage, monkeypatch) -> None:
    monkeypatch.setattr(cookbook_tarball, "MAX_TARBALL_MEMBERS", 100)
    tarball = _gzip(_tar({"bomb/metadata.json": METADATA}, empty_files=100))
    _assert_only_bomb_failed(_sync_bomb(db, storage, tarball), "more than 100 members")


def test_a_tarball_inflating_past_the_cap_fails_its_unit(db, storage, monkeypatch) -> None:
    monkeypatch.setattr(cookbook_tarball, "MAX_TARBALL_BYTES", 64 * 1024)
    tarball = _gzip(_tar({"bomb/zeros": bytes(65 * 1024), "bomb/metadata.json": METADATA}))
    assert len(tarball) < 1024
    _assert_only_bomb_failed(_sync_bomb(db, storage, tarball), "more than 65536 bytes once decompressed")


def test_a_tarball_that_is_not_gzip_fails_its_unit(db, storage) -> None:
    tarball = bz2.compress(_tar({"bomb/metadata.json": METADATA}, empty_files=10))
    _assert_only_bomb_failed(_sync_bomb(db, storage, tarball), "not a gzip-compressed tarball")


def test_reading_a_tarball_keeps_no_member_in_memory() -> None:
    tarball = _gzip(_tar({}, empty_files=5000))  # 5000 headers, no metadata.json: every one is read
    tracemalloc.start()
    try:
        assert read_metadata_json(io.BytesIO(tarball), "many.tar.gz") is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024**2, peak  # keeping 5000 TarInfo objects alone takes several MiB


TWICE = r"cookbook 'apt' version '1\.0\.0' is listed twice"


@pytest.mark.parametrize(
    ("universe", "problem"),
    [
        (b"[" * 200_000, r"not a JSON universe \(expected a JSON object of cookbooks\)"),
        (b'{"apt": {"1.0.0": ' + b"[" * 200_000, r"cookbook 'apt' version '1\.0\.0': nested too deeply"),
        (b'{"apt": {"1.0.0": {"download_url": "https://a"}}, "apt": {"1.0.0": {"download_url": "https://b"}}}', TWICE),
        (b'{"apt": {"1.0.0": {"download_url": "https://x/a"}}} trailing', r"extra data after the universe"),
        (b'{"apt": {"1.0.0": {"download_url": "https://x/\xff"}}}', r"not UTF-8"),
    ],
    ids=["deep at the top", "deep in an entry", "listed twice", "trailing data", "not UTF-8"],
)
def test_a_malformed_universe_is_one_line_and_exit_2(env: Env, universe: bytes, problem: str) -> None:  # noqa: F811
    server = CookbookServer(dict([cookbook("apt", "1.0.0")]), universe_override=universe)
    with ServerThread(server=server) as running:
        done = env.run("sync", running.base_url, "--plugin", "cookbook", "--repo", "r", "--quiet")
    assert_one_line_error(done, rf"bad {running.base_url}universe: .*{problem}")
    assert running.tarball_count() == 0
    assert_nothing_stored(env, versions=[0])


def _universe_peak(storage: LocalStorage, root: Path, cookbooks: int) -> int:
    """Peak memory of fetching and checking (``open_source``) a universe of ``cookbooks`` x 10 versions."""
    site = "https://supermarket.example/api/v1"
    universe = {
        f"cookbook{i}": {
            f"1.{j}.0": {
                "download_url": f"{site}/cookbooks/cookbook{i}/versions/1.{j}.0/download",
                "dependencies": {"apt": ">= 1.0"},
                "location_type": "opscode",
                "location_path": site,
            }
            for j in range(10)
        }
        for i in range(cookbooks)
    }
    root.mkdir()
    (root / "universe").write_text(json.dumps(universe))
    work = root / "work"
    work.mkdir()

    async def scenario() -> int:
        remote = RemoteConfig(url=root.as_uri() + "/")
        async with Fetcher(remote, storage) as fetcher:
            tracemalloc.start()
            try:
                async with CookbookPlugin().open_source(remote, fetcher, work) as source:
                    assert source.total == cookbooks * 10
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    return asyncio.run(scenario())


def test_reading_the_universe_takes_memory_flat_in_its_size(storage: LocalStorage, tmp_path: Path) -> None:
    small = _universe_peak(storage, tmp_path / "small", 200)  # 0.5 MB of JSON
    large = _universe_peak(storage, tmp_path / "large", 800)  # 1.9 MB: json.load would hold some 6 MB more
    assert large < small + 1024**2, (small, large)


def test_a_tarball_made_by_the_test_server_still_reads() -> None:
    """The baseline the bombs are cut from: a normal gzip tarball gives its metadata.json."""
    document = read_metadata_json(io.BytesIO(make_tarball("apt", "1.0.0")), "apt-1.0.0.tar.gz")
    assert document is not None and document["name"] == "apt"


def test_a_universe_with_a_byte_order_mark_still_reads(tmp_path: Path) -> None:
    """As json.load reads one: a BOM is allowed, not taken for malformed input."""
    universe = tmp_path / "universe"
    universe.write_bytes(b"\xef\xbb\xbf" + json.dumps({"apt": {"1.0.0": {"download_url": "https://s/a"}}}).encode())
    assert [(e.name, e.version) for e in iter_universe(universe)] == [("apt", "1.0.0")]

