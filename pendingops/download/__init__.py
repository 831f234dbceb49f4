"""Downloading artifacts from remotes."""
