"""The operators a plugin writer composes: each returns an Rx operator over PendingContent.

    from pendingops import operators as ops
    source.pipe(ops.dedup(), ops.download(n=10), ops.enrich(fetch_metadata), ops.save())

Every operator passes failed units through untouched and emits each unit exactly once. Any
reactivex operator may stand before, between or after them (``filter``, ``delay``, ``group_by`` +
``flat_map``...): they run on the sync's event loop, and a unit one of them drops is not declared.
"""

from pendingops.operators._associate import associate
from pendingops.operators._dedup import dedup, query_existing_artifacts, query_existing_content
from pendingops.operators._download import download
from pendingops.operators._enrich import enrich, enrich_batch
from pendingops.operators._known_digests import query_known_digests
from pendingops.operators._save import save
from pendingops.operators._stage import Operator
from pendingops.operators._unchanged import unchanged

__all__ = [
    "Operator",
    "associate",
    "dedup",
    "download",
    "enrich",
    "enrich_batch",
    "query_existing_artifacts",
    "query_existing_content",
    "query_known_digests",
    "save",
    "unchanged",
]
