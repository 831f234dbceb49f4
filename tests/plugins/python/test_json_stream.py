"""A JSON object read one top-level value (or list entry) at a time: the same values however it is
cut, each value decoded a bounded number of times, and nothing longer than the limit held."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendingops.plugins.python import json_stream
from pendingops.plugins.python.json_stream import MAX_ENTRY, JsonObjectStream

_SCALARS = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def expected(document: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    found = []
    for key, value in document.items():
        if isinstance(value, list):
            found += [(key, entry, True) for entry in value]
        else:
            found.append((key, value, False))
    return found


def read(chunks: list[str]) -> tuple[list[tuple[str, Any, bool]], set[str]]:
    stream = JsonObjectStream("the test page")
    found = [value for chunk in chunks for value in stream.feed(chunk)]
    return found + list(stream.close()), stream.lists


@given(
    document=st.dictionaries(st.text(max_size=6), _VALUES | st.lists(_VALUES, max_size=5), max_size=5),
    indent=st.sampled_from([None, 1]),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=20),
)
def test_values_are_the_same_however_the_object_is_cut(
    document: dict[str, Any], indent: int | None, cuts: list[int]
) -> None:
    text = json.dumps(document, indent=indent)
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    found, lists = read([text[start:end] for start, end in itertools.pairwise(bounds)])
    assert found == expected(document)
    assert lists == {key for key, value in document.items() if isinstance(value, list)}
    assert read(list(text))[0] == expected(document)


def test_a_value_fed_a_character_at_a_time_is_decoded_a_few_times_not_once_per_character(monkeypatch) -> None:
    calls = []

    class CountingDecoder(json.JSONDecoder):
        def raw_decode(self, s: str, idx: int = 0) -> tuple[Any, int]:
            calls.append(idx)
            return super().raw_decode(s, idx)

    monkeypatch.setattr(json_stream, "_DECODER", CountingDecoder())
    entry = {"filename": "x" * (MAX_ENTRY - 100)}
    text = json.dumps({"files": [entry, entry]})
    found, _ = read(list(text))
    assert found == [("files", entry, True), ("files", entry, True)]
    # two entries and a key, each tried again only once the text waiting for it has doubled
    assert len(calls) < 3 * 20, len(calls)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("[1]", "the test page must be an object"),
        ('{"files": [' + '"' + "x" * (MAX_ENTRY + 10) + '"]}', f"a value longer than {MAX_ENTRY} characters"),
        ('{"meta": ' + "[" * 100_000, "nested too deeply|longer than"),
        ('{"files": [1 2]}', "expected ',' or ']' after an entry of 'files'"),
        ('{"a": 1 "b": 2}', "expected ',' or '}' after a value"),
        ('{"a": 1', "the test page ends early"),
        ('{"a": 1} x', "extra data after the test page"),
    ],
)
def test_what_is_not_such_an_object_is_refused_in_one_line(document: str, problem: str) -> None:
    stream = JsonObjectStream("the test page")
    with pytest.raises(ValueError, match=problem):
        for start in range(0, len(document), 4096):
            list(stream.feed(document[start : start + 4096]))
        list(stream.close())
