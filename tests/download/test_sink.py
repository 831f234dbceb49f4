"""BodySink: every byte hashed and written in order; small bodies on the loop, large ones off it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading

import pytest
from hypothesis import given
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
