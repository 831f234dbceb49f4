"""A worker's Prometheus metrics: syncs by outcome, how long they took, units added and removed, bytes
downloaded; served on ``/metrics`` with ``pendingops worker --metrics-port PORT``."""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

#: how a sync task ended: ``interrupted`` is a sync the worker's shutdown stopped (it is queued again)
OUTCOMES = ("succeeded", "failed", "cancelled", "interrupted")
REGISTRY = CollectorRegistry()
_SYNCS = Counter("pendingops_syncs", "sync tasks this worker ran, by outcome", ["outcome"], registry=REGISTRY)
_DURATION = Histogram(
    "pendingops_sync_duration_seconds",
    "seconds a sync task ran",
    buckets=(0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, math.inf),
    registry=REGISTRY,
)
_UNITS = Counter(
    "pendingops_units", "content units the new versions added and removed", ["change"], registry=REGISTRY
)
_DOWNLOADED = Counter("pendingops_downloaded_bytes", "bytes the syncs downloaded", registry=REGISTRY)
for _outcome in OUTCOMES:  # every series exists from the start, at 0
    _SYNCS.labels(outcome=_outcome)
for _change in ("added", "removed"):
    _UNITS.labels(change=_change)


def record_sync(outcome: str, seconds: float, *, added: int = 0, removed: int = 0, downloaded: int = 0) -> None:
    """Count one finished sync task."""
    _SYNCS.labels(outcome=outcome).inc()
    _DURATION.observe(seconds)
    if added:
        _UNITS.labels(change="added").inc(added)
    if removed:
        _UNITS.labels(change="removed").inc(removed)
    if downloaded:
        _DOWNLOADED.inc(downloaded)


def serve_metrics(host: str, port: int) -> tuple[str, Callable[[], None]]:
    """Serve the metrics on ``http://host:port/metrics`` (port 0: a free one) from a thread of their own;
    return that URL and the function that stops it."""
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    shown = f"[{host}]" if ":" in host else host

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return f"http://{shown}:{server.server_port}/metrics", stop
