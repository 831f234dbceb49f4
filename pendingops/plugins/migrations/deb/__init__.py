"""Revisions of the deb plugin's tables (branch ``deb``)."""
