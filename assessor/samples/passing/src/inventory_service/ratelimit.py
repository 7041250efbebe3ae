"""Token-bucket rate limiting, one bucket per client, with a bound on how many clients are remembered."""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    """
    Holds up to `capacity` tokens and gains `rate` per second; each request spends one.

    Tokens are topped up lazily on each call from the time elapsed, so an idle bucket costs nothing. A clock
    that steps backwards adds no tokens instead of removing them.
    """

    def __init__(self, capacity: int, rate: float, now: float):
        self.capacity = capacity
        self.rate = rate
        self.tokens = float(capacity)
        self.updated = now

    def take(self, now: float) -> float:
        """Spend a token and return 0, or return how many seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """
    Per-client buckets; the least recently seen client is forgotten once `max_clients` is reached.

    State is per process: with N instances behind a load balancer a client gets up to N times the limit.
    That is accepted for now (see docs/trade-off-log.md); the limiter protects the database from one noisy
    client rather than enforcing a contract. A forgotten client simply starts again with a full bucket.
    """

    def __init__(
        self,
        capacity: int = 20,
        rate: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ):
        self.capacity = capacity
        self.rate = rate
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, client_id: str) -> float:
        """0 when the request may proceed, otherwise the seconds the client should wait."""
        with self._lock:
            now = self.clock()
            return self._bucket(client_id, now).take(now)

    def _bucket(self, client_id: str, now: float) -> TokenBucket:
        # Re-inserting moves the client to the end, so the first entry is always the least recently seen.
        bucket = self._buckets.pop(client_id, None)
        if bucket is None:
            bucket = TokenBucket(self.capacity, self.rate, now)
        self._buckets[client_id] = bucket
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return bucket

    def tracked_clients(self) -> int:
        return len(self._buckets)
