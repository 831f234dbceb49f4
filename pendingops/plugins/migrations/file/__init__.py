"""Revisions of the file plugin's tables (branch ``file``)."""
