"""pendingops.loop: uvloop when installed, the standard loop when told so."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from pendingops import loop

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_is_used_when_asked_for(monkeypatch):
    monkeypatch.setenv(loop.LOOP_ENV, "asyncio")
    assert loop.loop_factory() is None
    assert loop.loop_name() == "asyncio"
    assert loop.run(_loop_type()).startswith("asyncio")


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed (pip install 'pendingops[fast]')")
def test_uvloop_is_used_when_installed(monkeypatch):
    monkeypatch.delenv(loop.LOOP_ENV, raising=False)
    assert loop.loop_name() == "uvloop"
    assert loop.run(_loop_type()).startswith("uvloop")


def test_run_returns_the_result_and_raises_the_error():
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise ValueError("boom")

    assert loop.run(answer()) == 42
    with pytest.raises(ValueError, match="boom"):
        loop.run(fail())
