"""Project pages read as they stream in: the same links however a page is cut, in HTML and in PEP 691
JSON, with PEP 700's size and upload time kept from JSON pages."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendingops.plugins.python.index_page import (
    FileLink,
    JsonProjectPage,
    PageReader,
    ProjectPage,
    project_links,
    project_links_json,
)
from tests.plugins.python_index import index_files, json_project, sample_projects

PAGE_URL = "http://index.test/simple/alpha-pkg/"


def read_in_pieces(page: PageReader[FileLink], text: str, cuts: list[int]) -> list[FileLink]:
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    found = [link for start, end in itertools.pairwise(bounds) for link in page.feed(text[start:end])]
    return found + list(page.close())


@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=40))
def test_a_project_page_gives_the_same_links_however_it_is_cut(cuts: list[int]) -> None:
    dists = sample_projects()["Alpha_Pkg"]
    html = index_files({"Alpha_Pkg": dists})["simple/alpha-pkg/"].decode()
    document = json_project("Alpha_Pkg", dists).decode()
    whole = project_links(html, PAGE_URL)
    assert [link.filename for link in whole] == [dist.filename for dist in dists]
    assert read_in_pieces(ProjectPage(PAGE_URL), html, cuts) == whole
    from_json = read_in_pieces(JsonProjectPage(PAGE_URL), document, cuts)
    assert from_json == project_links_json(document, PAGE_URL)
    assert [replace(link, size=None) for link in from_json] == whole
    assert [link.size for link in from_json] == [len(dist.data) for dist in dists]


def entry(**fields: object) -> dict[str, object]:
    return {"filename": "a-1.0.tar.gz", "url": "../../f/a-1.0.tar.gz", "hashes": {"sha256": "a" * 64}, **fields}


@pytest.mark.parametrize(
    ("fields", "size", "upload_time"),
    [
        ({"size": 1234, "upload-time": "2024-05-06T07:08:09.123456Z"}, 1234, "2024-05-06T07:08:09.123456Z"),
        ({"size": 0, "upload-time": "2024-05-06T07:08:09Z"}, 0, "2024-05-06T07:08:09Z"),
        ({}, None, None),
        ({"size": -1, "upload-time": "2024-05-06 07:08:09"}, None, None),
        ({"size": True, "upload-time": "2023-02-30T00:00:00Z"}, None, None),
        ({"size": "12", "upload-time": 1700000000}, None, None),
        ({"size": 2**63, "upload-time": "2024-05-06T07:08:09.1234567Z"}, None, None),
    ],
)
def test_pep_700_size_and_upload_time_are_kept_when_the_page_gives_them(
    fields: dict[str, object], size: int | None, upload_time: str | None
) -> None:
    document = json.dumps({"meta": {"api-version": "1.1"}, "name": "a", "files": [entry(**fields)]})
    [link] = project_links_json(document, "http://index.test/simple/a/")
    assert (link.size, link.upload_time) == (size, upload_time)
    assert replace(link, size=None, upload_time=None) == FileLink(
        "a-1.0.tar.gz", "http://index.test/f/a-1.0.tar.gz", "a" * 64, None, None, None
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ('{"meta": {"api-version": "1.0"}, "name": "a"}', "must hold a 'files' list"),
        ('{"files": {"a": 1}}', "must hold a 'files' list"),
        ('{"meta": {"api-version": "2.0"}, "files": []}', "api-version '2.0'"),
        ('{"files": [{"filename": "a-1.0.tar.gz"}', "ends early"),
    ],
)
def test_a_json_project_page_that_is_not_one_is_refused(document: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        project_links_json(document, PAGE_URL)
