"""The python plugin's source reads project pages as they stream in: a large PEP 691 page costs
memory for the links it keeps, not for its own size."""

from __future__ import annotations

import asyncio
import tracemalloc

from pendingops import LocalStorage, RemoteConfig
from pendingops.download.fetcher import Fetcher
from pendingops.plugins.python.plugin import _project_page
from tests.remote_server import Fault, RemoteServer

MIB = 1024 * 1024


def test_a_json_project_page_is_read_an_entry_at_a_time(tmp_path) -> None:
    """4 MiB of entries that are not files: read whole (joined, decoded, then parsed), the page took
    about 30 MiB at peak; read an entry at a time, less than the page's own size."""
    head, tail = b'{"meta": {"api-version": "1.1"}, "name": "big", "files": [', b"{}]}"
    entry = b'{"_": "' + b"x" * 80 + b'"}, '
    page = head + entry * (4 * MIB // len(entry)) + tail
    files = {"simple/big/": page, "simple/warm-up/": head + tail}
    # written 64 KiB at a time, each write waiting for the client: the server holds no copy of the page
    faults = {"simple/big/": Fault(drip=1e-6, drip_size=64 * 1024)}

    async def scenario() -> tuple[int, int]:
        async with RemoteServer(files, faults=faults) as origin:
            remote = RemoteConfig(url=origin.base_url + "simple/")
            async with Fetcher(remote, LocalStorage(tmp_path)) as fetcher:
                await _project_page(remote.url, "warm-up", fetcher)  # the session's own first allocations
                tracemalloc.start()
                try:
                    links = await _project_page(remote.url, "big", fetcher)
                    return len(links), tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()

    links, peak = asyncio.run(scenario())
    assert links == 0
    assert peak < len(page), peak  # about 1.6 MiB: the chunk being read, and the HTTP client's buffer
