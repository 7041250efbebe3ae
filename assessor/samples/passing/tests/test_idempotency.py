"""Retried reservations: the same Idempotency-Key never holds stock twice."""

from inventory_service.service import request_fingerprint


def test_a_retry_with_the_same_key_returns_the_original_reservation(stocked):
    first = stocked.reserve("WIDGET-1", 2, key="checkout-42")
    retry = stocked.reserve("WIDGET-1", 2, key="checkout-42")
    assert retry.status == 201
    assert retry.body == first.body
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_a_retry_does_not_hold_stock_a_second_time(stocked):
    for _ in range(3):
        stocked.reserve("WIDGET-1", 2, key="checkout-42")
    assert stocked.get("/v1/items/WIDGET-1").body["reserved"] == 2


def test_reusing_a_key_for_a_different_request_is_a_409(stocked):
    stocked.reserve("WIDGET-1", 2, key="checkout-42")
    response = stocked.reserve("WIDGET-1", 5, key="checkout-42")
    assert response.status == 409
    assert response.body["error"]["code"] == "idempotency_key_reused"
    assert stocked.get("/v1/items/WIDGET-1").body["reserved"] == 2


def test_keys_are_scoped_to_the_client(stocked):
    web = stocked.reserve("WIDGET-1", 1, key="checkout-42", client="shop-web")
    app = stocked.reserve("WIDGET-1", 1, key="checkout-42", client="shop-app")
    assert web.body["id"] != app.body["id"]
    assert stocked.get("/v1/items/WIDGET-1").body["reserved"] == 2


def test_the_fingerprint_ignores_key_order_but_not_values():
    assert request_fingerprint({"a": 1, "b": 2}) == request_fingerprint({"b": 2, "a": 1})
    assert request_fingerprint({"a": 1}) != request_fingerprint({"a": 2})
