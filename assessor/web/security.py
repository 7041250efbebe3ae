"""Security headers, a session cookie that is Secure whenever the request came over https, friendly error pages."""

import logging

import redis.exceptions

from flask import (
    Flask, Response, current_app, has_request_context, jsonify, make_response, redirect, render_template, request,
)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from assessor.domain.db import DATABASE_OUTAGES

logger = logging.getLogger("assessor.web")
# Errors that mean a server is down, not that the code is wrong: a short 503 and one log line.
OUTAGES = (*DATABASE_OUTAGES, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back, reload the page and try again."),
    403: ("Not allowed", "Your account does not have access to this page."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Method not allowed", "This page cannot be used that way. Use the links and buttons on the site."),
    413: ("Too large", "What you sent is larger than this site accepts."),
    429: ("Too many requests", "Slow down and try again in a few minutes."),
    500: ("Something went wrong", "An unexpected error happened on our side. It has been logged; please try again."),
}
UNAVAILABLE = ("Temporarily unavailable", "A server this site needs is not answering. Nothing you sent is lost; "
                                          "try again in a minute.")


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, plus the Secure flag on any request served over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        return has_request_context() and request.is_secure


# The largest id any table can hold on either database (PostgreSQL's integer): a larger one is simply not found.
MAX_ID = 2**31 - 1
# Endpoints that take a file upload; every other form is text only.
UPLOAD_ENDPOINTS = frozenset({"public.verify_upload", "public.verify_api", "admin_modules.upload"})


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: ids past what the database stores are a 404, not a database error."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def install_converters(app: Flask) -> None:
    """Before any blueprint is registered, so every route's int converter is the bounded one."""
    app.url_map.converters["int"] = IdConverter


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.before_request(_refuse_odd_input)
    if app.config.get("PROXY_FIX"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def _refuse_odd_input():
    """Input no page uses: a NUL character (PostgreSQL refuses it in text), or a file sent to a text-only form.
    A clear 400 rather than a crash further in."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        return None
    if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                      for key, value in request.args.items(multi=True)):
        return _render_error(400, "The address contains a NUL character, which no page accepts.")
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in ("multipart/form-data",
                                                                             "application/x-www-form-urlencoded"):
        if request.files:
            return _render_error(400, "This form takes text only, not files. Go back and fill in the fields.")
        if any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
            return _render_error(400, "A field contains a NUL character, which is not accepted. Remove it and "
                                      "send the form again.")
    return None


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if response.mimetype in ("text/html", "application/json"):
        headers.setdefault("Cache-Control", "no-store")
    return response


def _render_error(code: int, detail: str | None = None):
    title, message = MESSAGES.get(code, (f"Error {code}", "The request could not be completed."))
    if request.path.startswith("/api/"):  # programs get JSON, never an HTML page
        return jsonify({"status": "error", "error": title, "reason": detail or message}), code
    return render_template("errors/error.html", code=code, title=title, message=detail or message), code


def _csrf_error(error: CSRFError):
    return _render_error(400, "This form was missing its security token or the token expired. Go back, reload "
                              "the page and send the form again.")


def _http_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error
    if error.code == 405 and request.method == "GET" and not request.path.startswith(("/api/", "/hooks/", "/lti/")):
        # A form's address opened again (a reload after an error, a bookmark, the back button): the page the
        # form lives on, the nearest address above it that answers GET.
        page = _nearest_page(request.path)
        if page is not None:
            return redirect(page)
    return _render_error(error.code)


def _nearest_page(path: str) -> str | None:
    adapter = current_app.url_map.bind("localhost")
    parts = path.rstrip("/").split("/")
    while len(parts) > 1:
        parts.pop()
        for candidate in ("/".join(parts) or "/", "/".join(parts) + "/"):
            try:
                adapter.match(candidate, method="GET")
            except HTTPException:
                continue
            return candidate
    return None


def _unexpected_error(error: Exception):
    if isinstance(error, OUTAGES):
        # One line per failed request while a server is down, not a traceback each time.
        logger.error("%s unavailable on %s %s: %s", _server_of(error), request.method, request.path,
                     _first_line(error))
        response = _render_plain(503, *UNAVAILABLE)
        response.headers["Retry-After"] = "30"
        return response
    logger.exception("unhandled error on %s %s", request.method, request.path)
    try:
        return _render_error(500)
    except Exception:  # the page itself needs what failed (the account behind the navigation, say)
        return _render_plain(500, *MESSAGES[500])


def _render_plain(code: int, title: str, message: str) -> Response:
    """The error page that renders with the database and the queue down."""
    if request.path.startswith("/api/"):
        return make_response(jsonify({"status": "error", "error": title, "reason": message}), code)
    # Straight from the template, without the context processors: the account one would ask the database.
    page = current_app.jinja_env.get_template("errors/plain.html").render(title=title, message=message)
    return make_response(page, code)


def _server_of(error: Exception) -> str:
    return "queue" if type(error).__module__.startswith(("redis", "huey")) else "database"


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"
