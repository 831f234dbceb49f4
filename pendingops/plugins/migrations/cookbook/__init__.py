"""Revisions of the cookbook plugin's tables (branch ``cookbook``)."""
