"""Sync workers: syncs queued in PostgreSQL (procrastinate) and run by any number of worker processes."""
