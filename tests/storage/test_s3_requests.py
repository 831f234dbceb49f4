"""Requests per stored file on S3, counted by the proxy in front of moto: at most 2 (a HEAD, a PUT)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pendingops import Database, RemoteConfig, sync_remote
from pendingops.plugins.file import FilePlugin
from pendingops.storage.s3 import S3Storage
from tests.cutting_proxy import FaultProxy
from tests.remote_server import RemoteServer
from tests.s3_server import client

pytestmark = pytest.mark.s3
FILES = {f"f-{i:03d}.txt": f"small file {i}\n".encode() * 40 for i in range(60)}
#: a sync's own requests besides its files': owner record, listing, stale temporary keys and uploads
_PER_SYNC = 10


def test_a_small_file_is_stored_in_one_put_to_its_address_with_at_most_two_requests(
    db: Database, faulty_s3: FaultProxy, s3_url: str, s3_endpoint: str, tmp_path: Path
) -> None:
    storage = S3Storage(s3_url, tmp_path / "staging")
    try:
        before = faulty_s3.requests

        async def scenario() -> None:
            async with RemoteServer(dict(FILES)) as server:
                remote = RemoteConfig(url=server.manifest_url)
                await sync_remote(FilePlugin(), remote, db=db, storage=storage, repository="r")

        asyncio.run(scenario())
        used = faulty_s3.requests - before
        assert used <= 2 * len(FILES) + _PER_SYNC, f"{used} requests for {len(FILES)} files"
        keys = [item["Key"] for item in client(s3_endpoint).list_objects_v2(Bucket=storage.bucket)["Contents"]]
        assert not [key for key in keys if "/tmp/" in key]  # no temporary key was ever needed
        assert len([key for key in keys if "/artifacts/" in key]) == len(FILES)
    finally:
        storage.close()
