"""Plugin options (``sync --option KEY=VALUE``): checked against what the plugin knows, and remembered
for the repository, so later syncs (by hand, queued or scheduled) run with the same ones."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select, update

from pendingops.db.database import Database
from pendingops.db.schema import Repository

_repo = Repository.__table__


class UnknownOption(ValueError):
    """An option the plugin does not know, a bad value, or one not written KEY=VALUE."""


def check_options(options: dict[str, str], plugin: Any) -> dict[str, str]:
    """``options`` if the plugin declares every key in its ``options`` mapping and its
    ``check_options(options)``, when it has one, accepts the values; else ``UnknownOption``."""
    known = dict(getattr(plugin, "options", None) or {})
    for key in options:
        if key not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise UnknownOption(f"the {getattr(plugin, 'name', '?')} plugin has no option {key!r} (known: {listed})")
    check = getattr(plugin, "check_options", None)
    if callable(check):
        check(options)
    return options


def options_for_sync(db: Database, repository: str, plugin: Any, given: dict[str, str] | None) -> dict[str, str]:
    """The options a sync runs with: ``given`` ones, or (None) those remembered for the repository."""
    if given is not None:
        return check_options(given, plugin)
    with db.engine.connect() as conn:
        stored = conn.execute(select(_repo.c.plugin_options).where(_repo.c.name == repository)).scalar()
    return check_options(json.loads(stored), plugin) if stored else {}


def remember_options(db: Database, repository: str, options: dict[str, str]) -> None:
    """Keep ``options`` for the repository's later syncs (after a sync given them succeeded)."""
    db.transact(_remember, repository, json.dumps(options, sort_keys=True))


def _remember(conn: Connection, repository: str, encoded: str) -> None:
    conn.execute(update(_repo).where(_repo.c.name == repository).values(plugin_options=encoded))
