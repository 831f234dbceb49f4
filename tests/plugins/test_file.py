"""The file plugin against a real HTTP server (and file:// trees) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pendingops import Database, LocalStorage, RemoteConfig, SyncFailed, SyncResult, sync_remote
from pendingops.db.schema import Artifact, Content, ContentArtifact, RemoteArtifact
from pendingops.db.versions import VersionInfo, version_info
from pendingops.download.fetcher import DownloadError
from pendingops.maintenance.listing import iter_version_content
from pendingops.plugins.file import (
    MAX_FILE_SIZE,
    FileContent,
    FilePlugin,
    ManifestEntry,
    ManifestError,
    check_manifest,
    file_url,
    parse_manifest_line,
)
from pendingops.storage.owner import OWNER_MARKER
from tests.remote_server import HTML_PAGE, Fault, RemoteServer

REPO = "files"


# -- helpers -------------------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def line(path: str, data: bytes) -> str:
    return f"{path},{sha(data)},{len(data)}"


def some_files(n: int, tag: str = "") -> dict[str, bytes]:
    return {f"dir{i % 3}/file-{i:03d}.txt": f"{tag}content {i}\n".encode() for i in range(n)}


async def sync(url: str, db: Database, storage: LocalStorage, **options: Any) -> SyncResult:
    remote_options = {k: options.pop(k) for k in ("policy", "retries", "retry_backoff") if k in options}
    remote = RemoteConfig(url=url, **remote_options)
    return await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository=REPO, **options)


def version_files(db: Database, storage: LocalStorage, number: int | None = None) -> dict[tuple[str, str], bytes]:
    """(relative_path, sha256) -> stored bytes of every unit in the version."""
    found = {}
    for unit in iter_version_content(db, REPO, number):
        assert unit.content_type == "file"
        [stored] = unit.files
        assert stored.relative_path == unit.fields["relative_path"]
        with storage.open(stored.location) as handle:
            found[(unit.fields["relative_path"], unit.fields["sha256"])] = handle.read()
    return found


def expected(files: dict[str, bytes]) -> dict[tuple[str, str], bytes]:
    return {(path, sha(data)): data for path, data in files.items()}


def row_counts(db: Database) -> dict[str, int]:
    tables = {
        "artifact": Artifact,
        "content": Content,
        "file_content": FileContent,
        "content_artifact": ContentArtifact,
        "remote_artifact": RemoteArtifact,
    }
    with db.engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(t.__table__)).scalar_one() for name, t in tables.items()
        }


def latest(db: Database) -> VersionInfo:
    with db.engine.connect() as conn:
        return version_info(conn, REPO)


def stored_files(storage: LocalStorage) -> list[Path]:
    return [p for p in storage.root.rglob("*") if p.is_file() and p.name != OWNER_MARKER]


# -- whole syncs ---------------------------------------------------------------------------------


def test_initial_sync_stores_every_listed_file(db, storage):
    files = some_files(25)

    async def scenario():
        async with RemoteServer(dict(files)) as server:
            result = await sync(server.manifest_url, db, storage, batch_size=7)
            return result, server.file_requests(), dict(server.requests)

    result, file_requests, requests = asyncio.run(scenario())
    assert result.created and (result.version.number, result.added, result.removed) == (1, 25, 0)
    assert result.failed_count == 0 and result.version.content_count == 25
    assert version_files(db, storage) == expected(files)
    assert file_requests == 25 and all(requests[path] == 1 for path in files)
    assert row_counts(db) == dict.fromkeys(("artifact", "content", "file_content", "content_artifact"), 25) | {
        "remote_artifact": 25
    }


@pytest.mark.parametrize("mirror", [False, True], ids=["additive", "mirror"])
def test_noop_resync_fetches_no_file_and_makes_no_version(db, storage, mirror):
    files = some_files(12)

    async def scenario():
        async with RemoteServer(dict(files)) as server:
            first = await sync(server.manifest_url, db, storage)
            after_first = server.file_requests()
            again = await sync(server.manifest_url, db, storage, mirror=mirror)
            return first, after_first, again, server.file_requests(), server.requests["PULP_MANIFEST"]

    first, after_first, again, after_again, manifest_requests = asyncio.run(scenario())
    assert first.version.number == 1 and after_first == 12
    assert not again.created and (again.added, again.removed) == (0, 0)
    assert again.version.number == 1 and latest(db).number == 1
    assert after_again == 12, "the resync downloaded files it already had"
    assert manifest_requests == 2
    assert version_files(db, storage) == expected(files)


def changed(files: dict[str, bytes]) -> dict[str, bytes]:
    """The remote after a change: 3 files gone, 1 file rewritten in place, 2 files new."""
    new = {path: data for path, data in list(files.items())[3:]}
    new["dir0/file-009.txt"] = b"rewritten\n"
    new["fresh/one.txt"] = b"one\n"
    new["fresh/two.txt"] = b"two\n"
    return new


def test_mirror_resync_matches_the_changed_remote_exactly(db, storage):
    before = some_files(12)
    after = changed(before)

    async def scenario():
        async with RemoteServer(dict(before)) as server:
            await sync(server.manifest_url, db, storage)
            server.files = dict(after)
            server.requests.clear()
            result = await sync(server.manifest_url, db, storage, mirror=True)
            return result, dict(server.requests)

    result, requests = asyncio.run(scenario())
    assert (result.version.number, result.added, result.removed) == (2, 3, 4)
    assert result.version.content_count == len(after) == 11
    assert version_files(db, storage) == expected(after)
    assert version_files(db, storage, 1) == expected(before), "version 1 changed"
    downloaded = {path for path, count in requests.items() if path != "PULP_MANIFEST" and count}
    assert downloaded == {"dir0/file-009.txt", "fresh/one.txt", "fresh/two.txt"}


def test_additive_resync_keeps_what_the_remote_dropped(db, storage):
    before = some_files(12)
    after = changed(before)

    async def scenario():
        async with RemoteServer(dict(before)) as server:
            await sync(server.manifest_url, db, storage)
            server.files = dict(after)
            return await sync(server.manifest_url, db, storage)

    result = asyncio.run(scenario())
    assert (result.version.number, result.added, result.removed) == (2, 3, 0)
    union = expected(before) | expected(after)
    assert len(union) == 15
    assert version_files(db, storage) == union
    # the rewritten path is present twice, once per sha256 (the natural key is the pair)
    assert sum(1 for path, _ in union if path == "dir0/file-009.txt") == 2


def test_digest_mismatch_fails_that_unit_with_its_reason(db, storage):
    files = {"a.txt": b"alpha\n", "b.txt": b"bravo\n", "c.txt": b"charlie\n"}

    async def scenario():
        async with RemoteServer(dict(files), faults={"b.txt": Fault(wrong_bytes=True)}) as server:
            result = await sync(server.manifest_url, db, storage, on_error="skip", retries=1, retry_backoff=0.01)
            return result, server.base_url, server.requests["b.txt"]

    result, base_url, b_requests = asyncio.run(scenario())
    assert result.failed_count == 1 and result.added == 2
    [failure] = result.failures
    assert failure.unit == f"file b.txt, {sha(files['b.txt'])}"
    assert failure.stage == "download"
    assert f"{base_url}b.txt: sha256 mismatch (expected {sha(files['b.txt'])}, got " in failure.reason
    assert "(after 2 attempts)" in failure.reason and b_requests == 2
    del files["b.txt"]
    assert version_files(db, storage) == expected(files)
    assert row_counts(db)["artifact"] == 2, "the wrong bytes were stored"


def test_digest_mismatch_fails_the_sync_under_the_fail_policy(db, storage):
    files = {"a.txt": b"alpha\n", "b.txt": b"bravo\n"}

    async def scenario():
        async with RemoteServer(dict(files), faults={"b.txt": Fault(wrong_bytes=True)}) as server:
            with pytest.raises(SyncFailed) as info:
                await sync(server.manifest_url, db, storage, retries=0)
            return str(info.value)

    message = asyncio.run(scenario())
    assert message.startswith(f"file b.txt, {sha(files['b.txt'])}: download failed: ")
    assert "b.txt: sha256 mismatch" in message
    assert latest(db).number == 0 and latest(db).content_count == 0


SPECIAL_NAMES = [
    "with space.txt",
    "100% sure.txt",
    "hash#tag.txt",
    "what?.txt",
    "a+b=c&d.txt",
    "comma,in,name.txt",
    "semi;colon.txt",
    "colon:name.txt",
    "quotes'\"and`.txt",
    "brackets[1](2){3}<4>.txt",
    "naïve/日本語 ファイル.txt",
    "emoji 🎉.txt",
    "dir with space/sub%dir/x?y#z.txt",
    "~tilde/@at$dollar!*.txt",
]


#: names holding %XX sequences: they must reach the server as literal names, not be decoded twice
ESCAPE_LIKE_NAMES = ["%41%2F%25.txt", "50%25 off/%zz%2.txt"]


def special_files(names: list[str] = SPECIAL_NAMES) -> dict[str, bytes]:
    return {name: f"bytes of {name}\n".encode() for name in names}


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(SPECIAL_NAMES, id="special"),
        pytest.param(ESCAPE_LIKE_NAMES, id="escape-like"),
    ],
)
def test_special_names_are_percent_encoded_end_to_end(db, storage, names):
    files = special_files(names)

    async def scenario():
        async with RemoteServer(dict(files)) as server:
            result = await sync(server.manifest_url, db, storage)
            return result, dict(server.requests)

    result, requests = asyncio.run(scenario())
    assert result.failed_count == 0 and result.added == len(files)
    # the server unquotes each request path: every name arrived intact, exactly once
    assert {path: count for path, count in requests.items() if path != "PULP_MANIFEST"} == dict.fromkeys(files, 1)
    assert version_files(db, storage) == expected(files)


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under ``root``: its bytes (None for directories) and its modification time."""
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        found[str(path.relative_to(root))] = (path.read_bytes() if path.is_file() else None, stat.st_mtime_ns)
    return found


