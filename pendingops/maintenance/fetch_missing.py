"""Fetching the files of a version that on-demand (or streamed) syncs recorded but never downloaded.

Each is fetched as a sync fetches (streamed to a temporary file, checked, renamed into storage)
from its first remote that succeeds, then linked to its content in one transaction. ``export``
does this before it plans, unless told not to.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from pendingops.db import private_destinations
from pendingops.db.database import Database
from pendingops.db.locks import StoreLock
from pendingops.db.remote_sources import Source, sources
from pendingops.db.schema import ContentArtifact, RepositoryContent
from pendingops.db.versions import find_repository, membership_filter, version_info
from pendingops.db.writes import link_fetched_artifact
from pendingops.download.fetcher import DownloadError, Fetcher
from pendingops.remote import RemoteConfig
from pendingops.storage.base import ArtifactStorage

_ca = ContentArtifact.__table__
_rc = RepositoryContent.__table__


@dataclass(slots=True)
class FetchReport:
    fetched: int = 0
    #: (relative path, why) of each file no remote could deliver
    failed: list[tuple[str, str]] = field(default_factory=list)


def unfetched_files(conn: Connection, repository: str, number: int | None = None) -> list[tuple[int, str]]:
    """(content artifact id, relative path) of each file of a complete version not stored yet."""
    repo_id = find_repository(conn, repository)
    number = version_info(conn, repository, number).number
    query = (
        select(_ca.c.id, _ca.c.relative_path)
        .join(_rc, _rc.c.content_id == _ca.c.content_id)
        .where(membership_filter(repo_id, number), _ca.c.artifact_id.is_(None))
        .order_by(_ca.c.relative_path, _ca.c.id)
    )
    return [(row.id, row.relative_path) for row in conn.execute(query)]


def fetch_missing(
    db: Database,
    storage: ArtifactStorage,
    repository: str,
    number: int | None = None,
    *,
    settings: Callable[[Source], RemoteConfig] = Source.settings,
) -> FetchReport:
    """Fetch and store every file of the version not stored yet; report what could not be.

    Private addresses are reached only if the repository allows them (see ``private_destinations``).
    """
    with db.engine.connect() as conn:
        missing = unfetched_files(conn, repository, number)
        allow_private = private_destinations.for_repository(conn, find_repository(conn, repository))
    if not missing:
        return FetchReport()
    if allow_private:
        settings = _allowing_private(settings)
    with StoreLock(db, shared=True):  # as a sync: an orphan cleanup waits, and never removes what is stored here
        return asyncio.run(_fetch_all(db, storage, missing, settings))


def _allowing_private(settings: Callable[[Source], RemoteConfig]) -> Callable[[Source], RemoteConfig]:
    return lambda source: dataclasses.replace(settings(source), allow_private_destinations=True)


async def _fetch_all(
    db: Database, storage: ArtifactStorage, missing: list[tuple[int, str]], settings: Callable[[Source], RemoteConfig]
) -> FetchReport:
    report = FetchReport()
    for ca_id, relative_path in missing:
        with db.engine.connect() as conn:
            candidates = sources(conn, ca_id)
        problems = []
        for source in candidates:
            artifact = source.pending(relative_path)
            if artifact.sha256 is None:
                problems.append(f"{source.url}: no digest recorded to check it against")
                continue
            try:
                async with Fetcher(settings(source), storage) as fetcher:
                    await fetcher.fetch(artifact)
            except DownloadError as exc:
                problems.append(str(exc))
                continue
            digests = {"sha256": artifact.stored_sha256 or "", **artifact.stored_digests}
            location = storage.location_for(digests["sha256"])
            size = artifact.stored_size or 0
            await db.run(link_fetched_artifact, db, ca_id, location, size, digests)
            report.fetched += 1
            break
        else:
            report.failed.append((relative_path, "; ".join(problems) or "no remote recorded"))
    return report
