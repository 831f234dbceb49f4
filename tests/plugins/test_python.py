"""The python plugin: a static PEP 503 index synced, then served back as one, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import itertools
import json
from collections import Counter
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from pendingops import RemoteConfig, sync_remote
from pendingops.context import SyncFailed
from pendingops.db.schema import Repository, RepositoryContent
from pendingops.maintenance.export import export_version
from pendingops.maintenance.lifecycle import diff_versions
from pendingops.plugins.python import PythonContent, PythonPlugin
from pendingops.plugins.python.index_page import (
    FileLink,
    JsonRootPage,
    RootPage,
    normalize,
    project_links,
    project_links_json,
)
from pendingops.plugins.python.json_stream import MAX_ENTRY
from pendingops.plugins.python.plugin import PythonOptionError, PythonOptions, select_units
from pendingops.plugins.python.simple import JSON_TYPE, prefers_json
from tests.plugins.python_index import (
    NegotiatingIndex,
    StaticFolder,
    index_files,
    json_root,
    sample_projects,
    wheel,
)
from tests.remote_server import RemoteServer
from tests.serve.served import content_server

PIP_ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


async def sync_index(db, storage, files: dict[str, bytes], *, mirror: bool = False, **options: str) -> Any:
    async with RemoteServer(dict(files)) as origin:
        remote = RemoteConfig(url=origin.base_url + "simple/", options=options)
        result = await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py", mirror=mirror)
        return result, origin


def distributions(db) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {row.filename: row for row in conn.execute(select(PythonContent.__table__))}


def without_pep_700(link: FileLink) -> FileLink:
    """A link read from a JSON page as the HTML page gives it (no size, no upload time)."""
    return replace(link, size=None, upload_time=None)


async def get(session: aiohttp.ClientSession, url: str, accept: str | None = None) -> tuple[int, str, bytes]:
    headers = {"Accept": accept} if accept else {}
    async with session.get(url, headers=headers, allow_redirects=False) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


def test_names_are_normalised_as_pep_503_says() -> None:
    assert normalize("Foo_Bar") == normalize("foo.bar") == normalize("FOO--bar") == "foo-bar"


def test_options_are_checked() -> None:
    assert PythonOptions.parse({}) == PythonOptions()
    parsed = PythonOptions.parse({"projects": "Foo_Bar, baz,,foo-bar", "prereleases": "false", "latest": "2"})
    assert parsed == PythonOptions(("foo-bar", "baz"), False, 2)
    for bad in ({"platforms": "x"}, {"prereleases": "maybe"}, {"latest": "0"}, {"latest": "-1"}, {"projects": ".."}):
        with pytest.raises(PythonOptionError):
            PythonOptions.parse(bad)


def test_project_pages_in_html_and_json_give_the_same_links() -> None:
    html = (
        '<a href="../../f/a-1.0-py3-none-any.whl#sha256=' + "A" * 64 + '" data-requires-python="&gt;=3.8"'
        ' data-yanked="" data-core-metadata="sha256=' + "b" * 64 + '">a-1.0-py3-none-any.whl</a>'
        '<a href="a-1.0.tar.gz#md5=00">a-1.0.tar.gz</a>'
    )
    links = project_links(html, "http://h/simple/a/")
    assert [(x.filename, x.url, x.sha256, x.requires_python, x.yanked, x.core_metadata) for x in links] == [
        ("a-1.0-py3-none-any.whl", "http://h/f/a-1.0-py3-none-any.whl", "a" * 64, ">=3.8", "", "b" * 64),
        ("a-1.0.tar.gz", "http://h/simple/a/a-1.0.tar.gz", None, None, None, None),
    ]
    document = {
        "meta": {"api-version": "1.0"},
        "name": "a",
        "files": [
            {
                "filename": "a-1.0-py3-none-any.whl",
                "url": "../../f/a-1.0-py3-none-any.whl",
                "hashes": {"sha256": "a" * 64},
                "requires-python": ">=3.8",
                "yanked": True,
                "core-metadata": {"sha256": "b" * 64},
            }
        ],
    }
    assert project_links_json(json.dumps(document), "http://h/simple/a/") == links[:1]


def test_accept_header_negotiation() -> None:
    assert prefers_json(PIP_ACCEPT)
    assert prefers_json(JSON_TYPE)
    assert not prefers_json("")
    assert not prefers_json("text/html")
    assert not prefers_json(f"{JSON_TYPE}; q=0.5, text/html")


def test_sync_reads_the_index_and_serves_it_back(db, storage) -> None:
    projects = sample_projects()

    async def scenario() -> None:
        result, origin = await sync_index(db, storage, index_files(projects))
        assert origin.requests["simple/"] == 1
        assert result.version.number == 1
        rows = distributions(db)
        assert set(rows) == {d.filename for dists in projects.values() for d in dists}
        yanked = rows["alpha_pkg-2.5-py3-none-any.whl"]
        assert (yanked.name, yanked.version, yanked.yanked, yanked.yanked_reason) == (
            "alpha-pkg",
            "2.5",
            True,
            "broken build",
        )
        assert rows["alpha_pkg-3.0-py3-none-any.whl"].requires_python == ">=4"
        assert rows["alpha_pkg-2.0.tar.gz"].packagetype == "sdist"
        assert rows["beta-1.2rc1-py3-none-any.whl"].packagetype == "bdist_wheel"
        with_metadata = rows["alpha_pkg-2.0-py3-none-any.whl"]  # read from its PEP 658 metadata file
        assert (with_metadata.summary, with_metadata.requires_dist) == ("alpha-pkg for tests", ["beta>=1.0"])
        assert rows["alpha_pkg-1.0-py3-none-any.whl"].summary is None
        async with content_server(db, storage, plugins=[PythonPlugin()]) as server, aiohttp.ClientSession() as http:
            base = f"{server.base_url}py/latest/simple/"
            status, kind, body = await get(http, base)
            assert status == 200 and kind.startswith("text/html")
            assert all(f'href="{name}/"' in body.decode() for name in ("alpha-pkg", "beta", "gamma"))
            status, kind, body = await get(http, base, PIP_ACCEPT)
            assert kind == JSON_TYPE
            assert json.loads(body)["projects"] == [{"name": n} for n in ("alpha-pkg", "beta", "gamma")]
            status, _, page = await get(http, base + "Alpha_Pkg/")
            assert status == 200
            links = {link.filename: link for link in project_links(page.decode(), base + "alpha-pkg/")}
            assert set(links) == {d.filename for d in projects["Alpha_Pkg"]}
            assert links["alpha_pkg-2.5-py3-none-any.whl"].yanked == "broken build"
            assert links["alpha_pkg-3.0-py3-none-any.whl"].requires_python == ">=4"
            status, kind, body = await get(http, base + "alpha.pkg/", PIP_ACCEPT)
            assert (status, kind) == (200, JSON_TYPE)
            json_links = project_links_json(body.decode(), base + "alpha-pkg/")
            assert [without_pep_700(link) for link in json_links] == list(links.values())
            sizes = {dist.filename: len(dist.data) for dist in projects["Alpha_Pkg"]}
            assert {link.filename: link.size for link in json_links} == sizes
            for dist in projects["Alpha_Pkg"]:
                link = links[dist.filename]
                assert link.sha256 == dist.sha256 and link.url.startswith(f"{server.base_url}py/1/")
                status, _, data = await get(http, link.url)
                assert (status, data) == (200, dist.data)
                if dist.metadata is None:
                    assert link.core_metadata is None
                    assert (await get(http, link.url + ".metadata"))[0] == 404
                else:  # the metadata file is a second artifact of the unit, served next to its file
                    assert link.core_metadata == hashlib.sha256(dist.metadata).hexdigest()
                    assert await get(http, link.url + ".metadata") == (200, "application/octet-stream", dist.metadata)
            assert (await get(http, base + "nothing/"))[0] == 404
            assert (await get(http, base + "beta"))[0] == 301

    asyncio.run(scenario())


@pytest.mark.parametrize("policy", ["on_demand", "streamed"])
def test_metadata_files_are_read_without_downloading_the_distributions(db, storage, policy) -> None:
    projects = sample_projects()

    async def scenario() -> None:
        async with RemoteServer(index_files(projects)) as origin:
            remote = RemoteConfig(url=origin.base_url + "simple/", policy=policy, options={"projects": "beta"})
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py")
            assert origin.requests["files/beta-1.1-py3-none-any.whl.metadata"] == 1
            assert not [path for path in origin.requests if path.endswith(".whl")]
        row = distributions(db)["beta-1.1-py3-none-any.whl"]
        assert (row.summary, row.requires_dist) == ("beta for tests", [])

    asyncio.run(scenario())


def test_a_metadata_file_that_differs_from_its_digest_fails_its_unit(db, storage) -> None:
    projects = {"beta": [wheel("beta", "1.1", with_metadata=True)]}
    files = index_files(projects)
    files["files/beta-1.1-py3-none-any.whl.metadata"] += b"Summary: changed\n"

    async def scenario() -> None:
        for policy in ("immediate", "on_demand"):
            async with RemoteServer(dict(files)) as origin:
                remote = RemoteConfig(url=origin.base_url + "simple/", policy=policy)
                result = await sync_remote(
                    PythonPlugin(), remote, db=db, storage=storage, repository=policy, on_error="skip"
                )
            assert result.failed_count == 1, policy
            assert "beta-1.1-py3-none-any.whl" not in distributions(db)

    asyncio.run(scenario())


def test_options_choose_projects_and_versions(db, storage) -> None:
    async def scenario() -> None:
        files = index_files(sample_projects())
        _, origin = await sync_index(db, storage, files, projects="BETA", prereleases="false", latest="1")
        assert set(distributions(db)) == {"beta-1.1-py3-none-any.whl"}
        assert "simple/" not in origin.requests and origin.requests["simple/beta/"] == 1

    asyncio.run(scenario())


def test_mirror_resync_drops_and_adds_while_an_old_version_keeps_its_page(db, storage) -> None:
    projects = sample_projects()

    async def scenario() -> None:
        await sync_index(db, storage, index_files(projects), mirror=True)
        projects["beta"] = [projects["beta"][1], wheel("beta", "1.3")]
        await sync_index(db, storage, index_files(projects), mirror=True)
        async with content_server(db, storage, plugins=[PythonPlugin()]) as server, aiohttp.ClientSession() as http:
            pages = {}
            for version in ("latest", "1"):
                url = f"{server.base_url}py/{version}/simple/beta/"
                pages[version] = {x.filename for x in project_links((await get(http, url))[2].decode(), url)}
            assert pages["latest"] == {"beta-1.1-py3-none-any.whl", "beta-1.3-py3-none-any.whl"}
            assert pages["1"] == {
                "beta-1.0-py3-none-any.whl",
                "beta-1.1-py3-none-any.whl",
                "beta-1.2rc1-py3-none-any.whl",
            }

    asyncio.run(scenario())


def test_project_pages_are_fetched_a_few_at_a_time_as_the_root_streams(db, storage) -> None:
    projects = {f"p{i:03d}": [wheel(f"p{i:03d}", "1.0")] for i in range(40)}

    async def scenario() -> None:
        async with RemoteServer(index_files(projects)) as origin:
            origin.delay = 0.01
            remote = RemoteConfig(url=origin.base_url + "simple/")
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py")
            pages = [path for kind, path in origin.events if path.startswith("simple/p")]
        assert len(set(pages)) == 40
        assert 1 < origin.max_in_flight <= 8 + 10  # project pages (8 at once) and downloads (10)

    asyncio.run(scenario())


def test_another_sync_reads_what_the_server_publishes(db, storage) -> None:
    projects = sample_projects()

    async def scenario() -> None:
        await sync_index(db, storage, index_files(projects))
        async with content_server(db, storage, plugins=[PythonPlugin()]) as server:
            remote = RemoteConfig(url=f"{server.base_url}py/1/simple/")
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="copy", mirror=True)
        with db.engine.connect() as conn:
            query = (
                select(PythonContent.__table__.c.filename)
                .join(RepositoryContent.__table__, RepositoryContent.__table__.c.content_id == PythonContent.id)
                .join(Repository.__table__, Repository.__table__.c.id == RepositoryContent.__table__.c.repository_id)
                .where(Repository.__table__.c.name == "copy")
            )
            copied = set(conn.execute(query).scalars())
        assert copied == {d.filename for dists in projects.values() for d in dists}

    asyncio.run(scenario())


@given(
    names=st.lists(st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=20),
)
def test_a_root_page_gives_the_same_names_however_it_is_cut(names: list[str], cuts: list[int]) -> None:
    page = "<html><body>" + "".join(f'<a href="{normalize(n)}/" data-x="&amp;">{n}</a>\n' for n in names) + "</body>"
    data = page.encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    decoder = codecs.getincrementaldecoder("utf-8")()
    root = RootPage()
    found = []
    for start, end in itertools.pairwise(bounds):
        found += list(root.feed(decoder.decode(data[start:end])))
    found += list(root.close())
    assert found == names


def test_links_that_are_not_this_projects_wheels_or_sdists_are_skipped() -> None:
    digest = "c" * 64
    links = [
        FileLink("beta-1.0-py3-none-any.whl", "http://h/f/beta-1.0-py3-none-any.whl", digest, None, None, None),
        FileLink("beta-1.0-py3-none-any.whl", "http://h/g/beta-1.0-py3-none-any.whl", digest, None, None, None),
        FileLink("beta-2.0-py3-none-any.whl", "http://h/f/beta-2.0-py3-none-any.whl", None, None, None, None),
        FileLink("other-1.0-py3-none-any.whl", "http://h/f/other-1.0-py3-none-any.whl", digest, None, None, None),
        FileLink("../beta-1.1.tar.gz", "http://h/f/x", digest, None, None, None),
        FileLink("beta-1.1/../../x.tar.gz", "http://h/f/x", digest, None, None, None),
        FileLink("beta-1.2.exe", "http://h/f/beta-1.2.exe", digest, None, None, None),
        FileLink("beta-not.a.version.tar.gz", "http://h/f/x", digest, None, None, None),
        FileLink("beta-1.3.tar.gz", "http://h/f/beta-1.3.tar.gz", digest, None, None, "true"),
    ]
    units = select_units("Beta", links, PythonOptions())
    assert [(u.fields["filename"], [a.relative_path for a in u.artifacts]) for u in units] == [
        ("beta-1.0-py3-none-any.whl", ["packages/beta/beta-1.0-py3-none-any.whl"]),
        ("beta-1.3.tar.gz", ["packages/beta/beta-1.3.tar.gz"]),  # a metadata file without a digest is not taken
    ]


def yank(projects: dict[str, list[Any]], project: str, filename: str, reason: str | None) -> None:
    """Mark ``filename`` of ``project`` yanked with ``reason`` (None: not yanked) in ``projects``."""
    projects[project] = [replace(d, yanked=reason) if d.filename == filename else d for d in projects[project]]


async def served_links(server: Any, http: aiohttp.ClientSession, version: str, project: str) -> dict[str, FileLink]:
    """The links of a project page the server serves, in HTML, checked against its JSON twin."""
    url = f"{server.base_url}py/{version}/simple/{project}/"
    html = project_links((await get(http, url))[2].decode(), url)
    from_json = project_links_json((await get(http, url, PIP_ACCEPT))[2].decode(), url)
    assert [without_pep_700(link) for link in from_json] == html
    assert len({link.filename for link in html}) == len(html)  # each file name listed once
    return {link.filename: link for link in html}


BETA_11 = "beta-1.1-py3-none-any.whl"


def test_a_yank_after_the_first_sync_replaces_the_unit_and_downloads_nothing(db, storage) -> None:
    projects = sample_projects()

    async def scenario() -> None:
        await sync_index(db, storage, index_files(projects), mirror=True)
        units = len(distributions_all(db))
        for number, reason in ((2, "broken"), (3, None)):  # yanked, then un-yanked
            yank(projects, "beta", BETA_11, reason)
            result, origin = await sync_index(db, storage, index_files(projects), mirror=True)
            assert result.version.number == number
            assert not [path for path in origin.requests if path.startswith("files/")]  # same bytes: not fetched
            change = diff_versions(db, "py", number - 1, number)
            assert (change.added, change.removed) == ([], [])
            [(before, after)] = change.changed
            assert before.fields["filename"] == after.fields["filename"] == BETA_11
            assert (before.fields["yanked"], after.fields["yanked"]) == (reason is None, reason is not None)
            assert after.fields["yanked_reason"] == (reason or "")
            assert [f.sha256 for f in after.files] == [f.sha256 for f in before.files]
        assert len(distributions_all(db)) == units + 1  # the un-yank found the first unit again
        async with content_server(db, storage, plugins=[PythonPlugin()]) as server, aiohttp.ClientSession() as http:
            pages = {v: await served_links(server, http, v, "beta") for v in ("1", "2", "3")}
            assert [pages[v][BETA_11].yanked for v in ("1", "2", "3")] == [None, "broken", None]
            assert len(pages["2"]) == len(pages["1"])

    asyncio.run(scenario())


def test_an_additive_sync_after_a_yank_lists_the_file_once_as_yanked(db, storage) -> None:
    projects = sample_projects()

    async def scenario() -> None:
        await sync_index(db, storage, index_files(projects))
        yank(projects, "beta", BETA_11, "")
        _, origin = await sync_index(db, storage, index_files(projects))
        assert not [path for path in origin.requests if path.startswith("files/")]
        with db.engine.connect() as conn:
            rows = conn.execute(
                select(PythonContent.__table__.c.yanked, RepositoryContent.__table__.c.version_added)
                .join(RepositoryContent.__table__, RepositoryContent.__table__.c.content_id == PythonContent.id)
                .where(PythonContent.__table__.c.filename == BETA_11)
                .order_by(RepositoryContent.__table__.c.version_added)
            ).all()
        assert [tuple(r) for r in rows] == [(False, 1), (True, 2)]  # version 2 holds both units
        async with content_server(db, storage, plugins=[PythonPlugin()]) as server, aiohttp.ClientSession() as http:
            latest = await served_links(server, http, "latest", "beta")
            assert latest[BETA_11].yanked == ""  # yanked without a reason
            assert set(latest) == {d.filename for d in projects["beta"]}
            assert (await served_links(server, http, "1", "beta"))[BETA_11].yanked is None

    asyncio.run(scenario())


def distributions_all(db) -> list[Any]:
    with db.engine.connect() as conn:
        return conn.execute(select(PythonContent.__table__)).all()


def test_the_root_page_is_read_in_pep_691_json_when_the_index_offers_it(db, storage) -> None:
    projects = sample_projects()

    async def scenario() -> None:
        async with NegotiatingIndex(projects=projects) as origin:
            remote = RemoteConfig(url=origin.base_url + "simple/")
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py")
            assert origin.answered == Counter(
                {(f"simple/{normalize(n)}/" if n else "simple/", "json"): 1 for n in ("", *projects)}
            )
            assert origin.request_headers["simple/"][0]["Accept"].startswith(JSON_TYPE)
        assert set(distributions(db)) == {d.filename for dists in projects.values() for d in dists}
        async with RemoteServer(index_files(projects)) as html_only:  # an index that knows only HTML
            remote = RemoteConfig(url=html_only.base_url + "simple/")
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="html")
            assert html_only.requests["simple/"] == 1 and html_only.requests["simple/beta/"] == 1
            assert html_only.request_headers["simple/"][0]["Accept"].startswith(JSON_TYPE)

    asyncio.run(scenario())


@given(
    names=st.lists(st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=20),
    escaped=st.booleans(),
    numbers=st.booleans(),
)
def test_a_json_root_page_gives_the_same_names_however_it_is_cut(
    names: list[str], cuts: list[int], escaped: bool, numbers: bool
) -> None:
    document = json_root(names).decode()
    if escaped:  # on one line, each name after an escaped space (dropped, as around an anchor's text)
        document = json.dumps(json.loads(document), ensure_ascii=True).replace('"name": "', '"name": "\\u0020')
    if numbers:  # top-level numbers, which a cut after "1", "1." or "1e" must not end early
        document = document.replace("{", '{"x": 1.5e3, "y": -20, "z": 7 , ', 1)
    data = document.encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    decoder = codecs.getincrementaldecoder("utf-8")()
    root = JsonRootPage()
    found = []
    for start, end in itertools.pairwise(bounds):
        found += list(root.feed(decoder.decode(data[start:end])))
    found += list(root.close())
    assert found == names


def test_a_json_root_page_cut_in_two_anywhere_gives_the_same_names() -> None:
    document = '{"x": 1.5e3, "meta": {"api-version": "1.1"}, "y": -20, "projects": [{"name": "a"}, {"name": "b"}]}'
    for cut in range(len(document) + 1):
        root = JsonRootPage()
        found = [*root.feed(document[:cut]), *root.feed(document[cut:]), *root.close()]
        assert found == ["a", "b"], cut


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ('["a"]', "must be an object"),
        ('{"projects": 3}', "'projects' must be a list"),
        ('{"projects": [{"name": "a"}', "ends early"),
        ('{"projects": [{"name": "a"} {"name": "b"}]}', "expected ',' or ']'"),
        ('{"meta": ' + '"' + "x" * (MAX_ENTRY + 10) + '", "projects": []}', f"longer than {MAX_ENTRY}"),
        ('{"projects": []} []', "extra data"),
        ('{"meta": {"api-version": "1.0"}, "name": "beta", "files": []}', "must hold a 'projects' list"),
        ('{"projects": ["alpha", "beta"]}', "must be an object with a 'name'"),
        ('{"meta": {"api-version": "2.0"}, "projects": []}', "api-version '2.0'"),
    ],
)
def test_a_json_root_page_that_is_not_one_is_refused(document: str, problem: str) -> None:
    root = JsonRootPage()
    with pytest.raises(ValueError, match=problem):
        for start in range(0, len(document), 1000):
            list(root.feed(document[start : start + 1000]))
        list(root.close())


def test_a_bad_json_root_fails_the_sync_in_one_line(db, storage) -> None:
    async def scenario() -> None:
        async with RemoteServer({"simple/": b'{"meta": {}, "projects": {"a": 1}}'}) as origin:
            remote = RemoteConfig(url=origin.base_url + "simple/")
            with pytest.raises(SyncFailed, match=r"bad index root .*simple/: 'projects' must be a list$"):
                await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py")

    asyncio.run(scenario())


def test_an_export_is_a_static_simple_index_another_sync_mirrors(db, storage, tmp_path) -> None:
    projects = sample_projects()
    dest = tmp_path / "export"

    async def scenario() -> None:
        await sync_index(db, storage, index_files(projects))
        result = await asyncio.to_thread(export_version, db, storage, "py", dest, plugins=[PythonPlugin()])
        assert result.published == ["simple/ (8 pages)"]  # each page as index.html and index.v1_json
        root = (dest / "simple" / "index.html").read_text()
        assert [a for a in root.split('"') if a.endswith("/")] == ["alpha-pkg/", "beta/", "gamma/"]
        root_json = json.loads((dest / "simple" / "index.v1_json").read_text())
        assert root_json == {
            "meta": {"api-version": "1.1"},
            "projects": [{"name": "alpha-pkg"}, {"name": "beta"}, {"name": "gamma"}],
        }
        page = (dest / "simple" / "alpha-pkg" / "index.html").read_text()
        links = {link.filename: link for link in project_links(page, "http://h/simple/alpha-pkg/")}
        document = (dest / "simple" / "alpha-pkg" / "index.v1_json").read_text()
        json_links = project_links_json(document, "http://h/simple/alpha-pkg/")
        assert [without_pep_700(link) for link in json_links] == list(links.values())
        assert json.loads(document)["versions"] == ["1.0", "2.0", "2.5", "3.0"]
        assert set(links) == {d.filename for d in projects["Alpha_Pkg"]}
        for dist in projects["Alpha_Pkg"]:  # links relative to the page, to the exported files
            link = links[dist.filename]
            assert link.url == f"http://h/packages/alpha-pkg/{dist.filename}" and link.sha256 == dist.sha256
            assert next(j.size for j in json_links if j.filename == dist.filename) == len(dist.data)
            assert (dest / "packages" / "alpha-pkg" / dist.filename).read_bytes() == dist.data
            assert link.yanked == dist.yanked and link.requires_python == dist.requires_python
            assert link.core_metadata == (hashlib.sha256(dist.metadata).hexdigest() if dist.metadata else None)
        async with StaticFolder(dest) as static:  # any static web server makes it an index
            remote = RemoteConfig(url=static.base_url + "simple/")
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="copy", mirror=True)
            assert [static.requests[f"simple/{n}/"] for n in ("alpha-pkg", "beta", "gamma")] == [1, 1, 1]
        with db.engine.connect() as conn:
            copy_id = conn.execute(select(Repository.id).where(Repository.name == "copy")).scalar_one()
            query = (
                select(PythonContent.__table__.c.filename, PythonContent.__table__.c.summary)
                .join(RepositoryContent.__table__, RepositoryContent.__table__.c.content_id == PythonContent.id)
                .where(RepositoryContent.__table__.c.repository_id == copy_id)
            )
            copied = dict(conn.execute(query).all())
        assert set(copied) == {d.filename for dists in projects.values() for d in dists}
        assert copied["beta-1.1-py3-none-any.whl"] == "beta for tests"

    asyncio.run(scenario())


def test_an_export_lists_only_the_files_it_holds(db, storage, tmp_path) -> None:
    projects = sample_projects()

    async def scenario() -> None:
        async with RemoteServer(index_files(projects)) as origin:
            remote = RemoteConfig(url=origin.base_url + "simple/", policy="on_demand")
            await sync_remote(PythonPlugin(), remote, db=db, storage=storage, repository="py")
            async with content_server(db, storage, plugins=[PythonPlugin()]) as server, aiohttp.ClientSession() as h:
                link = (await served_links(server, h, "1", "beta"))[BETA_11]
                assert (await get(h, link.url))[0] == 200  # stored now; its metadata file is not
        dest = tmp_path / "export"
        result = await asyncio.to_thread(export_version, db, storage, "py", dest, plugins=[PythonPlugin()])
        assert (result.files, result.published) == (1, ["simple/ (4 pages)"])
        root = (dest / "simple" / "index.html").read_text()
        assert [a for a in root.split('"') if a.endswith("/")] == ["beta/"]
        page = (dest / "simple" / "beta" / "index.html").read_text()
        [listed] = project_links(page, "http://h/simple/beta/")
        assert (listed.filename, listed.core_metadata) == (BETA_11, None)
        [from_json] = project_links_json(
            (dest / "simple" / "beta" / "index.v1_json").read_text(), "http://h/simple/beta/"
        )
        assert without_pep_700(from_json) == listed

    asyncio.run(scenario())
