"""deb822 stanzas: read as a bounded stream, written back as read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendingops.plugins.deb.stanza import StanzaError, format_stanza, read_stanzas

PACKAGES = (
    b"Package: hello\nVersion: 1.0\nDescription: greets\n the world\n .\n  politely\n\n"
    b"Package: tool\r\nVersion: 2:0.1~rc1\r\n\n\n"
    b"Package: last\nVersion: 3"
)


def test_stanzas_fields_continuations_and_text() -> None:
    first, second, third = read_stanzas([PACKAGES])
    assert first.number == 1 and first.fields == {
        "Package": "hello",
        "Version": "1.0",
        "Description": "greets\nthe world\n.\n politely",
    }
    assert first.text == "Package: hello\nVersion: 1.0\nDescription: greets\n the world\n .\n  politely\n"
    assert (second.number, second.fields) == (2, {"Package": "tool", "Version": "2:0.1~rc1"})
    assert second.text == "Package: tool\nVersion: 2:0.1~rc1\n"  # CRLF lines read as LF
    assert (third.number, third.fields) == (3, {"Package": "last", "Version": "3"})  # no final newline


def test_chunks_may_split_anywhere() -> None:
    whole = [(s.fields, s.text) for s in read_stanzas([PACKAGES])]
    for size in (1, 2, 3, 7, 64):
        chunks = [PACKAGES[i : i + size] for i in range(0, len(PACKAGES), size)]
        assert [(s.fields, s.text) for s in read_stanzas(chunks)] == whole


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"Package: a\nPackage: b\n", "field 'Package' given twice"),
        (b" continued\nPackage: a\n", "a continuation line before any field"),
        (b"Package a\n", "not a 'Field: value' line"),
        (b"-Package: a\n", "not a 'Field: value' line"),
        (b"Package: a\x00b\n", "a control character"),
        (b"Package: \xff\n", "not UTF-8"),
    ],
)
def test_malformed_stanzas_are_refused_naming_the_stanza(text: bytes, problem: str) -> None:
    with pytest.raises(StanzaError, match=problem) as caught:
        list(read_stanzas([b"Package: ok\n\n", text]))
    assert str(caught.value).startswith("stanza 2: ")


def test_a_stanza_over_the_limit_is_refused_before_more_of_it_is_read() -> None:
    read: list[int] = []

    def endless_line() -> object:
        for number in range(1000):
            read.append(number)
            yield b"x" * 1000  # one line that never ends

    with pytest.raises(StanzaError, match="stanza 1 is larger than 4096 bytes"):
        list(read_stanzas(endless_line(), max_bytes=4096))
    assert len(read) <= 5
    many_lines = b"".join(b"Field%d: value\n" % i for i in range(1000))
    with pytest.raises(StanzaError, match="larger than 4096 bytes"):
        list(read_stanzas([many_lines], max_bytes=4096))


_name = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True)
_text = st.text(
    st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF, exclude_categories=("Cs",)) | st.sampled_from(" \t.:-abc"),
    max_size=30,
)
_first = _text.map(lambda s: s.strip(" \t"))
_more = _text.filter(lambda s: s.strip() != "")
_value = st.tuples(_first, st.lists(_more, max_size=4)).map(lambda t: "\n".join([t[0], *t[1]]))


@given(st.lists(st.dictionaries(_name, _value, min_size=1, max_size=8), min_size=1, max_size=5))
def test_what_the_writer_writes_the_reader_reads_back(stanzas: list[dict[str, str]]) -> None:
    text = "\n".join(format_stanza(fields) for fields in stanzas).encode()
    read = list(read_stanzas([text]))
    assert [s.fields for s in read] == stanzas
    assert [s.text for s in read] == [format_stanza(fields) for fields in stanzas]


@pytest.mark.parametrize("value", [" padded", "a\n", "a\n \nb", "bell\x07"])
def test_the_writer_refuses_what_a_stanza_cannot_hold(value: str) -> None:
    with pytest.raises(ValueError, match="a value a stanza cannot hold"):
        format_stanza({"Field": value})
