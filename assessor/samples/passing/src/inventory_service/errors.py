"""Errors the API turns into its one documented error body."""


class ApiError(Exception):
    """
    An error with an HTTP status, a stable machine-readable code and optional per-field details.

    Every error response has the same body: {"error": {"code", "message", "details"}}. Clients should branch
    on `code`, which never changes within an API version; `message` is for people and may be reworded.
    """

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def to_body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_failed"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class InvalidState(Conflict):
    code = "invalid_state"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"


class ReservationExpired(Conflict):
    code = "reservation_expired"
