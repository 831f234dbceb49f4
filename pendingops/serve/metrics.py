"""The content server's Prometheus metrics: requests by status, bytes sent, durations, on-demand fetches.

With several server processes (``serve --workers N``) each process writes its counts to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, chosen when that variable is set
before prometheus_client is imported), and whichever process answers ``/-/metrics`` sums them all.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

#: the environment variable naming the folder where processes share their counts
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: what an on-demand fetch from one remote came to
FETCH_OUTCOMES = ("stored", "streamed", "failed")


class ServeMetrics:
    """The server's counters, on a registry of their own (several servers may live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "pendingops_http_requests", "HTTP requests answered, by status", ["status"], registry=self.registry
        )
        self._bytes = Counter(
            "pendingops_http_response_bytes", "bytes of response bodies sent", registry=self.registry
        )
        self._duration = Histogram(
            "pendingops_http_request_duration_seconds",
            "seconds from a request's arrival to its answer's last byte",
            registry=self.registry,
        )
        self._fetches = Counter(
            "pendingops_on_demand_fetches",
            "on-demand fetches from a remote, by outcome: stored, streamed (checked, not stored) or failed",
            ["outcome"],
            registry=self.registry,
        )
        self._by_status: dict[int, Counter] = {}

    def answered(self, status: int, body_bytes: int, seconds: float) -> None:
        """Count one answered request."""
        counter = self._by_status.get(status)
        if counter is None:
            counter = self._by_status[status] = self._requests.labels(status=str(status))
        counter.inc()
        if body_bytes:
            self._bytes.inc(body_bytes)
        self._duration.observe(seconds)

    def fetched(self, outcome: str) -> None:
        """Count one on-demand fetch (``outcome``: one of FETCH_OUTCOMES)."""
        self._fetches.labels(outcome=outcome).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text of every counter (of every server process) and its content type."""
        if getattr(values.ValueClass, "_multiprocess", False):  # counts are in files, one per process
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