def test_file_remote_is_read_and_never_modified(db, storage, tmp_path):
    files = some_files(6) | special_files(SPECIAL_NAMES + ESCAPE_LIKE_NAMES)
    source = tmp_path / "source tree %"
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    manifest = source / "PULP_MANIFEST"
    manifest.write_text("".join(line(p, d) + "\n" for p, d in files.items()), encoding="utf-8")
    before = snapshot(source)

    async def scenario():
        first = await sync(manifest.as_uri(), db, storage)
        again = await sync(manifest.as_uri(), db, storage, mirror=True)
        return first, again

    first, again = asyncio.run(scenario())
    assert first.added == len(files) and first.failed_count == 0
    assert not again.created
    assert version_files(db, storage) == expected(files)
    assert snapshot(source) == before, "the file:// source tree was modified"
    assert not any(path.is_relative_to(source) for path in stored_files(storage))


def test_on_demand_records_where_to_fetch_without_downloading(db, storage):
    files = some_files(5) | {"with space & ü.txt": b"special\n"}

    async def scenario():
        async with RemoteServer(dict(files)) as server:
            result = await sync(server.manifest_url, db, storage, policy="on_demand")
            return result, server.file_requests(), server.base_url, server.manifest_url

    result, file_requests, base_url, manifest_url = asyncio.run(scenario())
    assert file_requests == 0
    assert result.added == len(files) and result.version.content_count == len(files)
    counts = row_counts(db)
    assert counts["artifact"] == 0 and counts["content"] == len(files) and counts["remote_artifact"] == len(files)
    assert [p for p in stored_files(storage) if "artifacts" in p.parts] == []
    table = RemoteArtifact.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(select(table.c.url, table.c.sha256, table.c.size)).all()
    recorded = {unquote(urlsplit(url).path)[1:]: (digest, size) for url, digest, size in rows}
    assert recorded == {path: (sha(data), len(data)) for path, data in files.items()}
    assert all(url == file_url(manifest_url, unquote(urlsplit(url).path)[1:]) for url, _, _ in rows)
    assert all(url.startswith(base_url) for url, _, _ in rows)
    units = list(iter_version_content(db, REPO))
    assert all(unit.files[0].location is None for unit in units)


