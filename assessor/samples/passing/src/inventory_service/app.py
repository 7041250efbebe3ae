"""Wiring: one place that builds the API, and the WSGI application, from a database path."""

import time
from collections.abc import Callable

from inventory_service.api import Api
from inventory_service.ratelimit import RateLimiter
from inventory_service.repository import Repository, connect, shared_write_lock
from inventory_service.service import InventoryService
from inventory_service.telemetry import Metrics
from inventory_service.wsgi import make_wsgi_app


def create_api(
    database: str,
    clock: Callable[[], float] = time.time,
    limiter: RateLimiter | None = None,
    metrics: Metrics | None = None,
) -> Api:
    repository = Repository(connect(database), write_lock=shared_write_lock(database))
    service = InventoryService(repository, clock=clock)
    return Api(service, limiter=limiter, metrics=metrics)


def create_wsgi_application(database: str) -> Callable:
    """
    The production entry point, used by deploy/inventory-service.service:
    `gunicorn --workers 1 --threads 8 'inventory_service.app:create_wsgi_application("/path/to/db")'`.

    Threads share the rate limiter, the metrics and the database write lock; each has its own connection.
    """
    limiter, metrics = RateLimiter(), Metrics()
    return make_wsgi_app(lambda: create_api(database, limiter=limiter, metrics=metrics))
