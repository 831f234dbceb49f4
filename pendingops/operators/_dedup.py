"""dedup: find already stored Content (by natural key) and Artifacts (by digest), in batches."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Connection

from pendingops.db import lookups
from pendingops.operators._stage import Operator, batch_stage
from pendingops.pending import PendingArtifact, PendingContent
from pendingops.run.current import Sync
from pendingops.storage.base import missing_locations

logger = logging.getLogger("pendingops")


def _key_known_and_unsaved(ctx: Sync, unit: PendingContent) -> bool:
    return unit.content_id is None and unit.natural_key() is not None


def _artifact_unknown(ctx: Sync, unit: PendingContent) -> bool:
    return any(a.artifact_id is None and a.sha256 for a in unit.artifacts)


def _lookup(
    conn: Connection, ctx: Sync, units: list[PendingContent], content: bool, artifacts: bool
) -> dict[int, str] | None:
    """Link what is stored; return the locations of the linked artifacts' files, to be checked in storage.

    None under on_demand: nothing is downloaded now, a missing file is fetched later.
    """
    if content:
        keyed = [u for u in units if _key_known_and_unsaved(ctx, u)]
        if keyed:
            lookups.query_existing_content(conn, ctx.db, keyed, ctx.repository_id, ctx.remote_id)
    if artifacts:
        unlinked = [u for u in units if not u.failed and _artifact_unknown(ctx, u)]
        if unlinked:
            lookups.query_existing_artifacts(conn, ctx.db, unlinked)
    if ctx.remote.policy != "immediate":
        return None
    return lookups.artifact_locations(conn, ctx.db, {a.artifact_id for a in _linked(units)})


def _check_storage(ctx: Sync, units: list[PendingContent], locations: dict[int, str]) -> None:
    """One batched look at storage: linked files that are missing, and leftovers of unlinked artifacts.

    A file found for an artifact no row knows (left by an interrupted run) is only a candidate: the
    download step hashes it before adopting it. Nothing is looked at file by file on the loop, and
    nothing in a database transaction (a remote storage answers over the network). Linked artifacts
    whose file is gone are downloaded again.
    """
    unknown = [a for u in units if not u.failed for a in u.artifacts if a.sha256 and not a.is_stored]
    wanted = {a.sha256: ctx.storage.location_for(a.sha256) for a in unknown if a.sha256}
    if not locations and not wanted:
        return
    missing = missing_locations(ctx.storage, {*locations.values(), *wanted.values()})
    for artifact in unknown:
        assert artifact.sha256 is not None
        artifact.in_storage = wanted[artifact.sha256] not in missing
    if locations and not missing.isdisjoint(locations.values()):
        _unlink_missing_files(ctx, units, locations, missing)


def _linked(units: list[PendingContent]) -> list[PendingArtifact]:
    """Artifacts the lookups linked to a stored Artifact (not downloaded by this sync)."""
    return [
        a for u in units if not u.failed for a in u.artifacts if a.artifact_id is not None and a.stored_sha256 is None
    ]


def _unlink_missing_files(ctx: Sync, units: list[PendingContent], locations: dict[int, str], missing: set[str]) -> None:
    """Artifacts whose stored file is gone are downloaded again: a missing file is never "present"."""
    gone = {artifact_id for artifact_id, location in locations.items() if location in missing}
    for artifact in _linked(units):
        if artifact.artifact_id in gone:
            artifact.artifact_id = None
            artifact.in_storage = False
    ctx.missing_files += len(gone)
    logger.warning("%d stored file(s) missing from storage: fetching them again", len(gone))


def _count_present(ctx: Sync, units: list[PendingContent]) -> None:
    present = sum(1 for u in units if u.in_base)
    if present:
        ctx.progress.add("present", present)


def _lookup_stage(name: str, content: bool, artifacts: bool) -> Operator:
    def wants(ctx: Sync, unit: PendingContent) -> bool:
        return (content and _key_known_and_unsaved(ctx, unit)) or (artifacts and _artifact_unknown(ctx, unit))

    async def work(ctx: Sync, units: list[PendingContent]) -> None:
        unlinked = [u for u in units if u.content_id is None]
        locations = await ctx.transact(_lookup, ctx, units, content, artifacts, units=units, what=name)
        if locations is not None:
            await asyncio.to_thread(_check_storage, ctx, units, locations)
        if content:
            _count_present(ctx, units)
            linked = sum(1 for u in unlinked if u.content_id is not None and not u.in_base and not u.failed)
            if linked:
                ctx.progress.add("linked", linked)

    return batch_stage(wants, work, name=name)


def dedup() -> Operator:
    """Both lookups in one database round trip per batch (content first, then its artifacts)."""
    return _lookup_stage("dedup", content=True, artifacts=True)


def query_existing_content() -> Operator:
    """Link units whose natural key is already saved; units with an incomplete key pass through."""
    return _lookup_stage("query_existing_content", content=True, artifacts=False)


def query_existing_artifacts() -> Operator:
    """Link artifacts whose sha256 is already stored, so they are not downloaded again."""
    return _lookup_stage("query_existing_artifacts", content=False, artifacts=True)
