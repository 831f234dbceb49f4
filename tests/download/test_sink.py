"""BodySink: every byte hashed and written in order; small bodies on the loop, large ones off it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendingops.download._sink import BATCH_BYTES, BodySink


class _RecordingFile(io.BytesIO):
    """An in-memory file that notes which threads wrote to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: set[int] = set()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writers.add(threading.get_ident())
        return super().write(data)


async def _pour(chunks: list[bytes]) -> tuple[_RecordingFile, str, int]:
    out = _RecordingFile()
    hasher = hashlib.sha256()
    sink = BodySink(out, [hasher])
    try:
        for chunk in chunks:
            await sink.add(chunk)
        await sink.finish()
    finally:
        await sink.settle()
    return out, hasher.hexdigest(), threading.get_ident()


@given(st.lists(st.integers(min_value=0, max_value=BATCH_BYTES // 2 + 1000), max_size=8), st.binary(min_size=1))
def test_every_byte_is_hashed_and_written_in_order(sizes, pattern):
    chunks = [(pattern * (size // len(pattern) + 1))[:size] for size in sizes]
    body = b"".join(chunks)
    out, digest, loop_thread = asyncio.run(_pour(chunks))
    assert out.getvalue() == body
    assert digest == hashlib.sha256(body).hexdigest()
    if len(body) < BATCH_BYTES:  # never filled a batch: no thread hop
        assert out.writers <= {loop_thread}
    else:
        assert out.writers and loop_thread not in out.writers


def test_a_failed_write_on_the_worker_thread_is_raised():
    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise OSError(28, "No space left on device")

    async def pour() -> None:
        sink = BodySink(FullDisk(), [hashlib.sha256()])
        try:
            for _ in range(3):
                await sink.add(b"x" * BATCH_BYTES)
            await sink.finish()
        finally:
            await sink.settle()

    with pytest.raises(OSError) as caught:
        asyncio.run(pour())
    assert caught.value.errno == 28


async def _follow(chunks: list[bytes], batch_bytes: int) -> tuple[io.BytesIO, str, str, list[int]]:
    hashers = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    out = io.BytesIO()
    reported: list[int] = []
    sink = BodySink(out, hashers.values(), written=reported.append, batch_bytes=batch_bytes)
    try:
        for chunk in chunks:
            await sink.add(chunk)
        await sink.finish()
    finally:
        await sink.settle()
    return out, hashers["sha256"].hexdigest(), hashers["md5"].hexdigest(), reported


@settings(max_examples=50, deadline=None)
@given(chunks=st.lists(st.binary(max_size=5000), max_size=30), batch_bytes=st.sampled_from([1, 4096, BATCH_BYTES]))
def test_followed_chunks_are_hashed_written_and_reported_in_order(chunks: list[bytes], batch_bytes: int) -> None:
    """With followers, every byte is hashed and written in order, and what is written is reported in
    growing steps up to the whole body, however the body is cut into batches."""
    out, sha256, md5, reported = asyncio.run(_follow(chunks, batch_bytes))
    whole = b"".join(chunks)
    assert out.getvalue() == whole
    assert (sha256, md5) == (hashlib.sha256(whole).hexdigest(), hashlib.md5(whole).hexdigest())
    assert reported == sorted(reported) and reported[-1] == len(whole)


@pytest.mark.parametrize("batch_bytes", [1, BATCH_BYTES])
def test_what_is_written_is_reported_without_waiting_for_the_next_chunk(batch_bytes: int) -> None:
    """A stalled stream's followers still get every byte already received, small body or large."""

    async def scenario() -> None:
        progress = asyncio.Event()
        reported: list[int] = []

        def written(n: int) -> None:
            reported.append(n)
            progress.set()

        sink = BodySink(io.BytesIO(), [hashlib.sha256()], written=written, batch_bytes=batch_bytes)
        try:
            await sink.add(b"first")
            await progress.wait()  # no second chunk, no finish
            assert reported == [5]
        finally:
            await sink.settle()

    asyncio.run(scenario())


@pytest.mark.parametrize("batch_bytes", [1, BATCH_BYTES])
def test_a_failed_write_of_a_followed_body_is_raised_to_the_reader(batch_bytes: int) -> None:
    class FullDisk(io.BytesIO):
        def write(self, data: bytes, /) -> int:  # type: ignore[override]
            raise OSError(28, "No space left on device")

    reported: list[int] = []

    async def pour() -> None:
        sink = BodySink(FullDisk(), [hashlib.sha256()], written=reported.append, batch_bytes=batch_bytes)
        try:
            for _ in range(3):
                await sink.add(b"x")
            await sink.finish()
        finally:
            await sink.settle()

    with pytest.raises(OSError, match="No space"):
        asyncio.run(pour())
    assert reported == []


def test_a_large_followed_streams_bytes_are_reported_without_waiting_for_the_next_chunk() -> None:
    """Past its first batch, a chunk that came while a batch was in flight, and one that came while
    none was, are both written and reported with no further chunk and no finish."""

    async def scenario() -> list[int]:
        reported: list[int] = []
        grew = asyncio.Event()

        def written(n: int) -> None:
            reported.append(n)
            grew.set()

        async def reported_up_to(n: int) -> None:
            async with asyncio.timeout(30):  # bounds a failing run only
                while not reported or reported[-1] < n:
                    grew.clear()
                    await grew.wait()

        sink = BodySink(io.BytesIO(), [hashlib.sha256()], written=written, batch_bytes=8)
        try:
            await sink.add(b"123456789")  # a full batch: to the thread
            await sink.add(b"ab")  # comes while that batch is in flight
            await reported_up_to(11)
            await sink.add(b"cd")  # comes while none is
            await reported_up_to(13)
        finally:
            await sink.settle()
        return reported

    reported = asyncio.run(scenario())
    assert reported == [9, 11, 13]
