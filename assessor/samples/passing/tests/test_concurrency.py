"""Overlapping requests from several service instances sharing one database."""

import threading

from inventory_service.api import Api
from inventory_service.ratelimit import RateLimiter
from inventory_service.repository import Repository, connect
from inventory_service.service import InventoryService


def reserve_from_own_instance(make_client, database, clock, sku, quantity, key):
    """Reserve through a service instance of its own, as a separate process would: own connection and limiter."""
    connection = connect(database, busy_timeout=5)
    try:
        service = InventoryService(Repository(connection), clock=clock)
        client = make_client(Api(service, limiter=RateLimiter(capacity=100, rate=100, clock=clock)))
        return client.reserve(sku, quantity, key=key)
    finally:
        connection.close()


def run_together(workers):
    barrier = threading.Barrier(len(workers))
    results = [None] * len(workers)

    def run(index, work):
        barrier.wait()
        results[index] = work()

    threads = [threading.Thread(target=run, args=(i, work)) for i, work in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_reservations_never_oversell(stocked, make_client, database, clock):
    workers = [
        lambda i=i: reserve_from_own_instance(make_client, database, clock, "GADGET-7", 1, f"checkout-{i:04d}")
        for i in range(8)
    ]
    statuses = sorted(response.status for response in run_together(workers))
    assert statuses == [201] * 3 + [409] * 5
    item = stocked.get("/v1/items/GADGET-7").body
    assert (item["reserved"], item["available"]) == (3, 0)


def test_concurrent_retries_of_one_request_create_one_reservation(stocked, make_client, database, clock):
    workers = [lambda: reserve_from_own_instance(make_client, database, clock, "WIDGET-1", 2, "checkout-same")] * 6
    responses = run_together(workers)
    assert {response.status for response in responses} == {201}
    assert len({response.body["id"] for response in responses}) == 1
    assert stocked.get("/v1/items/WIDGET-1").body["reserved"] == 2
