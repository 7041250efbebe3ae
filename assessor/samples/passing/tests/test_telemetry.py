"""What an operator sees: request ids, structured logs, metrics, and a safe answer to unexpected errors."""

import json
import logging

from inventory_service import schemas
from inventory_service.api import Api
from inventory_service.validation import validate
from inventory_service.telemetry import Metrics


def test_a_request_id_is_echoed_back(client):
    response = client.get("/healthz", headers={"x-request-id": "trace-me-42"})
    assert response.headers["X-Request-Id"] == "trace-me-42"


def test_a_request_id_is_generated_when_missing(client):
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert len(first) == 32
    assert first != second


def test_every_request_is_logged_as_one_json_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="inventory_service.requests"):
        client.get("/v1/items/NOPE-0", headers={"X-Request-Id": "r-1", "X-Client-Id": "shop-web"})
    line = json.loads(caplog.records[-1].getMessage())
    assert line["request_id"] == "r-1"
    assert line["client_id"] == "shop-web"
    assert line["route"] == "/v1/items/{sku}"
    assert line["status"] == 404
    assert line["duration_ms"] >= 0


def test_metrics_are_labelled_by_route_template_not_raw_path(stocked):
    stocked.get("/v1/items/WIDGET-1")
    stocked.get("/v1/items/GADGET-7")
    stocked.get("/nowhere")
    text = stocked.get("/metrics").body
    assert 'http_requests_total{method="GET",route="/v1/items/{sku}",status="200"} 2' in text
    assert 'route="unmatched",status="404"} 1' in text
    assert "WIDGET-1" not in text


def test_the_latency_histogram_is_cumulative():
    metrics = Metrics()
    metrics.observe("GET", "/healthz", 200, 0.02)
    metrics.observe("GET", "/healthz", 200, 2.0)
    text = metrics.render()
    assert 'http_request_duration_seconds_bucket{route="/healthz",le="0.01"} 0' in text
    assert 'http_request_duration_seconds_bucket{route="/healthz",le="0.025"} 1' in text
    assert 'http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 2' in text
    assert 'http_request_duration_seconds_count{route="/healthz"} 2' in text


def test_an_unexpected_error_is_a_500_without_internals(make_client, caplog):
    class BrokenService:
        def get_item(self, sku):
            raise RuntimeError("secret connection string in the message")

    api = Api(BrokenService())
    with caplog.at_level(logging.ERROR, logger="inventory_service.api"):
        response = make_client(api).get("/v1/items/WIDGET-1", headers={"X-Request-Id": "boom-1"})
    assert response.status == 500
    assert validate(response.body, schemas.ERROR) == []
    assert "secret" not in json.dumps(response.body)
    assert "boom-1" in response.body["error"]["message"]
    assert "secret connection string" in caplog.text
