"""A version's units listed by content type and natural key, a page at a time."""

from __future__ import annotations

import hashlib

import pytest

from pendingops.maintenance import by_key
from pendingops.maintenance.by_key import iter_version_content_by_key
from tests.conftest import sync_served
from tests.remote_server import RemoteServer

FILES = {f"dir-{i % 3}/file-{(i * 7) % 20:02d}.txt": f"bytes {i}".encode() for i in range(20)}


@pytest.mark.parametrize("page", [1, 3, 1000])
def test_units_come_sorted_by_natural_key_across_pages(db, storage, monkeypatch, page) -> None:
    sync_served(db, storage, RemoteServer(dict(FILES)), None, FILES)
    monkeypatch.setattr(by_key, "_PAGE", page)
    listed = [(u.natural_key["relative_path"], u.natural_key["sha256"]) for u in iter_version_content_by_key(db, "r")]
    assert listed == sorted((p, hashlib.sha256(d).hexdigest()) for p, d in FILES.items())
