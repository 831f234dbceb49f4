"""pendingops.loop: the standard loop by default, uvloop when asked for."""

from __future__ import annotations

import asyncio
import gc
import importlib.util

import pytest

from pendingops import loop

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.parametrize("setting", [None, "", "asyncio", "other"])
def test_the_standard_loop_unless_uvloop_is_asked_for(monkeypatch, setting):
    if setting is None:
        monkeypatch.delenv(loop.LOOP_ENV, raising=False)
    else:
        monkeypatch.setenv(loop.LOOP_ENV, setting)
    assert loop.loop_factory() is None
    assert loop.loop_name() == "asyncio"
    assert loop.run(_loop_type()).startswith("asyncio")


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed (pip install 'pendingops[fast]')")
def test_uvloop_when_asked_for(monkeypatch):
    monkeypatch.setenv(loop.LOOP_ENV, "uvloop")
    assert loop.loop_name() == "uvloop"
    assert loop.run(_loop_type()).startswith("uvloop")


@pytest.mark.skipif(HAS_UVLOOP, reason="needs an environment without uvloop")
def test_asking_for_uvloop_without_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv(loop.LOOP_ENV, "uvloop")
    main = _loop_type()
    with pytest.raises(loop.LoopUnavailable, match=r"pendingops\[fast\]"):
        loop.run(main)
    assert main.cr_frame is None, "the coroutine is closed, not left to warn that it was never awaited"


def test_run_returns_the_result_and_raises_the_error(monkeypatch):
    monkeypatch.delenv(loop.LOOP_ENV, raising=False)

    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise ValueError("boom")

    assert loop.run(answer()) == 42
    with pytest.raises(ValueError, match="boom"):
        loop.run(fail())


async def _thresholds() -> tuple[int, ...]:
    return gc.get_threshold()


async def _fail_with_thresholds() -> None:
    raise RuntimeError(gc.get_threshold())


def test_run_collects_young_objects_less_often_and_puts_the_thresholds_back():
    """Inside ``run`` the collector waits for 10,000 new objects (a sync makes a few per unit); the
    process's own thresholds are back afterwards, after an error too, and higher ones are kept."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert loop.run(_thresholds()) == loop.SYNC_GC_THRESHOLDS
        assert gc.get_threshold() == (700, 10, 10)
        with pytest.raises(RuntimeError) as raised:
            loop.run(_fail_with_thresholds())
        assert raised.value.args[0] == loop.SYNC_GC_THRESHOLDS
        assert gc.get_threshold() == (700, 10, 10)

        gc.set_threshold(50_000, 5, 20)  # a process that asked for fewer collections keeps them
        assert loop.run(_thresholds()) == (50_000, 10, 20)
        assert gc.get_threshold() == (50_000, 5, 20)

        gc.set_threshold(0)  # automatic collection turned off stays off
        assert loop.run(_thresholds())[0] == 0
    finally:
        gc.set_threshold(*before)
