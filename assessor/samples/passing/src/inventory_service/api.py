"""The HTTP API as a plain object: a Request goes in, a Response comes out, whatever goes wrong inside."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from inventory_service import __version__, schemas
from inventory_service.errors import ApiError, BadRequest, RateLimited
from inventory_service.messages import Request, Response, error_response, parse_json, query_int
from inventory_service.ratelimit import RateLimiter
from inventory_service.routes import Route, match_route
from inventory_service.service import InventoryService
from inventory_service.telemetry import Metrics, log_request

IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

log = logging.getLogger("inventory_service.api")


class Api:
    """
    Routing, rate limiting, error mapping and telemetry around thin handlers.

    Handlers only parse the request and call the service; every rule lives in InventoryService. Any ApiError
    becomes the documented error body; anything else is logged with the request id and answered with a
    generic 500, so a client never sees a stack trace.
    """

    def __init__(
        self,
        service: InventoryService,
        limiter: RateLimiter | None = None,
        metrics: Metrics | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ):
        self.service = service
        self.limiter = limiter or RateLimiter()
        self.metrics = metrics or Metrics()
        self.timer = timer

    def handle(self, request: Request) -> Response:
        started = self.timer()
        request_id = request.header("X-Request-Id") or uuid.uuid4().hex
        route_name = "unmatched"
        try:
            route, params = match_route(request.method, request.path)
            route_name = route.template
            self._check_rate(route, request)
            response = getattr(self, route.handler)(request, **params)
        except ApiError as error:
            response = error_response(error)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", request.method, request.path, request_id)
            response = error_response(ApiError(f"internal error; quote request id {request_id} when reporting it"))
        response.headers["X-Request-Id"] = request_id
        self._record(request, route_name, response, self.timer() - started, request_id)
        return response

    def _check_rate(self, route: Route, request: Request) -> None:
        if not route.rate_limited:
            return
        wait = self.limiter.check(self._client(request))
        if wait > 0:
            retry_after = str(max(1, round(wait)))
            raise RateLimited("too many requests; slow down", headers={"Retry-After": retry_after})

    def _record(self, request: Request, route: str, response: Response, seconds: float, request_id: str) -> None:
        # Metrics are labelled by route template, never the raw path, so one label per SKU cannot explode them.
        self.metrics.observe(request.method, route, response.status, seconds)
        log_request(
            request_id=request_id, client_id=self._client(request), method=request.method, route=route,
            status=response.status, duration_ms=round(seconds * 1000, 3),
        )

    @staticmethod
    def _client(request: Request) -> str:
        # Set by the API gateway after authentication; requests without it share one bucket.
        return request.header("X-Client-Id") or "anonymous"

    # ---------------------------------------------------------------- handlers

    def create_item(self, request: Request) -> Response:
        """201 with the item and its Location; 409 if the SKU exists; 400/422 for a bad body."""
        payload = parse_json(request, schemas.CREATE_ITEM)
        item = self.service.create_item(payload["sku"], payload["name"], payload["quantity"])
        return Response(201, item.to_json(), {"Location": f"/v1/items/{item.sku}"})

    def list_items(self, request: Request) -> Response:
        """200 with one page in SKU order; pass `next_after` back as `after` for the next page."""
        limit = query_int(request, "limit", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        items, next_after = self.service.list_items(request.query.get("after"), limit)
        return Response(200, {"items": [item.to_json() for item in items], "next_after": next_after})

    def get_item(self, request: Request, sku: str) -> Response:
        """200 with the item and its available stock; 404 if unknown."""
        return Response(200, self.service.get_item(sku).to_json())

    def create_reservation(self, request: Request) -> Response:
        """
        201 with a new hold, or with the original one when the Idempotency-Key was seen before.

        400 without a valid Idempotency-Key; 404 for an unknown SKU; 409 when stock is short or the key was used
        with a different body. A replay carries `Idempotent-Replayed: true`.
        """
        key = request.header("Idempotency-Key")
        if key is None or not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
            raise BadRequest(
                "an Idempotency-Key header is required",
                details=[{"field": "Idempotency-Key", "problem": "must be 8 to 64 letters, digits, - or _"}],
            )
        payload = parse_json(request, schemas.CREATE_RESERVATION)
        outcome = self.service.reserve(self._client(request), key, payload)
        headers = {"Location": f"/v1/reservations/{outcome.reservation.id}"}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(201, outcome.reservation.to_json(), headers)

    def get_reservation(self, request: Request, reservation_id: str) -> Response:
        """200 with the reservation; 404 if unknown."""
        return Response(200, self.service.get_reservation(reservation_id).to_json())

    def confirm(self, request: Request, reservation_id: str) -> Response:
        """200 once the hold became a sale; 409 if it is not held any more or has expired."""
        return Response(200, self.service.confirm(reservation_id).to_json())

    def cancel(self, request: Request, reservation_id: str) -> Response:
        """200 once the stock is released (again 200 if already cancelled); 409 if confirmed or expired."""
        return Response(200, self.service.cancel(reservation_id).to_json())

    def health(self, request: Request) -> Response:
        return Response(200, {"status": "ok", "version": __version__})

    def export_metrics(self, request: Request) -> Response:
        return Response(200, self.metrics.render(), content_type="text/plain; version=0.0.4")
