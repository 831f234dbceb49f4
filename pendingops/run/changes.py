"""What a finished sync changed, per table: the rows ``db.statistics.refresh_statistics`` weighs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from pendingops.db.database import Database
from pendingops.db.statistics import refresh_statistics
from pendingops.progress import Progress

logger = logging.getLogger("pendingops")


def sync_changes(progress: Progress, content_tables: Iterable[str], added: int, removed: int) -> dict[str, int]:
    """Rows a sync wrote per table: its new content rows (with their plugin rows, files and sources),
    the artifacts it stored, and the membership rows of the version it made."""
    saved = progress.stages["saved"].done
    stored = progress.stages["downloaded"].done + progress.stages["adopted"].done
    changes = {"content": saved, "content_artifact": saved, "remote_artifact": saved, "artifact": stored}
    changes.update(dict.fromkeys(content_tables, saved))
    changes["repository_content"] = added + removed
    return changes


async def refresh_after_sync(db: Database, changes: dict[str, int]) -> None:
    """Analyse what the sync made stale; a failure here is no failure of the sync (debug line only)."""
    try:
        analysed = await asyncio.to_thread(refresh_statistics, db, changes)
    except Exception as exc:
        logger.debug("could not refresh the planner statistics after the sync: %s", exc)
        return
    if analysed:
        logger.debug("planner statistics refreshed: %s", ", ".join(analysed))