def test_a_manifest_is_parsed_once_and_every_entry_across_pages_becomes_one_unit(db, storage, monkeypatch):
    # More entries than one page of the check's record, with comments and blank lines between
    # them, so pages start and end on lines that are not consecutive numbers.
    entries = {f"pages/{i:05d}.bin": (sha(b"%d" % i), i) for i in range(2345)}
    lines = []
    for number, (path, (digest, size)) in enumerate(entries.items()):
        lines.append(f"{path},{digest},{size}")
        if number % 997 == 0:
            lines += ["# a comment", ""]
    parsed = []

    def counting(raw: bytes, number: int) -> ManifestEntry | None:
        parsed.append(number)
        return parse_manifest_line(raw, number)

    monkeypatch.setattr("pendingops.plugins.file.parse_manifest_line", counting)

    async def scenario():
        async with RemoteServer({}) as server:
            server.manifest_override = "\n".join(lines).encode() + b"\n"
            return await sync(server.manifest_url, db, storage, policy="on_demand")

    result = asyncio.run(scenario())
    assert sorted(parsed) == list(range(1, len(lines) + 1)), "each line is parsed exactly once"
    assert (result.added, result.version.content_count) == (len(entries), len(entries))
    units = iter_version_content(db, REPO)
    declared = {u.fields["relative_path"]: (u.fields["sha256"], u.fields["size"]) for u in units}
    assert declared == entries


