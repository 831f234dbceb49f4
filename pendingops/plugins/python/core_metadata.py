"""The enrich step reading a distribution's core metadata file (PEP 658) into its unit's fields.

The file is a second artifact of the unit: read from storage once downloaded, else (on_demand,
streamed) fetched with the sync's fetcher, capped and checked against the digest the index gave.
``Summary`` and ``Requires-Dist`` are kept on the unit.
"""

from __future__ import annotations

import asyncio
import hashlib
from email.parser import BytesParser
from email.policy import compat32

from pendingops.pending import PendingArtifact, PendingContent, UnitError

METADATA_SUFFIX = ".metadata"
#: a core metadata file larger than this is refused (they are a few KiB; long descriptions, tens)
MAX_METADATA_BYTES = 4 * 1024 * 1024
#: longer summaries are cut (the column is text, but a hostile file must not fill it)
MAX_SUMMARY = 2048
MAX_REQUIREMENTS = 1000


def metadata_artifact(unit: PendingContent) -> PendingArtifact | None:
    return next((a for a in unit.artifacts if a.relative_path.endswith(METADATA_SUFFIX)), None)


def wants_metadata(unit: PendingContent) -> bool:
    """Units not saved yet that carry a metadata file."""
    return unit.content_id is None and metadata_artifact(unit) is not None


async def read_core_metadata(unit: PendingContent) -> None:
    """Set ``summary`` and ``requires_dist`` from the unit's metadata file."""
    from pendingops.context import current_context

    ctx = current_context()
    artifact = metadata_artifact(unit)
    assert artifact is not None and artifact.sha256 is not None
    if artifact.is_stored:
        digest = artifact.stored_sha256 or artifact.sha256
        location = ctx.storage.location_for(digest)
        data = await asyncio.to_thread(_read_stored, ctx.storage, location)
    else:
        path = ctx.storage.new_temp_path()
        try:
            await ctx.fetcher.fetch_file(artifact.url, path, max_size=MAX_METADATA_BYTES)
            data = await asyncio.to_thread(path.read_bytes)
        finally:
            path.unlink(missing_ok=True)
        if hashlib.sha256(data).hexdigest() != artifact.sha256:
            raise UnitError(f"{artifact.relative_path}: sha256 differs from the one the index gives")
    summary, requires = parse_core_metadata(data)
    unit.fields["summary"] = summary
    unit.fields["requires_dist"] = requires


def _read_stored(storage: object, location: str) -> bytes:
    with storage.open(location) as handle:  # type: ignore[attr-defined]
        return handle.read(MAX_METADATA_BYTES + 1)[:MAX_METADATA_BYTES]


def parse_core_metadata(data: bytes) -> tuple[str | None, list[str]]:
    """(Summary, the Requires-Dist lines) of a core metadata file; text cleaned for any database."""
    message = BytesParser(policy=compat32).parsebytes(data[:MAX_METADATA_BYTES], headersonly=True)
    summary = _clean(message.get("Summary"))
    requires = [r for r in (_clean(v) for v in message.get_all("Requires-Dist") or []) if r]
    return (summary[:MAX_SUMMARY] if summary else None), requires[:MAX_REQUIREMENTS]


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "")
    text = " ".join(text.split())
    return text or None
