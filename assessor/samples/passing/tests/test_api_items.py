"""Contract tests for /v1/items: status codes, headers and bodies checked against their schemas."""

from inventory_service import schemas
from inventory_service.validation import validate


def assert_error(response, status, code):
    assert response.status == status
    assert validate(response.body, schemas.ERROR) == []
    assert response.body["error"]["code"] == code


def test_creating_an_item_returns_201_with_the_item_and_its_location(client):
    response = client.post("/v1/items", {"sku": "WIDGET-1", "name": " Widget ", "quantity": 10})
    assert response.status == 201
    assert response.headers["Location"] == "/v1/items/WIDGET-1"
    assert validate(response.body, schemas.ITEM) == []
    assert response.body == {
        "sku": "WIDGET-1", "name": "Widget", "on_hand": 10, "reserved": 0, "available": 10,
        "created_at": "2023-11-14T22:13:20Z",
    }


def test_a_duplicate_sku_is_a_409_conflict(stocked):
    response = stocked.post("/v1/items", {"sku": "WIDGET-1", "name": "Another", "quantity": 1})
    assert_error(response, 409, "conflict")


def test_an_invalid_item_lists_every_problem_in_a_422(client):
    response = client.post("/v1/items", {"sku": "no", "quantity": -3})
    assert_error(response, 422, "validation_failed")
    assert {detail["field"] for detail in response.body["error"]["details"]} == {"sku", "name", "quantity"}


def test_malformed_json_is_a_400(client):
    assert_error(client.post("/v1/items", raw=b"{not json"), 400, "bad_request")


def test_an_empty_body_is_a_400(client):
    assert_error(client.post("/v1/items"), 400, "bad_request")


def test_a_body_that_is_not_utf8_is_a_400(client):
    assert_error(client.post("/v1/items", raw=b"\xff\xfe"), 400, "bad_request")


def test_getting_an_item_returns_it(stocked):
    response = stocked.get("/v1/items/GADGET-7")
    assert response.status == 200
    assert validate(response.body, schemas.ITEM) == []
    assert response.body["available"] == 3


def test_an_unknown_item_is_a_404(client):
    assert_error(client.get("/v1/items/NOPE-0"), 404, "not_found")


def test_items_are_listed_in_sku_order_one_page_at_a_time(client):
    for sku in ("C-003", "A-001", "B-002"):
        client.post("/v1/items", {"sku": sku, "name": sku, "quantity": 1})
    first = client.get("/v1/items", query={"limit": "2"})
    assert validate(first.body, schemas.ITEM_PAGE) == []
    assert [item["sku"] for item in first.body["items"]] == ["A-001", "B-002"]
    assert first.body["next_after"] == "B-002"
    second = client.get("/v1/items", query={"limit": "2", "after": "B-002"})
    assert [item["sku"] for item in second.body["items"]] == ["C-003"]
    assert second.body["next_after"] is None


def test_the_default_page_is_returned_without_a_limit(stocked):
    response = stocked.get("/v1/items")
    assert response.status == 200
    assert len(response.body["items"]) == 2


def test_a_page_size_out_of_range_is_a_422(client):
    for limit in ("0", "101", "ten"):
        response = client.get("/v1/items", query={"limit": limit})
        assert_error(response, 422, "validation_failed")
        assert response.body["error"]["details"][0]["field"] == "limit"


def test_an_unknown_path_is_a_404(client):
    assert_error(client.get("/v2/items"), 404, "not_found")


def test_a_wrong_method_is_a_405_naming_the_allowed_ones(client):
    response = client.request("DELETE", "/v1/items")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST, GET"


def test_the_health_check_reports_ok(client):
    response = client.get("/healthz")
    assert response.status == 200
    assert validate(response.body, schemas.HEALTH) == []