def test_empty_manifest_mirrors_to_an_empty_version(db, storage):
    async def scenario():
        async with RemoteServer(some_files(4)) as server:
            await sync(server.manifest_url, db, storage)
            server.manifest_override = b"# nothing here any more\n\n"
            return await sync(server.manifest_url, db, storage, mirror=True)

    result = asyncio.run(scenario())
    assert (result.version.number, result.removed, result.version.content_count) == (2, 4, 0)


# -- bad input: a clear error naming the line, and nothing written -------------------------------

GOOD = {"good.txt": b"good\n"}
GOOD_LINE = line("good.txt", b"good\n")
GOOD_SHA = sha(b"good\n")
DIGEST = sha(b"x")


def bad(name: str, manifest: bytes | str, problem: str) -> Any:
    if isinstance(manifest, str):
        manifest = manifest.encode()
    return pytest.param(manifest, problem, id=name)


BAD_MANIFESTS = [
    bad("no-commas", f"{GOOD_LINE}\njust-a-name\n", "line 2: expected 'relative_path,sha256,size', got 'just-a-name'"),
    bad(
        "one-comma",
        f"{GOOD_LINE}\na.txt,{DIGEST}\n",
        f"line 2: expected 'relative_path,sha256,size', got 'a.txt,{DIGEST}'",
    ),
    bad("short-digest", f"{GOOD_LINE}\na.txt,abc123,1\n", "line 2: sha256 must be 64 hex digits, got 'abc123'"),
    bad(
        "non-hex-digest",
        f"{GOOD_LINE}\na.txt,{'g' * 64},1\n",
        f"line 2: sha256 must be 64 hex digits, got '{'g' * 64}'",
    ),
    bad("empty-digest", f"{GOOD_LINE}\na.txt,,1\n", "line 2: sha256 must be 64 hex digits, got ''"),
    bad(
        "negative-size",
        f"{GOOD_LINE}\na.txt,{DIGEST},-1\n",
        "line 2: size must be a non-negative whole number of bytes, got '-1'",
    ),
    bad(
        "non-digit-size",
        f"{GOOD_LINE}\na.txt,{DIGEST},12kb\n",
        "line 2: size must be a non-negative whole number of bytes, got '12kb'",
    ),
    bad(
        "float-size",
        f"{GOOD_LINE}\na.txt,{DIGEST},1.5\n",
        "line 2: size must be a non-negative whole number of bytes, got '1.5'",
    ),
    bad(
        "empty-size",
        f"{GOOD_LINE}\na.txt,{DIGEST},\n",
        "line 2: size must be a non-negative whole number of bytes, got ''",
    ),
    bad(
        "arabic-digit-size",
        f"{GOOD_LINE}\na.txt,{DIGEST},١٢\n",
        "line 2: size must be a non-negative whole number of bytes, got '١٢'",
    ),
    bad(
        "huge-size",
        f"{GOOD_LINE}\na.txt,{DIGEST},{MAX_FILE_SIZE + 1}\n",
        f"line 2: size '{MAX_FILE_SIZE + 1}' is absurdly large",
    ),
    bad("5000-digit-size", f"{GOOD_LINE}\na.txt,{DIGEST},{'9' * 5000}\n", "line 2: size '99999999999999999999"),
    bad(
        "invalid-utf8",
        GOOD_LINE.encode() + b"\ncaf\xe9.txt," + DIGEST.encode() + b",1\n",
        "line 2: not valid UTF-8 (byte 0xe9 at offset 3)",
    ),
    bad(
        "absolute",
        f"{GOOD_LINE}\n/etc/passwd,{DIGEST},1\n",
        "line 2: relative path must not be absolute: '/etc/passwd'",
    ),
    bad(
        "dotdot",
        f"{GOOD_LINE}\n../escape.txt,{DIGEST},1\n",
        "line 2: relative path has a '..' segment: '../escape.txt'",
    ),
    bad(
        "inner-dotdot",
        f"{GOOD_LINE}\na/../../b.txt,{DIGEST},1\n",
        "line 2: relative path has a '..' segment: 'a/../../b.txt'",
    ),
    bad("dot", f"{GOOD_LINE}\na/./b.txt,{DIGEST},1\n", "line 2: relative path has a '.' segment: 'a/./b.txt'"),
    bad("lone-dot", f"{GOOD_LINE}\n.,{DIGEST},1\n", "line 2: relative path has a '.' segment: '.'"),
    bad(
        "empty-segment", f"{GOOD_LINE}\na//b.txt,{DIGEST},1\n", "line 2: relative path has an empty segment: 'a//b.txt'"
    ),
    bad("trailing-slash", f"{GOOD_LINE}\ndir/,{DIGEST},1\n", "line 2: relative path has an empty segment: 'dir/'"),
    bad("empty-path", f"{GOOD_LINE}\n,{DIGEST},1\n", "line 2: empty relative path: ''"),
    bad(
        "nul",
        f"{GOOD_LINE}\na\0b.txt,{DIGEST},1\n",
        "line 2: relative path contains a NUL or control character: 'a\\x00b.txt'",
    ),
    bad(
        "escape-char",
        f"{GOOD_LINE}\na\x1b[31mb.txt,{DIGEST},1\n",
        "line 2: relative path contains a NUL or control character",
    ),
    bad(
        "carriage-return",
        f"{GOOD_LINE}\na\rb.txt,{DIGEST},1\n",
        "line 2: relative path contains a NUL or control character",
    ),
    bad(
        "backslash",
        f"{GOOD_LINE}\na\\b.txt,{DIGEST},1\n",
        "line 2: relative path must not contain a backslash: 'a\\\\b.txt'",
    ),
    bad(
        "drive-letter",
        f"{GOOD_LINE}\nC:/Windows/win.ini,{DIGEST},1\n",
        "line 2: relative path must not be absolute: 'C:/Windows/win.ini'",
    ),
    bad(
        "drive-relative",
        f"{GOOD_LINE}\nc:file.txt,{DIGEST},1\n",
        "line 2: relative path must not be absolute: 'c:file.txt'",
    ),
    bad(
        "long-path",
        f"{GOOD_LINE}\n{'/'.join(['d' * 200] * 25)},{DIGEST},1\n",
        "line 2: relative path is longer than 4096 bytes: 'ddd",
    ),
    bad(
        "long-segment",
        f"{GOOD_LINE}\n{'x' * 256}.txt,{DIGEST},1\n",
        "line 2: relative path has a segment longer than 255 bytes",
    ),
    bad("long-line", f"{GOOD_LINE}\n{'x/' * 6000}x,{DIGEST},1\n", "line 2: longer than 8192 bytes"),
    bad(
        "duplicate-line",
        f"{GOOD_LINE}\na.txt,{DIGEST},1\n{GOOD_LINE}\n",
        "line 3: relative path 'good.txt' is listed twice (also on line 1)",
    ),
    bad(
        "duplicate-path-other-digest",
        f"{GOOD_LINE}\n\n# comment\ngood.txt,{DIGEST},1\n",
        f"line 4: relative path 'good.txt' is listed twice with different sha256"
        f" (line 1: {GOOD_SHA}, line 4: {DIGEST})",
    ),
    bad(
        "html",
        "<!DOCTYPE html>\n<html><body><h1>Welcome</h1></body></html>\n",
        "line 1: this is an HTML page, not a PULP_MANIFEST",
    ),
    bad(
        "html-late",
        "\n\n  <HTML lang='en'>\n<head><title>404</title></head>\n",
        "line 3: this is an HTML page, not a PULP_MANIFEST",
    ),
]


