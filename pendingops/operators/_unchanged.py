"""unchanged: a resync's units that the repository already holds as they are, settled in SQL.

Placed at the head of a pipeline, it compares each batch with what the repository holds now, in
one transaction (``pendingops.db.unchanged``), and passes on only the units that differ. The
unchanged ones finish there: in mirror mode they are declared in the new version in that same
transaction; in additive mode they are members already. Under the ``immediate`` policy
their stored files are first looked for in storage, in one batch, and a unit with a file
missing goes on through the pipeline, which fetches it again. Units with any number of artifacts
are compared, each artifact as strictly as the others.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Connection

from pendingops.db.schema import Content
from pendingops.db.unchanged import Row, find_unchanged, other_fields
from pendingops.operators._stage import Operator, batch_stage
from pendingops.pending import PendingContent
from pendingops.run.current import Sync
from pendingops.storage.base import missing_locations


def _wants(ctx: Sync, unit: PendingContent) -> bool:
    version = ctx.version
    artifacts = unit.artifacts
    if version is None or not version.base_count or unit.content_id is not None or not artifacts:
        return False
    # Other digests than sha256 are checked by the artifact lookup: such units take the whole path.
    if any(a.sha256 is None or a.digests or a.artifact_id is not None for a in artifacts):
        return False
    # two artifacts at one path: one ContentArtifact per path is held, so the whole path decides
    return len(artifacts) == 1 or len({a.relative_path for a in artifacts}) == len(artifacts)


def _rows(units: list[PendingContent]) -> dict[type[Content], list[Row]]:
    """The temp table's rows, by content type, one per artifact; a unit whose natural key is incomplete has none."""
    rows: dict[type[Content], list[Row]] = {}
    for index, unit in enumerate(units):
        kind = unit.content_type
        fields = unit.fields
        key = tuple(map(fields.get, kind.natural_key))
        if None in key:
            continue
        declared = tuple(0 if fields.get(name) is None else 1 for name in other_fields(kind))  # cached per type
        count = len(unit.artifacts)
        rows.setdefault(kind, []).extend(
            (index, count, *key, *declared, artifact.relative_path, artifact.url, artifact.sha256, artifact.size)
            for artifact in unit.artifacts
        )
    return rows


def _find(conn: Connection, ctx: Sync, rows: dict[type[Content], list[Row]]) -> list[tuple[int, int, str | None]]:
    declare_in = ctx.version if ctx.mirror else None
    stored = ctx.remote.policy == "immediate"
    found: list[tuple[int, int, str | None]] = []
    for kind, loaded in rows.items():
        found += find_unchanged(
            conn,
            ctx.db,
            kind,
            loaded,
            repository_id=ctx.repository_id,
            remote_id=ctx.remote_id,
            stored=stored,
            declare_in=declare_in,
        )
    return found


async def _work(ctx: Sync, units: list[PendingContent]) -> list[PendingContent]:
    rows = _rows(units)
    if not rows:
        return units
    found = await ctx.transact(_find, ctx, rows, what="finding unchanged units")
    if not found:
        return units
    locations = {location for _, _, location in found if location is not None}
    missing = await asyncio.to_thread(missing_locations, ctx.storage, locations) if locations else set()
    # one row per artifact: a unit is settled only when none of its stored files is missing
    held = {index: content_id for index, content_id, _ in found}
    lacking = {index for index, _, location in found if location in missing}
    unchanged = 0
    for index, content_id in held.items():
        if index in lacking:
            continue  # declared already in mirror mode, as dedup would; the pipeline fetches the file again
        unit = units[index]
        unit.content_id, unit.in_base, unit.associated = content_id, True, True
        unchanged += 1
    ctx.progress.add("present", unchanged)
    return [unit for unit in units if not unit.associated]


def unchanged() -> Operator:
    """Finish, in SQL, the units the repository already holds unchanged; pass on the others.

    Only when the repository has content (a resync). Put it first: a unit is compared as its
    source declares it (natural key, and each artifact's relative path, url, sha256 and size).
    """
    return batch_stage(_wants, _work, name="unchanged")
