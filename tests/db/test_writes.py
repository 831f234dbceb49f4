"""Batched writes and lookups: atomic, idempotent, linked, and within the bound-variable limit."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pendingops import PendingContent, RemoteConfig
from pendingops.db.lookups import query_existing_artifacts, query_existing_content
from pendingops.db.schema import Artifact, Content, ContentArtifact, RemoteArtifact
from pendingops.db.versions import ensure_remote, ensure_repository
from pendingops.db.writes import save_units
from pendingops.plugins.file import FileContent
from tests.conftest import TIGHT_LIMIT, StrictContent, assert_no_duplicate_rows, count_rows, file_units

URL = "http://remote.invalid/PULP_MANIFEST"


def _files(n: int, tag: str = "") -> dict[str, bytes]:
    return {f"f{i:05}": f"{tag}bytes {i}".encode() for i in range(n)}


def _downloaded(units: list[PendingContent]) -> list[PendingContent]:
    """Mark every artifact as if download() had stored it."""
    for unit in units:
        for artifact in unit.artifacts:
            artifact.stored_sha256, artifact.stored_size = artifact.sha256, artifact.size
            artifact.stored_digests = {"md5": hashlib.md5(artifact.url.encode()).hexdigest()}
    return units


def _remote(db, url: str = URL) -> int:
    return db.transact(ensure_remote, RemoteConfig(url=url))


def _rows(db, table, *columns):
    with db.engine.connect() as conn:
        return conn.execute(select(*(table.__table__.c[c] for c in columns))).all()


def test_saved_units_have_all_their_rows_linked(db, storage):
    remote_id = _remote(db)
    units = _downloaded(file_units(URL, _files(12)))
    db.transact(save_units, db, storage, units, remote_id)

    assert count_rows(db, Artifact) == count_rows(db, Content) == count_rows(db, FileContent) == 12
    assert count_rows(db, ContentArtifact) == count_rows(db, RemoteArtifact) == 12
    links = {
        (content_id, path): artifact_id
        for content_id, path, artifact_id in _rows(db, ContentArtifact, "content_id", "relative_path", "artifact_id")
    }
    artifacts = {row.id: row for row in _rows(db, Artifact, "id", "sha256", "size", "location", "md5")}
    for unit in units:
        (artifact,) = unit.artifacts
        row = artifacts[links[(unit.content_id, artifact.relative_path)]]
        assert (row.sha256, row.size) == (artifact.sha256, artifact.size)
        assert row.location == storage.location_for(row.sha256)
        assert row.md5 == artifact.stored_digests["md5"]
    urls = {url for (url,) in _rows(db, RemoteArtifact, "url")}
    assert urls == {unit.artifacts[0].url for unit in units}


def test_saving_the_same_units_again_creates_nothing(db, storage):
    remote_id = _remote(db)
    first = _downloaded(file_units(URL, _files(10)))
    db.transact(save_units, db, storage, first, remote_id)
    # New PendingContent objects that know nothing: everything is found by the inserts themselves.
    second = _downloaded(file_units(URL, _files(10)))
    db.transact(save_units, db, storage, second, remote_id)
    assert [u.content_id for u in first] == [u.content_id for u in second]
    assert [u.artifacts[0].content_artifact_id for u in first] == [u.artifacts[0].content_artifact_id for u in second]
    assert count_rows(db, Artifact) == count_rows(db, Content) == count_rows(db, ContentArtifact) == 10
    assert count_rows(db, RemoteArtifact) == 10
    assert_no_duplicate_rows(db)


def test_duplicate_units_in_one_batch_are_saved_once(db, storage):
    remote_id = _remote(db)
    files = {"a": b"same", "b": b"same", "c": b"other"}
    units = _downloaded(file_units(URL, files) + file_units(URL, files))
    db.transact(save_units, db, storage, units, remote_id)
    assert count_rows(db, Content) == 3 and count_rows(db, Artifact) == 2
    assert count_rows(db, ContentArtifact) == count_rows(db, RemoteArtifact) == 3
    assert units[0].content_id == units[3].content_id


def test_a_batch_is_saved_whole_or_not_at_all(db, storage):
    remote_id = _remote(db)
    good = _downloaded(file_units(URL, _files(5)))
    strict = [PendingContent(StrictContent, {"name": f"s{i}", "value": 1 - i}) for i in range(3)]  # s2 is refused
    with pytest.raises(IntegrityError):
        db.transact(save_units, db, storage, [*good, *strict], remote_id)
    for table in (Artifact, Content, FileContent, StrictContent, ContentArtifact, RemoteArtifact):
        assert count_rows(db, table) == 0, table


def test_remote_artifacts_follow_the_remote(db, storage):
    remote_id = _remote(db)
    db.transact(save_units, db, storage, _downloaded(file_units(URL, _files(3))), remote_id)
    moved = "http://mirror.invalid/PULP_MANIFEST"
    units = file_units(moved, _files(3))
    db.transact(query_existing_content, db, units, db.transact(ensure_repository, "r"), remote_id)
    assert all(u.content_id and not u.artifacts[0].remote_artifact_current for u in units)
    db.transact(save_units, db, storage, units, remote_id)
    assert {url for (url,) in _rows(db, RemoteArtifact, "url")} == {u.artifacts[0].url for u in units}
    assert all(url.startswith("http://mirror.invalid/") for (url,) in _rows(db, RemoteArtifact, "url"))
    other = _remote(db, "http://second.invalid/PULP_MANIFEST")
    db.transact(save_units, db, storage, file_units("http://second.invalid/PULP_MANIFEST", _files(3)), other)
    assert count_rows(db, RemoteArtifact) == 6 and count_rows(db, Content) == 3


def test_on_demand_content_is_linked_once_its_artifact_is_stored(db, storage):
    remote_id = _remote(db)
    db.transact(save_units, db, storage, file_units(URL, _files(4)), remote_id)  # on demand: no artifact
    assert count_rows(db, Artifact) == 0
    assert {a for (a,) in _rows(db, ContentArtifact, "artifact_id")} == {None}

    units = file_units(URL, _files(4))
    db.transact(query_existing_content, db, units, db.transact(ensure_repository, "r"), remote_id)
    assert all(u.content_id and u.artifacts[0].content_artifact_id for u in units)
    assert all(u.artifacts[0].remote_artifact_current for u in units)
    db.transact(save_units, db, storage, _downloaded(units), remote_id)
    assert count_rows(db, Artifact) == 4 and count_rows(db, ContentArtifact) == 4
    assert None not in {a for (a,) in _rows(db, ContentArtifact, "artifact_id")}


def test_lookups_find_content_artifacts_and_membership(db, storage):
    remote_id = _remote(db)
    saved = _downloaded(file_units(URL, _files(6)))
    db.transact(save_units, db, storage, saved, remote_id)
    repo_id = db.transact(ensure_repository, "r")

    units = file_units(URL, _files(8))
    db.transact(query_existing_content, db, units, repo_id, remote_id)
    known = [u for u in units if u.content_id is not None]
    assert [u.content_id for u in known] == [u.content_id for u in saved]
    assert all(u.artifacts[0].artifact_linked and u.artifacts[0].remote_artifact_current for u in known)
    assert not any(u.in_base for u in units)

    fresh = file_units(URL, {"copy": _files(1)["f00000"], "new": b"never seen"})
    assert db.transact(query_existing_artifacts, db, fresh) == 1
    assert fresh[0].artifacts[0].artifact_id == saved[0].artifacts[0].artifact_id
    assert fresh[1].artifacts[0].artifact_id is None


def test_writes_and_lookups_respect_the_bound_variable_limit(tight_sqlite, storage):
    db = tight_sqlite
    n = 3 * TIGHT_LIMIT
    remote_id = _remote(db)
    units = _downloaded(file_units(URL, _files(n)))
    db.transact(save_units, db, storage, units, remote_id)
    assert count_rows(db, Artifact) == count_rows(db, Content) == count_rows(db, RemoteArtifact) == n

    again = _downloaded(file_units(URL, _files(n)))
    db.transact(query_existing_content, db, again, db.transact(ensure_repository, "r"), remote_id)
    assert all(u.content_id for u in again)
    fresh = file_units(URL, _files(n, tag="x") | _files(n))
    assert db.transact(query_existing_artifacts, db, fresh) == n
    moved = file_units("http://mirror.invalid/PULP_MANIFEST", _files(n))
    db.transact(query_existing_content, db, moved, db.transact(ensure_repository, "r"), remote_id)
    db.transact(save_units, db, storage, moved, remote_id)
    assert count_rows(db, RemoteArtifact) == n