@pytest.mark.parametrize(("manifest", "problem"), BAD_MANIFESTS)
def test_bad_manifest_is_refused_and_nothing_is_written(db, storage, manifest, problem):
    async def scenario():
        async with RemoteServer(dict(GOOD), manifest_override=manifest) as server:
            with pytest.raises(ManifestError) as info:
                await sync(server.manifest_url, db, storage, mirror=True)
            return info.value, server.manifest_url, server.file_requests()

    error, url, file_requests = asyncio.run(scenario())
    message = str(error)
    assert message.startswith(f"bad manifest {url}: line {error.line}: ")
    assert problem in message
    assert isinstance(error, ValueError)
    assert row_counts(db) == dict.fromkeys(
        ("artifact", "content", "file_content", "content_artifact", "remote_artifact"), 0
    )
    assert (latest(db).number, latest(db).content_count) == (0, 0)
    assert file_requests == 0
    assert stored_files(storage) == []


def test_bad_manifest_leaves_the_previous_version_alone(db, storage):
    files = some_files(8)

    async def scenario():
        async with RemoteServer(dict(files)) as server:
            await sync(server.manifest_url, db, storage)
            server.files["new.txt"] = b"new\n"
            server.manifest_override = server.manifest() + b"../../etc/shadow," + DIGEST.encode() + b",1\n"
            counts = row_counts(db)
            with pytest.raises(ManifestError, match=r": line 10: relative path has a '\.\.' segment"):
                await sync(server.manifest_url, db, storage, mirror=True)
            return counts, server.requests["new.txt"]

    counts, new_requests = asyncio.run(scenario())
    assert new_requests == 0
    assert row_counts(db) == counts
    assert latest(db).number == 1 and version_files(db, storage) == expected(files)


