"""Request metrics in Prometheus text format and one structured JSON log line per request."""

import json
import logging
import threading
from collections import Counter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

logger = logging.getLogger("inventory_service.requests")


class Metrics:
    """
    Counters by (method, route, status) and a latency histogram by route, kept in process.

    Exposed at GET /metrics for Prometheus to scrape. Labels are bounded on purpose: the route template,
    never the raw path, so the number of series does not grow with the number of SKUs.
    """

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency_buckets: Counter[tuple[str, float]] = Counter()
        self.latency_sum: Counter[str] = Counter()
        self.latency_count: Counter[str] = Counter()
        self._lock = threading.Lock()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.latency_sum[route] += seconds
            self.latency_count[route] += 1
            # Prometheus buckets are cumulative: a 20 ms request counts in every bucket from 25 ms up.
            for bound in LATENCY_BUCKETS:
                if seconds <= bound:
                    self.latency_buckets[(route, bound)] += 1

    def render(self) -> str:
        """The Prometheus exposition format, ready for a scrape."""
        lines = ["# TYPE http_requests_total counter"]
        for (method, route, status), count in sorted(self.requests.items()):
            lines.append(f'http_requests_total{{method="{method}",route="{route}",status="{status}"}} {count}')
        lines.append("# TYPE http_request_duration_seconds histogram")
        for route in sorted(self.latency_count):
            lines.extend(self._histogram(route))
        return "\n".join(lines) + "\n"

    def _histogram(self, route: str) -> list[str]:
        name = "http_request_duration_seconds"
        lines = [
            f'{name}_bucket{{route="{route}",le="{bound}"}} {self.latency_buckets[(route, bound)]}'
            for bound in LATENCY_BUCKETS
        ]
        lines.append(f'{name}_bucket{{route="{route}",le="+Inf"}} {self.latency_count[route]}')
        lines.append(f'{name}_sum{{route="{route}"}} {self.latency_sum[route]:.6f}')
        lines.append(f'{name}_count{{route="{route}"}} {self.latency_count[route]}')
        return lines


def log_request(**fields: object) -> None:
    """
    One line of JSON per request: easy to grep locally and to index in a log store.

    The request id is the thread to pull: it is echoed to the client in X-Request-Id and appears in every
    line this request produces, including the traceback of an unexpected error.
    """
    logger.info(json.dumps(fields, sort_keys=True, default=str))
