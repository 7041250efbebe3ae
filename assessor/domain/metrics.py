"""Prometheus metrics. Every app and every worker builds its own `Metrics` on its own registry (never the
global one at import time), so tests and several apps in one process do not share counts.

Counted where it happens: HTTP latency in the web process; assessments by outcome, stage durations and sandbox
kills in the worker that ran them (`assessor worker --metrics-port` serves those). Read on each scrape from the
shared stores, so any web server shows the whole installation: the queue depth (huey) and the attempts in each
status (database)."""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.assessments = Counter("assessor_assessments", "Assessments finished, by outcome "
                                   "(scored, reused, failed, retried, requeued).", ["outcome"], registry=self.registry)
        self.stage_seconds = Histogram("assessor_stage_duration_seconds", "Time spent in each pipeline stage.",
                                       ["stage"], buckets=STAGE_BUCKETS, registry=self.registry)
        self.sandbox_kills = Counter("assessor_sandbox_kills", "Learner test runs the sandbox stopped, by the "
                                     "limit that stopped them.", ["reason"], registry=self.registry)
        self.http_seconds = Histogram("assessor_http_request_duration_seconds", "HTTP request latency.",
                                      ["method", "endpoint", "status"], buckets=HTTP_BUCKETS, registry=self.registry)

    def watch(self, *, queue_depth: Callable[[], int] | None = None,
              attempts_by_status: Callable[[], dict[str, int]] | None = None) -> None:
        """Gauges read when scraped: the queue's pending jobs and the attempts in each status."""
        self.registry.register(_ScrapeTimeGauges(queue_depth, attempts_by_status))


class _ScrapeTimeGauges:
    def __init__(self, queue_depth, attempts_by_status):
        self.queue_depth, self.attempts_by_status = queue_depth, attempts_by_status

    def describe(self):
        return []  # collected only on scrape (describe() would otherwise run collect() at registration)

    def collect(self):
        if self.queue_depth is not None:
            depth = GaugeMetricFamily("assessor_queue_depth", "Assessment jobs waiting in the queue.")
            try:
                depth.add_metric([], float(self.queue_depth()))
            except Exception:
                depth.add_metric([], float("nan"))
            yield depth
        if self.attempts_by_status is not None:
            attempts = GaugeMetricFamily("assessor_attempts", "Attempts in each assessment status.", labels=["status"])
            try:
                for status, count in sorted(self.attempts_by_status().items()):
                    attempts.add_metric([status], float(count))
            except Exception:
                pass
            yield attempts
