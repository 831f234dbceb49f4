"""Audit storage against the database: every artifact present, with the recorded size and digest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from pendingops.db.database import Database
from pendingops.db.schema import Artifact, ContentArtifact
from pendingops.storage.base import ArtifactStorage

_artifact = Artifact.__table__
_PAGE = 1000
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StorageProblem:
    sha256: str
    location: str
    problem: str


def verify_storage(db: Database, storage: ArtifactStorage) -> Iterator[StorageProblem | int]:
    """Yield a StorageProblem for each bad artifact, and the running count of checked ones per page."""
    last_id = 0
    checked = 0
    while True:
        with db.engine.connect() as conn:
            rows = conn.execute(
                select(_artifact.c.id, _artifact.c.sha256, _artifact.c.size, _artifact.c.location)
                .where(_artifact.c.id > last_id)
                .order_by(_artifact.c.id)
                .limit(_PAGE)
            ).all()
        if not rows:
            return
        for row in rows:
            problem = check_artifact(storage, row.location, row.sha256, row.size)
            if problem:
                yield StorageProblem(row.sha256, row.location, problem)
        checked += len(rows)
        last_id = rows[-1].id
        yield checked


def check_artifact(storage: ArtifactStorage, location: str, sha256: str, size: int) -> str | None:
    """Why the stored file is not the artifact recorded (missing, other size, other bytes), or None."""
    if not storage.exists(location):
        return "missing from storage"
    digest = hashlib.sha256()
    actual = 0
    with storage.open(location) as handle:
        while chunk := handle.read(_CHUNK):
            actual += len(chunk)
            digest.update(chunk)
    if actual != size:
        return f"size is {actual} bytes, recorded {size}"
    if digest.hexdigest() != sha256:
        return f"sha256 is {digest.hexdigest()}, recorded {sha256}"
    return None


def count_unfetched(db: Database) -> int:
    """Files recorded by on_demand or streamed syncs and not fetched yet (nothing is wrong with them)."""
    ca = ContentArtifact.__table__
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ca).where(ca.c.artifact_id.is_(None))).scalar_one()
