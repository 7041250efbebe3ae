"""The route table, matching a request to its handler, and the contract published from it."""

import re
from dataclasses import dataclass

from inventory_service import API_VERSION, schemas
from inventory_service.errors import MethodNotAllowed, NotFound
from inventory_service.validation import Schema, to_json_schema


@dataclass(frozen=True)
class Route:
    """
    One endpoint: method, path template with {parameters}, and the name of the Api method handling it.

    The schemas are what the route promises; the contract test compares them with docs/api/contract-v1.json.
    """

    method: str
    template: str
    handler: str
    rate_limited: bool = True
    request_schema: Schema | None = None
    response_schema: Schema | None = None

    @property
    def pattern(self) -> re.Pattern:
        return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template))


ROUTES = (
    Route("POST", "/v1/items", "create_item", request_schema=schemas.CREATE_ITEM, response_schema=schemas.ITEM),
    Route("GET", "/v1/items", "list_items", response_schema=schemas.ITEM_PAGE),
    Route("GET", "/v1/items/{sku}", "get_item", response_schema=schemas.ITEM),
    Route(
        "POST", "/v1/reservations", "create_reservation",
        request_schema=schemas.CREATE_RESERVATION, response_schema=schemas.RESERVATION,
    ),
    Route("GET", "/v1/reservations/{reservation_id}", "get_reservation", response_schema=schemas.RESERVATION),
    Route("POST", "/v1/reservations/{reservation_id}/confirm", "confirm", response_schema=schemas.RESERVATION),
    Route("POST", "/v1/reservations/{reservation_id}/cancel", "cancel", response_schema=schemas.RESERVATION),
    # Probes and scrapes are exempt from rate limiting: throttling them would hide an outage.
    Route("GET", "/healthz", "health", rate_limited=False, response_schema=schemas.HEALTH),
    Route("GET", "/metrics", "export_metrics", rate_limited=False),
)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route for this method and path, with its path parameters; 404 or 405 otherwise."""
    allowed = []
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found and route.method == method:
            return route, found.groupdict()
        if found:
            allowed.append(route.method)
    if allowed:
        raise MethodNotAllowed(f"{method} is not allowed on {path}", headers={"Allow": ", ".join(allowed)})
    raise NotFound(f"no route for {path}")


def contract() -> dict:
    """The published API contract: every route with its schemas, and the one error shape."""
    return {
        "version": API_VERSION,
        "error": to_json_schema(schemas.ERROR),
        "routes": [
            {
                "method": route.method,
                "path": route.template,
                "request": to_json_schema(route.request_schema) if route.request_schema else None,
                "response": to_json_schema(route.response_schema) if route.response_schema else None,
            }
            for route in ROUTES
        ],
    }
