"""The anchors of an HTML page fed in chunks: the same however the page is cut, what HTML says is
not markup skipped, and a construct left open costs neither memory nor a rescan."""

from __future__ import annotations

import itertools
import tracemalloc
from html import escape

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendingops.plugins.python.html_anchors import MAX_TAG, MAX_TEXT, AnchorReader

Anchor = tuple[dict[str, str | None], str]


def read(chunks: list[str]) -> list[Anchor]:
    reader = AnchorReader()
    found = [anchor for chunk in chunks for anchor in reader.feed(chunk)]
    return found + list(reader.close())


def cut(page: str, cuts: list[int]) -> list[str]:
    bounds = sorted({0, len(page), *(c for c in cuts if c < len(page))})
    return [page[start:end] for start, end in itertools.pairwise(bounds)]


_TEXT = st.text(alphabet="abc>&;='\" /!-\n", max_size=12)  # no "<": a stray one is in NOT_MARKUP
_VALUE = st.text(alphabet="xyz<>&;=' /-\"", max_size=10)
_NAME = st.sampled_from(["href", "data-yanked", "data-requires-python", "title", "x"])


@st.composite
def anchors(draw: st.DrawFn) -> tuple[str, Anchor]:
    """An ``<a>`` element written in one of the ways HTML allows, and what it says."""
    names = draw(st.lists(_NAME, unique=True, max_size=3))
    attributes: dict[str, str | None] = {}
    parts = []
    for name in names:
        value = draw(st.none() | _VALUE)
        attributes[name] = value
        if value is None:
            parts.append(name)
        elif value and not set(value) & set(" \"'=<>`&\t\n/"):
            parts.append(f"{name.upper() if draw(st.booleans()) else name}={value}")
        elif '"' in value:
            parts.append(f"{name} = '{escape(value, quote=False).replace(chr(39), '&#39;')}'")
        else:
            parts.append(f'{name}="{escape(value)}"')
    text = draw(st.text(alphabet="abc &<>", max_size=10))
    element = f"<{'A' if draw(st.booleans()) else 'a'} {' '.join(parts)}>{escape(text)}</a >"
    return element, (attributes, text.strip())


#: what is not markup: none of the anchors inside may count
NOT_MARKUP = [
    "<!-- <a href='c'>c</a> -- -->",
    "<![CDATA[ <a href=c>c</a> ]] ]]>",
    "<script type='x'>if (a<b) document.write('<a href=\"s\">s</a>') </scrip </script >",
    "<STYLE>a > b { content: '</a>' }</style>",
    "<!DOCTYPE html>",
    "<?xml version='1.0'?>",
    '<p class="x>y">',
    "a < b &amp; c > d",
    "</div data-x='>'>",
    "<br/>",
]


@given(
    pieces=st.lists(anchors() | st.sampled_from(NOT_MARKUP).map(lambda s: (s, None)) | _TEXT.map(lambda s: (s, None))),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
)
def test_the_anchors_are_read_however_the_page_is_cut(pieces: list[tuple[str, Anchor | None]], cuts: list[int]) -> None:
    separated = [(piece if expected is None else " " + piece + " ", expected) for piece, expected in pieces]
    # a text piece may leave a "<" or "&" that joins the next piece; a space keeps each as written
    page = "<html><body>" + " ".join(piece for piece, _ in separated) + "</body></html>"
    expected = [anchor for _, anchor in pieces if anchor is not None]
    assert read([page]) == expected
    assert read(cut(page, cuts)) == expected
    assert read(list(page)) == expected


def test_attributes_and_text_as_html_reads_them() -> None:
    page = (
        '<a HREF="../f/x-1.0.tar.gz#sha256=ab" data-requires-python="&gt;=3.8" data-yanked>x &amp; y</a>'
        "<a href=u/>u</a>"  # the "/" belongs to the unquoted value: not a self-closing tag
        "<a href='q>r' href=second title = \"it's\">q &lt; r<b>bold</b></a>"
        '<a href="self-closing"/>'
        "<a href=never-closed>lost"
    )
    assert read([page]) == [
        ({"href": "../f/x-1.0.tar.gz#sha256=ab", "data-requires-python": ">=3.8", "data-yanked": None}, "x & y"),
        ({"href": "u/"}, "u"),
        ({"href": "q>r", "title": "it's"}, "q < rbold"),
        ({"href": "self-closing"}, ""),
    ]


def test_anchor_text_is_cut_at_the_limit() -> None:
    [(_, text)] = read(["<a href=x>", "&amp;" * (2 * MAX_TEXT), "</a>"])
    assert text == "&" * MAX_TEXT


LEFT_OPEN = {
    "comment": ("<!--", "<a href=x>x</a> -- "),
    "start tag": ("<a ", "href=x data-x='y' "),
    "quoted value": ('<a href="', "x>y "),
    "unquoted value": ("<a href=", "x"),
    "CDATA": ("<![CDATA[", "] ]> "),
    "script": ("<script>", "</scrip "),
    "style": ("<style>", "</styl "),
    "declaration": ("<!DOCTYPE ", "x "),
    "instruction": ("<?xml ", "x "),
    "end tag": ("</a ", "x='y' "),
    "anchor text": ("<a href=x>", "text "),
}


@pytest.mark.parametrize("kind", LEFT_OPEN)
def test_a_construct_left_open_is_neither_kept_nor_scanned_again(kind: str) -> None:
    """4 MiB of one open construct, fed 1 KiB at a time: a reader that kept it (to scan it again from
    its start with each chunk, which made such a page quadratic) would hold the 4 MiB."""
    opening, filler = LEFT_OPEN[kind]
    page = '<a href="before/">before</a>' + opening + filler * (4 * 1024 * 1024 // len(filler))
    reader = AnchorReader()
    found = []
    tracemalloc.start()
    try:
        for start in range(0, len(page), 1024):
            found += reader.feed(page[start : start + 1024])
        found += reader.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == [({"href": "before/"}, "before")]
    assert peak < MAX_TAG + 64 * 1024, peak


def test_a_tag_longer_than_the_limit_is_dropped_and_what_follows_is_read() -> None:
    huge = '<a href="dropped/" data-x="' + "x" * MAX_TAG + '">dropped</a>'
    page = f"<a href=a/>a</a>{huge}<a href=b/>b</a>"
    for chunks in ([page], cut(page, list(range(0, len(page), 1000)))):
        assert read(chunks) == [({"href": "a/"}, "a"), ({"href": "b/"}, "b")]
    just_fits = '<a href="kept/" data-x="' + "x" * (MAX_TAG - 40) + '">kept</a>'
    assert [text for _, text in read([just_fits])] == ["kept"]
