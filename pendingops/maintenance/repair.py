"""Repair what ``verify`` found: fetch bad or missing artifacts again, quarantine what cannot be.

Each bad artifact is fetched again from the RemoteArtifacts that list it (the same fetcher as a
sync: streamed, hashed, checked, renamed into place, so the stored file is whole or untouched).
When no source gives the recorded bytes, the artifact is quarantined: a damaged file moves to
``quarantine/`` beside the artifacts, its content units become "not downloaded" (as after an
on-demand sync) and its row goes, so no export ships it and the next sync fetches it again (that
sync runs whole, even if its remote is unchanged).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, delete, select, update

from pendingops.db import private_destinations
from pendingops.db.database import Database
from pendingops.db.locks import StoreLock
from pendingops.db.schema import OTHER_DIGESTS, Artifact, ContentArtifact, Remote, RemoteArtifact
from pendingops.db.sync_runs import forget_indexes
from pendingops.download.fetcher import DownloadError, Fetcher
from pendingops.maintenance.verify import StorageProblem, check_artifact
from pendingops.pending import PendingArtifact, describe_error
from pendingops.remote import RemoteConfig
from pendingops.storage.base import ArtifactStorage

_artifact = Artifact.__table__
_ca = ContentArtifact.__table__
_ra = RemoteArtifact.__table__
_remote = Remote.__table__
QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class Quarantined:
    """An artifact no source could give back: why, and where its damaged bytes went (None if it had none)."""

    sha256: str
    reason: str
    moved_to: str | None


@dataclass(slots=True)
class RepairReport:
    repaired: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Source:
    remote_url: str
    url: str
    relative_path: str


def repair_artifacts(
    db: Database, storage: ArtifactStorage, problems: Sequence[StorageProblem], *, retries: int = 3
) -> RepairReport:
    """Fetch each problem's artifact again, or quarantine it; holds the store lock (no sync runs meanwhile)."""
    report = RepairReport()

    async def repair_all() -> None:
        for sha256 in dict.fromkeys(problem.sha256 for problem in problems):
            await _repair_one(db, storage, sha256, retries, report)

    with StoreLock(db, shared=False):
        asyncio.run(repair_all())
    return report


async def _repair_one(db: Database, storage: ArtifactStorage, sha256: str, retries: int, report: RepairReport) -> None:
    row = db.transact(_artifact_row, sha256)
    if row is None:
        return  # removed meanwhile (orphan cleanup)
    if await asyncio.to_thread(check_artifact, storage, row.location, sha256, row.size) is None:
        report.repaired.append(sha256)  # fixed meanwhile
        return
    # A folder where the file belongs (local storage) is moved aside first, so the fetch can put it back.
    aside = await asyncio.to_thread(_move_folder_aside, storage, row.location, sha256)
    if storage.local_path(row.location) is None:  # an object store keeps an object it is asked to store
        await asyncio.to_thread(storage.delete, row.location)  # again: the damaged one goes first
    reasons = []
    allow_private = db.transact(private_destinations.for_artifact, row.id)
    for source in db.transact(_sources, row.id):
        digests = {name: row._mapping[name] for name in OTHER_DIGESTS if row._mapping[name]}
        wanted = PendingArtifact(source.url, source.relative_path, size=row.size, sha256=sha256, digests=digests)
        remote = RemoteConfig(url=source.remote_url, retries=retries, allow_private_destinations=allow_private)
        try:
            async with Fetcher(remote, storage, connections=1) as fetcher:
                await fetcher.fetch(wanted)
        except DownloadError as exc:
            reasons.append(describe_error(exc))
            continue
        report.repaired.append(sha256)
        return
    moved_to = aside or await asyncio.to_thread(_move_to_quarantine, storage, row.location, sha256)
    db.transact(_unlink, row.id)
    reason = "; ".join(reasons) if reasons else "no remote lists it"
    report.quarantined.append(Quarantined(sha256, reason, moved_to))


def _artifact_row(conn: Connection, sha256: str) -> object:
    columns = [_artifact.c.id, _artifact.c.size, _artifact.c.location, *(_artifact.c[n] for n in OTHER_DIGESTS)]
    return conn.execute(select(*columns).where(_artifact.c.sha256 == sha256)).first()


def _sources(conn: Connection, artifact_id: int) -> list[_Source]:
    joined = _ca.join(_ra, _ra.c.content_artifact_id == _ca.c.id).join(_remote, _remote.c.id == _ra.c.remote_id)
    query = (
        select(_remote.c.url, _ra.c.url, _ca.c.relative_path)
        .select_from(joined)
        .where(_ca.c.artifact_id == artifact_id)
        .order_by(_ra.c.id)
    )
    seen: dict[str, _Source] = {}
    for remote_url, url, relative_path in conn.execute(query):
        seen.setdefault(url, _Source(remote_url, url, relative_path))
    return list(seen.values())


def _move_to_quarantine(storage: ArtifactStorage, location: str, sha256: str) -> str | None:
    """Move a damaged file out of the artifacts (kept for inspection); None when there was no file."""
    path, root = storage.local_path(location), getattr(storage, "root", None)
    if path is None or root is None or not path.is_file():
        storage.delete(location)
        return None
    return _quarantine(root, path, sha256)


def _move_folder_aside(storage: ArtifactStorage, location: str, sha256: str) -> str | None:
    """Quarantine a folder found where the artifact's file belongs; None when there is none."""
    path, root = storage.local_path(location), getattr(storage, "root", None)
    if path is None or root is None or path.is_symlink() or not path.is_dir():
        return None
    return _quarantine(root, path, sha256)


def _quarantine(root: Path, path: Path, sha256: str) -> str:
    folder = root / QUARANTINE
    folder.mkdir(exist_ok=True)
    target = folder / sha256
    if target.exists() or target.is_symlink():  # quarantined before: keep both
        target = folder / f"{sha256}.{uuid.uuid4().hex[:8]}"
    path.replace(target)
    return str(target)


def _unlink(conn: Connection, artifact_id: int) -> None:
    """Its content units become "not downloaded" (their RemoteArtifacts stay), and the row goes; the
    next syncs run whole, so they fetch it again."""
    conn.execute(update(_ca).where(_ca.c.artifact_id == artifact_id).values(artifact_id=None))
    conn.execute(delete(_artifact).where(_artifact.c.id == artifact_id))
    forget_indexes(conn)
