"""The published contract (docs/api/contract-v1.json) must match the code: a renamed field fails the build."""

import json
from pathlib import Path

from inventory_service.routes import ROUTES, contract

PUBLISHED = Path(__file__).resolve().parents[1] / "docs" / "api" / "contract-v1.json"


def test_the_code_matches_the_published_contract():
    published = json.loads(PUBLISHED.read_text())
    assert contract() == published, (
        "the API contract changed: if the change is intended and backwards compatible, regenerate "
        "docs/api/contract-v1.json with scripts/export_contract.py; if it is breaking, publish v2 instead"
    )


def test_every_route_is_in_the_contract():
    listed = {(route["method"], route["path"]) for route in contract()["routes"]}
    assert listed == {(route.method, route.template) for route in ROUTES}


def test_every_json_route_declares_its_response_schema():
    missing = [route["path"] for route in contract()["routes"] if route["response"] is None]
    assert missing == ["/metrics"]  # Prometheus text, not JSON
