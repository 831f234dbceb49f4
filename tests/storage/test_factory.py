"""open_storage: a path or file:// URL is local storage, s3:// is S3, anything else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from pendingops.storage.base import StorageError
from pendingops.storage.factory import open_storage
from pendingops.storage.local import LocalStorage
from pendingops.storage.s3 import S3Storage


def test_a_path_and_a_file_url_are_local_storage(tmp_path: Path) -> None:
    by_path = open_storage(tmp_path / "a", temp_dir=tmp_path / "t")
    by_url = open_storage(f"file://{tmp_path}/b%20c", temp_dir=tmp_path / "t")
    assert isinstance(by_path, LocalStorage) and by_path.root == tmp_path / "a"
    assert isinstance(by_url, LocalStorage) and by_url.root == tmp_path / "b c"


@pytest.mark.s3
def test_an_s3_url_is_s3_storage_staging_in_temp_dir(s3_url: str, tmp_path: Path) -> None:
    storage = open_storage(s3_url, temp_dir=tmp_path / "staging")
    try:
        assert isinstance(storage, S3Storage) and storage.new_temp_path().parent == tmp_path / "staging"
    finally:
        storage.close()


@pytest.mark.parametrize("spec", ["ftp://host/x", "file://otherhost/x", "gs://bucket/x"])
def test_other_urls_are_refused(spec: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        open_storage(spec, temp_dir=tmp_path)
