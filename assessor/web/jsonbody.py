"""A request's JSON body read as untrusted data: malformed, too deep or not the expected shape is None, never a 500."""

from flask import request


def json_body() -> object | None:
    """The decoded JSON body, or None when it is missing, malformed or nested too deep to decode."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None
