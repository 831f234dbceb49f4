"""The ``pendingops`` console script."""

from pendingops.cli._app import main

__all__ = ["main"]
