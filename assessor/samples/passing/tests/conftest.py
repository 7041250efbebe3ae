"""Shared fixtures: a fresh database per test, a clock the test controls, and a small HTTP-like client."""

import json

import pytest

from inventory_service.api import Api
from inventory_service.messages import Request, Response
from inventory_service.ratelimit import RateLimiter
from inventory_service.repository import Repository, connect
from inventory_service.service import InventoryService

START = 1_700_000_000  # 2023-11-14T22:13:20Z


class FakeClock:
    def __init__(self, now: float = START):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Client:
    """Sends requests straight to Api.handle and decodes JSON responses."""

    def __init__(self, api: Api):
        self.api = api

    def request(self, method, path, body=None, headers=None, query=None, raw=None) -> Response:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        return self.api.handle(Request(method, path, payload, headers or {}, query or {}))

    def get(self, path, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs) -> Response:
        return self.request("POST", path, body, **kwargs)

    def reserve(self, sku, quantity, key="key-00000001", client="shop-web", **extra) -> Response:
        headers = {"Idempotency-Key": key, "X-Client-Id": client}
        return self.post("/v1/reservations", {"sku": sku, "quantity": quantity, **extra}, headers=headers)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def database(tmp_path):
    return str(tmp_path / "inventory.sqlite3")


@pytest.fixture
def repository(database):
    connection = connect(database)
    yield Repository(connection)
    connection.close()


@pytest.fixture
def service(repository, clock):
    return InventoryService(repository, clock=clock)


@pytest.fixture
def client(service, clock):
    # A generous limiter: rate limiting has its own tests.
    return Client(Api(service, limiter=RateLimiter(capacity=1_000, rate=1_000, clock=clock)))


@pytest.fixture
def make_client():
    """Wrap an Api of the test's own making (another limiter, a broken service) in the test client."""
    return Client


@pytest.fixture
def stocked(client):
    """A client whose store holds 10 of WIDGET-1 and 3 of GADGET-7."""
    client.post("/v1/items", {"sku": "WIDGET-1", "name": "Widget", "quantity": 10})
    client.post("/v1/items", {"sku": "GADGET-7", "name": "Gadget", "quantity": 3})
    return client
