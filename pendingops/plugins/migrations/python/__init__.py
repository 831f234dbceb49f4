"""Revisions of the python plugin's tables (branch ``python``)."""
