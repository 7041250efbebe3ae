"""A WSGI adapter, so any WSGI server (wsgiref in development, gunicorn in production) can serve the API."""

import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from urllib.parse import parse_qs

from inventory_service.api import Api
from inventory_service.messages import Request


def request_from_environ(environ: dict) -> Request:
    """
    Translate a WSGI environ into a Request.

    Headers arrive as HTTP_* keys (except Content-Type); the body is read exactly Content-Length bytes, never
    to the end of the stream; a repeated query parameter keeps its last value.
    """
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    length = _content_length(environ)
    body = environ["wsgi.input"].read(length) if length else b""
    query = {name: values[-1] for name, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    return Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/", body, headers, query)


def _content_length(environ: dict) -> int:
    # A missing or garbled Content-Length means "no body": the JSON parser then answers 400.
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def make_wsgi_app(api_for_thread: Callable[[], Api]) -> Callable[[dict, Callable], Iterable[bytes]]:
    """
    A WSGI application that builds one Api per server thread, on that thread's first request.

    A SQLite connection belongs to the thread that opened it, so each worker thread of a threaded server
    (gunicorn --threads 8) gets its own; the factory decides what the instances share (limiter, metrics).
    """
    local = threading.local()

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not hasattr(local, "api"):
            local.api = api_for_thread()
        response = local.api.handle(request_from_environ(environ))
        body = response.encoded()
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(body)))]
        headers += list(response.headers.items())
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [body]

    return application