def test_unsupported_scheme_and_missing_manifest(db, storage):
    async def scenario():
        with pytest.raises(ManifestError, match=r"unsupported manifest URL 'ftp://example\.com/PULP_MANIFEST'"):
            await sync("ftp://example.com/PULP_MANIFEST", db, storage)
        async with RemoteServer(dict(GOOD)) as server:
            with pytest.raises(DownloadError, match="HTTP 404"):
                await sync(server.base_url + "nowhere/PULP_MANIFEST", db, storage)

    asyncio.run(scenario())
    assert latest(db).number == 0 and row_counts(db)["content"] == 0


# -- the parser on its own -----------------------------------------------------------------------


def test_lines_split_on_the_last_two_commas():
    digest = "AB" * 32
    assert parse_manifest_line(f"a,b, c.txt,{digest},0012\r\n".encode(), 7) == ManifestEntry(
        7, "a,b, c.txt", digest.lower(), 12
    )
    assert parse_manifest_line(f"\ufeffbom.txt,{DIGEST},1\n".encode(), 1) == ManifestEntry(1, "bom.txt", DIGEST, 1)
    assert parse_manifest_line(f"#not,{DIGEST},1\n".encode(), 3) is None
    assert parse_manifest_line(b"   \r\n", 4) is None
    assert parse_manifest_line(f"last line without newline,{DIGEST},0".encode(), 5) == ManifestEntry(
        5, "last line without newline", DIGEST, 0
    )


def test_duplicates_are_found_far_apart_and_the_first_repeat_is_named(tmp_path):
    lines = [f"p/{i}.txt,{DIGEST},1" for i in range(3000)]
    lines.insert(2500, lines[7])
    lines.append(lines[5].replace(DIGEST, "0" * 64))
    manifest = tmp_path / "m"
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ManifestError, match=r"^line 2501: relative path 'p/7\.txt' is listed twice \(also on line 8\)$"
    ):
        check_manifest(manifest, tmp_path / "scratch")
    manifest.write_text("\n".join(lines[:2500] + lines[2501:]) + "\n")
    with pytest.raises(ManifestError, match=r"^line 3001: relative path 'p/5\.txt' is listed twice with different"):
        check_manifest(manifest, tmp_path / "scratch2")
    manifest.write_text("\n".join(lines[:2500] + lines[2501:-1]) + "\n")
    assert check_manifest(manifest, tmp_path / "scratch3") == 3000


