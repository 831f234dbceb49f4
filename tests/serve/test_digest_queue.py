"""DigestQueue: chunks hashed and written in order off the event loop, progress reported as it goes."""

from __future__ import annotations

import asyncio
import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendingops.serve.digest_queue import DigestQueue


@settings(max_examples=50, deadline=None)
@given(chunks=st.lists(st.binary(max_size=5000), max_size=30), ahead=st.integers(1, 4))
def test_chunks_are_hashed_and_written_in_order(chunks: list[bytes], ahead: int) -> None:
    async def scenario() -> None:
        hashers = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
        out = io.BytesIO()
        reported: list[int] = []
        queue = DigestQueue(hashers, out, reported.append, ahead=ahead)
        try:
            for chunk in chunks:
                await queue.put(chunk)
            await queue.finish()
        finally:
            await queue.close()
        whole = b"".join(chunks)
        assert out.getvalue() == whole
        assert hashers["sha256"].hexdigest() == hashlib.sha256(whole).hexdigest()
        assert hashers["md5"].hexdigest() == hashlib.md5(whole).hexdigest()
        assert reported == sorted(reported) and reported[-1:] == ([len(whole)] if chunks else [])

    asyncio.run(scenario())


def test_what_is_written_is_reported_without_waiting_for_the_next_chunk() -> None:
    """A stalled stream's followers still get every byte already in the file."""

    async def scenario() -> None:
        progress = asyncio.Event()
        reported: list[int] = []

        def written(n: int) -> None:
            reported.append(n)
            progress.set()

        queue = DigestQueue({"sha256": hashlib.sha256()}, io.BytesIO(), written)
        try:
            await queue.put(b"first")
            await progress.wait()  # no second put, no finish
            assert reported == [5]
        finally:
            await queue.close()

    asyncio.run(scenario())


class _FullDisk(io.BytesIO):
    def write(self, data: bytes, /) -> int:  # type: ignore[override]
        raise OSError(28, "No space left on device")


def test_a_failed_write_is_raised_to_the_reader() -> None:
    async def scenario() -> None:
        reported: list[int] = []
        queue = DigestQueue({"sha256": hashlib.sha256()}, _FullDisk(), reported.append, ahead=1)
        try:
            with pytest.raises(OSError, match="No space"):
                for _ in range(3):
                    await queue.put(b"x")
                await queue.finish()
        finally:
            await queue.close()
        assert reported == []

    asyncio.run(scenario())
