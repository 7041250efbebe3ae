"""Contract tests for /v1/reservations: holding, confirming, cancelling and expiry."""

from inventory_service import schemas
from inventory_service.validation import validate


def assert_error(response, status, code):
    assert response.status == status
    assert validate(response.body, schemas.ERROR) == []
    assert response.body["error"]["code"] == code


def available(client, sku):
    return client.get(f"/v1/items/{sku}").body["available"]


def test_a_reservation_holds_stock_and_returns_201(stocked):
    response = stocked.reserve("WIDGET-1", 4)
    assert response.status == 201
    assert validate(response.body, schemas.RESERVATION) == []
    assert response.body["status"] == "held"
    assert response.headers["Location"] == f"/v1/reservations/{response.body['id']}"
    item = stocked.get("/v1/items/WIDGET-1").body
    assert (item["on_hand"], item["reserved"], item["available"]) == (10, 4, 6)


def test_a_hold_lasts_fifteen_minutes_unless_asked_otherwise(stocked):
    default = stocked.reserve("WIDGET-1", 1, key="key-default").body
    short = stocked.reserve("WIDGET-1", 1, key="key-short1", hold_seconds=60).body
    assert default["expires_at"] == "2023-11-14T22:28:20Z"
    assert short["expires_at"] == "2023-11-14T22:14:20Z"


def test_reserving_more_than_is_available_is_a_409_and_holds_nothing(stocked):
    response = stocked.reserve("GADGET-7", 4)
    assert_error(response, 409, "insufficient_stock")
    assert available(stocked, "GADGET-7") == 3


def test_reserving_an_unknown_item_is_a_404(stocked):
    assert_error(stocked.reserve("NOPE-0", 1), 404, "not_found")


def test_an_invalid_reservation_is_a_422(stocked):
    response = stocked.reserve("WIDGET-1", 0, hold_seconds=10)
    assert_error(response, 422, "validation_failed")
    assert {d["field"] for d in response.body["error"]["details"]} == {"quantity", "hold_seconds"}


def test_a_reservation_without_an_idempotency_key_is_a_400(stocked):
    response = stocked.post("/v1/reservations", {"sku": "WIDGET-1", "quantity": 1})
    assert_error(response, 400, "bad_request")
    assert response.body["error"]["details"][0]["field"] == "Idempotency-Key"


def test_a_malformed_idempotency_key_is_a_400(stocked):
    assert_error(stocked.reserve("WIDGET-1", 1, key="short"), 400, "bad_request")
    assert_error(stocked.reserve("WIDGET-1", 1, key="has spaces in it"), 400, "bad_request")


def test_a_reservation_can_be_read_back(stocked):
    created = stocked.reserve("WIDGET-1", 2).body
    response = stocked.get(f"/v1/reservations/{created['id']}")
    assert response.status == 200
    assert response.body == created


def test_an_unknown_reservation_is_a_404(stocked):
    assert_error(stocked.get("/v1/reservations/res_0000000000000000"), 404, "not_found")
    assert_error(stocked.post("/v1/reservations/res_0000000000000000/confirm"), 404, "not_found")


def test_confirming_takes_the_stock_for_good(stocked):
    created = stocked.reserve("WIDGET-1", 4).body
    response = stocked.post(f"/v1/reservations/{created['id']}/confirm")
    assert response.status == 200
    assert validate(response.body, schemas.RESERVATION) == []
    assert response.body["status"] == "confirmed"
    item = stocked.get("/v1/items/WIDGET-1").body
    assert (item["on_hand"], item["reserved"], item["available"]) == (6, 0, 6)


def test_confirming_twice_is_a_409_and_takes_stock_once(stocked):
    created = stocked.reserve("WIDGET-1", 4).body
    stocked.post(f"/v1/reservations/{created['id']}/confirm")
    assert_error(stocked.post(f"/v1/reservations/{created['id']}/confirm"), 409, "invalid_state")
    assert stocked.get("/v1/items/WIDGET-1").body["on_hand"] == 6


def test_cancelling_gives_the_stock_back(stocked):
    created = stocked.reserve("GADGET-7", 3).body
    response = stocked.post(f"/v1/reservations/{created['id']}/cancel")
    assert response.status == 200
    assert response.body["status"] == "cancelled"
    assert available(stocked, "GADGET-7") == 3


def test_cancelling_twice_is_harmless(stocked):
    created = stocked.reserve("GADGET-7", 2).body
    stocked.post(f"/v1/reservations/{created['id']}/cancel")
    again = stocked.post(f"/v1/reservations/{created['id']}/cancel")
    assert again.status == 200
    assert again.body["status"] == "cancelled"
    assert available(stocked, "GADGET-7") == 3


def test_a_confirmed_reservation_cannot_be_cancelled(stocked):
    created = stocked.reserve("WIDGET-1", 1).body
    stocked.post(f"/v1/reservations/{created['id']}/confirm")
    assert_error(stocked.post(f"/v1/reservations/{created['id']}/cancel"), 409, "invalid_state")


def test_an_expired_hold_cannot_be_confirmed(stocked, clock):
    created = stocked.reserve("WIDGET-1", 2, hold_seconds=60).body
    clock.advance(60)
    assert_error(stocked.post(f"/v1/reservations/{created['id']}/confirm"), 409, "reservation_expired")


def test_the_expiry_sweep_releases_only_holds_that_are_due(stocked, service, clock):
    due = stocked.reserve("WIDGET-1", 2, key="key-due-0001", hold_seconds=60).body
    later = stocked.reserve("WIDGET-1", 3, key="key-later-01", hold_seconds=600).body
    clock.advance(61)
    assert service.expire_due() == 1
    assert stocked.get(f"/v1/reservations/{due['id']}").body["status"] == "expired"
    assert stocked.get(f"/v1/reservations/{later['id']}").body["status"] == "held"
    assert available(stocked, "WIDGET-1") == 7


def test_the_expiry_sweep_with_nothing_due_changes_nothing(stocked, service):
    stocked.reserve("WIDGET-1", 2)
    assert service.expire_due() == 0
    assert available(stocked, "WIDGET-1") == 8