def test_a_file_named_like_a_folder_names_the_first_line_that_put_something_in_that_folder(tmp_path):
    # Both first lines put something in "a/b" (and "a"); the clash names the earlier of them.
    manifest = tmp_path / "m"
    manifest.write_text(f"a/b/x,{DIGEST},1\na/b/y,{DIGEST},1\na/b,{DIGEST},1\n")
    problem = r"^line 3: relative path 'a/b' \(line 3\) is also the folder of 'a/b/x' \(line 1\)$"
    with pytest.raises(ManifestError, match=problem):
        check_manifest(manifest, tmp_path / "scratch")


def test_checking_a_long_manifest_holds_neither_it_nor_its_paths_in_memory(tmp_path):
    manifest = tmp_path / "m"
    with open(manifest, "w") as out:
        for i in range(100_000):
            out.write(f"some/rather/long/directory/name/number-{i:06d}/file-{i}.bin,{DIGEST},{i}\n")
    size = os.path.getsize(manifest)
    assert size > 10_000_000
    tracemalloc.start()
    try:
        assert check_manifest(manifest, tmp_path / "scratch") == 100_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size / 10, f"checking a {size}-byte manifest peaked at {peak} bytes of Python memory"


def test_an_endless_line_is_refused_after_reading_a_bounded_prefix(tmp_path):
    manifest = tmp_path / "m"
    manifest.write_bytes(GOOD_LINE.encode() + b"\n" + b"x" * 20_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(ManifestError, match=r"^line 2: longer than 8192 bytes$"):
            check_manifest(manifest, tmp_path / "scratch")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


safe_segment = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\"), min_size=1, max_size=20
).filter(lambda s: s not in (".", "..") and not s.startswith("#"))


@given(st.lists(safe_segment, min_size=1, max_size=4).map("/".join))
def test_any_safe_path_round_trips_through_the_manifest_and_its_url(path):
    if len(path) >= 2 and path[1] == ":" and path[0].isascii() and path[0].isalpha():
        return  # looks like a Windows drive: refused on purpose
    entry = parse_manifest_line(f"{path},{DIGEST},3\n".encode(), 2)
    assert entry == ManifestEntry(2, path, DIGEST, 3)
    url = file_url("http://host:8080/repo/PULP_MANIFEST", path)
    parts = urlsplit(url)
    assert (parts.netloc, parts.query, parts.fragment) == ("host:8080", "", "")
    assert unquote(parts.path) == "/repo/" + path


def test_a_folder_page_suggests_its_manifest(db, storage):
    """Pointed at a folder, the server answers with an HTML listing: the error names the manifest URL to use."""
    listing = {"pool/": HTML_PAGE, "pool": HTML_PAGE}

    async def scenario() -> tuple[str, list[str]]:
        async with RemoteServer(listing, faults={"PULP_MANIFEST": Fault(html=True)}) as server:
            messages = []
            for url in (server.base_url + "pool/", server.base_url + "pool", server.manifest_url):
                with pytest.raises(ManifestError) as info:
                    await sync(url, db, storage)
                messages.append(str(info.value))
            return server.base_url, messages

    base, (slash, no_slash, manifest) = asyncio.run(scenario())
    hint = f"(for a folder, sync its manifest: {base}pool/PULP_MANIFEST)"
    assert slash.endswith(f"this is an HTML page, not a PULP_MANIFEST {hint}")
    assert no_slash.endswith(hint)
    assert manifest.endswith("this is an HTML page, not a PULP_MANIFEST")  # already its manifest: no hint


@settings(max_examples=300, deadline=None)
@given(path=st.text(alphabet=st.sampled_from("aZ09_.~/-% ?#é\u00a0+,;=@:&"), min_size=1, max_size=12))
def test_a_files_url_is_its_path_quoted_whether_or_not_quoting_changes_it(path):
    manifest = "http://example.test/repo/PULP_MANIFEST"
    assert file_url(manifest, path) == "http://example.test/repo/" + quote(path, safe="/")
