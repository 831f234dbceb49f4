"""Fixtures of the deb plugin's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.deb.archive import Signer


@pytest.fixture(scope="session")
def signer() -> Iterator[Signer]:
    """The upstream archive's throwaway signing key (its gpg-agent is stopped at the end)."""
    made = Signer()
    yield made
    made.close()
