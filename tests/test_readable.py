"""pendingops.readable: byte counts and durations as the command line and the served listings show them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendingops.readable import human_bytes, human_seconds


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536 * 1024, "1.5 MiB"), (5 * 1024**4, "5120.0 GiB")],
)
def test_byte_counts(count: int, shown: str) -> None:
    assert human_bytes(count) == shown


@given(st.integers(min_value=0, max_value=1024**3 - 1))
def test_below_a_gibibyte_the_number_shown_is_under_1024_of_its_unit(count: int) -> None:
    number, unit = human_bytes(count).split()
    assert unit in ("B", "KiB", "MiB") and float(number) < 1024.05


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.5, "0.50 s"), (12.34, "12.3 s"), (125, "2 min 05 s"), (3 * 3600 + 7 * 60, "3 h 07 min")]
)
def test_durations(seconds: float, shown: str) -> None:
    assert human_seconds(seconds) == shown


@given(st.floats(min_value=0, max_value=10**6, allow_nan=False))
def test_every_duration_reads_as_seconds_minutes_or_hours(seconds: float) -> None:
    assert re.fullmatch(r"\d+\.\d\d? s|\d+ min \d\d s|\d+ h \d\d min", human_seconds(seconds))
