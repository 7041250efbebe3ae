"""Requests and responses as plain values, and the helpers that read a request safely at the edge."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inventory_service.errors import ApiError, BadRequest, ValidationFailed
from inventory_service.validation import Schema, validate


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """Header lookup ignoring case, as HTTP requires."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.content_type == "application/json":
            return json.dumps(self.body).encode()
        return str(self.body).encode()


def error_response(error: ApiError) -> Response:
    return Response(error.status, error.to_body(), dict(error.headers))


def parse_json(request: Request, schema: Schema) -> dict:
    """
    The request body as a JSON object that conforms to `schema`.

    Malformed JSON (or bytes that are not UTF-8) is a 400. A well-formed body that breaks the schema is a 422
    whose details list every problem at once, so a client can fix them all in one round trip.
    """
    try:
        payload = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest("the request body must be a JSON object") from error
    problems = validate(payload, schema)
    if problems:
        raise ValidationFailed(f"the request does not match {schema.name}", details=problems)
    return payload


def query_int(request: Request, name: str, default: int, maximum: int) -> int:
    """A whole-number query parameter from 1 to `maximum`, or `default` when absent; 422 otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValidationFailed(
            f"query parameter {name} is invalid",
            details=[{"field": name, "problem": f"must be a whole number from 1 to {maximum}"}],
        )
    return int(raw)
