"""How ``pendingops versions`` shows when each version was made and by which sync runs."""

from __future__ import annotations

from typing import Any

from pendingops.maintenance.history import VersionHistory, iso, shown


def history_json(history: VersionHistory | None) -> dict[str, Any]:
    """``created`` (ISO 8601, UTC) and ``runs`` (started, finished, remote, mirror) of one version."""
    if history is None:
        return {"created": None, "runs": []}
    return {
        "created": iso(history.created),
        "runs": [run.as_json() for run in history.runs],
    }


def history_text(history: VersionHistory | None) -> str:
    """``created`` then each run as ``started -> finished from REMOTE``."""
    if history is None:
        return "-"
    runs = "; ".join(
        f"{shown(run.started)} -> {shown(run.finished)} from {run.remote or '(remote deleted)'}"
        for run in history.runs
    )
    return f"{shown(history.created):<19}  {runs or '-'}"
