"""Alembic revisions of the built-in plugins' tables, one folder (one branch) per plugin."""
