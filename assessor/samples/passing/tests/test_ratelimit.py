"""The token bucket and how the API answers a client that goes over its limit."""

from inventory_service import schemas
from inventory_service.api import Api
from inventory_service.ratelimit import RateLimiter, TokenBucket
from inventory_service.validation import validate


def test_a_bucket_allows_a_burst_up_to_its_capacity():
    bucket = TokenBucket(capacity=3, rate=1.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == 1.0


def test_a_bucket_refills_with_time_but_not_beyond_capacity():
    bucket = TokenBucket(capacity=2, rate=2.0, now=0.0)
    bucket.take(0.0)
    bucket.take(0.0)
    assert bucket.take(0.25) == 0.25
    assert bucket.take(0.5) == 0.0
    bucket.take(100.0)
    assert bucket.tokens == 1.0


def test_a_clock_that_steps_backwards_does_not_drain_the_bucket():
    bucket = TokenBucket(capacity=2, rate=1.0, now=10.0)
    assert bucket.take(5.0) == 0.0
    assert bucket.tokens == 1.0


def test_each_client_has_its_own_bucket(clock):
    limiter = RateLimiter(capacity=1, rate=1.0, clock=clock)
    assert limiter.check("shop-web") == 0.0
    assert limiter.check("shop-web") > 0
    assert limiter.check("shop-app") == 0.0


def test_the_least_recently_seen_client_is_forgotten_first(clock):
    limiter = RateLimiter(capacity=1, rate=0.001, clock=clock, max_clients=2)
    limiter.check("a")
    limiter.check("b")
    limiter.check("a")
    limiter.check("c")
    assert limiter.tracked_clients() == 2
    assert limiter.check("a") > 0  # still remembered: no fresh burst
    assert limiter.check("b") == 0.0  # forgotten: starts again with a full bucket


def test_the_api_answers_429_with_a_retry_after_header(service, clock, make_client):
    client = make_client(Api(service, limiter=RateLimiter(capacity=2, rate=0.5, clock=clock)))
    headers = {"X-Client-Id": "scraper"}
    statuses = [client.get("/v1/items", headers=headers).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get("/v1/items", headers=headers)
    assert validate(limited.body, schemas.ERROR) == []
    assert limited.body["error"]["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "2"
    clock.advance(2)
    assert client.get("/v1/items", headers=headers).status == 200


def test_health_checks_and_metrics_are_never_rate_limited(service, clock, make_client):
    client = make_client(Api(service, limiter=RateLimiter(capacity=1, rate=0.001, clock=clock)))
    assert [client.get("/healthz").status for _ in range(5)] == [200] * 5
    assert client.get("/metrics").status == 200
