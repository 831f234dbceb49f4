"""The mutants of tools/mutants.py, one module per area of pendingops/ they mutate.

``MUTANTS`` is every area's list, in this fixed order; a new mutant goes at the end of its area's module.
"""

from __future__ import annotations

from . import cli, core, db, download, flow_run_sync, maintenance, operators, plugins, serve, storage, workers
from ._mutant import Mutant
from .self_checks import SELF_CHECKS

__all__ = ["MUTANTS", "SELF_CHECKS", "Mutant"]

MUTANTS: tuple[Mutant, ...] = (
    *download.MUTANTS,
    *db.MUTANTS,
    *operators.MUTANTS,
    *core.MUTANTS,
    *flow_run_sync.MUTANTS,
    *maintenance.MUTANTS,
    *plugins.MUTANTS,
    *serve.MUTANTS,
    *storage.MUTANTS,
    *workers.MUTANTS,
    *cli.MUTANTS,
)
