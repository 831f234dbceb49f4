"""Two syncs of the same content at the same time, each with its own engine: both succeed, nothing twice."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from pendingops import LocalStorage, RemoteConfig, declarative_version, open_database
from pendingops.db.schema import Artifact, Content, ContentArtifact, RemoteArtifact
from tests.conftest import (
    POSTGRES_URL,
    assert_no_duplicate_rows,
    count_rows,
    file_set,
    file_unit,
    race,
    version_content,
)

FILES = {f"d{i % 7}/f{i:04}": f"shared file {i}".encode() * (1 + i % 5) for i in range(240)}


@pytest.fixture
def remote_dir(tmp_path):
    """A file:// remote: the files on disk, so both syncs really download (read and hash) them."""
    root = tmp_path / "remote"
    for path, data in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def _units(root):
    manifest = (root / "PULP_MANIFEST").as_uri()
    return [file_unit(manifest, path, data) for path, data in FILES.items()]


ROUNDS = 2


def test_two_syncs_of_the_same_content_at_once(db, db_kind, tmp_path, remote_dir):
    url = f"sqlite:///{tmp_path / 'pendingops.db'}" if db_kind == "sqlite" else POSTGRES_URL
    storage_root = tmp_path / "shared-storage"
    remote = RemoteConfig(url=(remote_dir / "PULP_MANIFEST").as_uri(), download_concurrency=4)

    def sync(repository: str):
        database = open_database(url, create=False)  # its own engine and its own database thread
        try:
            units = _units(remote_dir)
            return asyncio.run(
                declarative_version(
                    units,
                    db=database,
                    storage=LocalStorage(storage_root),
                    remote=remote,
                    repository=repository,
                    mirror=True,
                    batch_size=8,
                    batch_wait=0.005,
                )
            )
        finally:
            database.close()

    for round_ in range(ROUNDS):
        outcome = race(lambda r=round_: sync(f"a{r}"), lambda r=round_: sync(f"b{r}"))
        for result in outcome:
            assert not isinstance(result, Exception), repr(result)
            assert result.added == len(FILES)
        assert version_content(db, f"a{round_}") == version_content(db, f"b{round_}") == file_set(FILES)

    distinct = len({hashlib.sha256(d).hexdigest() for d in FILES.values()})
    assert count_rows(db, Artifact) == distinct
    assert count_rows(db, Content) == count_rows(db, ContentArtifact) == count_rows(db, RemoteArtifact) == len(FILES)
    assert_no_duplicate_rows(db)
    storage = LocalStorage(storage_root)
    for data in FILES.values():
        location = storage.location_for(hashlib.sha256(data).hexdigest())
        assert storage.local_path(location).read_bytes() == data
    assert list((storage_root / "tmp").iterdir()) == []
