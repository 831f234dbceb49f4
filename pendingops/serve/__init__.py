"""``pendingops serve``: an HTTP server for every complete repository version (see ``app``)."""

from pendingops.serve.app import ContentServer
from pendingops.serve.run import serve

__all__ = ["ContentServer", "serve"]
