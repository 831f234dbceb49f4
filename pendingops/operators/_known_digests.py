"""query_known_digests: learn an artifact's digest from what this remote served before.

Some remotes publish no digests (a Chef universe lists only download URLs). Once an artifact was
downloaded from a URL, the remote's RemoteArtifact row for that URL leads to the stored Artifact,
so a later sync (of any repository, from the same remote) can know the digest without fetching
the file again, and ``query_existing_artifacts`` can then link the stored artifact.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, select

from pendingops.db.schema import Artifact, ContentArtifact, RemoteArtifact
from pendingops.operators._stage import Operator, batch_stage
from pendingops.pending import PendingArtifact, PendingContent
from pendingops.run.current import Sync

_ra = RemoteArtifact.__table__
_ca = ContentArtifact.__table__
_artifact = Artifact.__table__


def _digest_unknown(artifact: PendingArtifact) -> bool:
    return artifact.sha256 is None and not artifact.is_stored


def _wants(ctx: Sync, unit: PendingContent) -> bool:
    return any(_digest_unknown(a) for a in unit.artifacts)


def _known_by_url(conn: Connection, ctx: Sync, urls: list[str]) -> dict[str, set[tuple[str, int | None]]]:
    """url -> every (sha256, size) this remote's RemoteArtifacts at that url lead to."""
    known: dict[str, set[tuple[str, int | None]]] = {}
    for chunk in ctx.db.chunks(urls, 1, other_params=1):  # remote_id
        query = (
            select(_ra.c.url, _ra.c.sha256, _ra.c.size, _artifact.c.sha256.label("stored"), _artifact.c.size.label("n"))
            .select_from(_ra)
            .join(_ca, _ca.c.id == _ra.c.content_artifact_id)
            .outerjoin(_artifact, _artifact.c.id == _ca.c.artifact_id)
            .where(and_(_ra.c.remote_id == ctx.remote_id, _ra.c.url.in_(chunk)))
        )
        for row in conn.execute(query):
            # The stored artifact is what was really served; the row's own digest is what was promised.
            digest, size = (row.stored, row.n) if row.stored is not None else (row.sha256, row.size)
            if digest is not None:
                known.setdefault(row.url, set()).add((digest, size))
    return known


def _fill(conn: Connection, ctx: Sync, units: list[PendingContent]) -> int:
    wanted: dict[str, list[PendingArtifact]] = {}
    for unit in units:
        for artifact in unit.artifacts:
            if _digest_unknown(artifact):
                wanted.setdefault(artifact.url, []).append(artifact)
    filled = 0
    for url, found in _known_by_url(conn, ctx, sorted(wanted)).items():
        if len({digest for digest, _ in found}) != 1:
            continue  # the url served different files over time: only a download can tell which is current
        digest, size = next(iter(found))
        for artifact in wanted[url]:
            artifact.sha256 = digest
            if artifact.size is None:
                artifact.size = size
            filled += 1
    return filled


async def _work(ctx: Sync, units: list[PendingContent]) -> None:
    filled = await ctx.transact(_fill, ctx, units, units=units, what="query_known_digests")
    if filled:
        ctx.progress.add("known_digests", filled)


def query_known_digests() -> Operator:
    """Fill the sha256 (and size) of artifacts whose url this remote already served, in batches.

    One query per batch joins the remote's RemoteArtifacts at those urls to the stored Artifacts.
    Only artifacts with no expected sha256 are touched, and only when every row for the url
    agrees on one digest. Place it before ``query_existing_artifacts`` so the download is skipped.
    """
    return batch_stage(_wants, _work, name="query_known_digests")
