"""The WSGI adapter and the command line, exercised without opening a socket."""

import io
import json
import threading

from inventory_service.__main__ import main
from inventory_service.app import create_wsgi_application
from inventory_service.repository import connect
from inventory_service.wsgi import make_wsgi_app, request_from_environ


def environ(method, path, body=b"", query="", **extra):
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), **extra,
    }


def call(app, env):
    captured = {}

    def start_response(status, headers):
        captured["status"], captured["headers"] = status, dict(headers)

    body = b"".join(app(env, start_response))
    return captured["status"], captured["headers"], body


def test_a_wsgi_request_reaches_the_api_and_back(client):
    app = make_wsgi_app(lambda: client.api)
    body = json.dumps({"sku": "WIDGET-1", "name": "Widget", "quantity": 2}).encode()
    status, headers, payload = call(app, environ("POST", "/v1/items", body, CONTENT_TYPE="application/json"))
    assert status == "201 Created"
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(payload))
    assert json.loads(payload)["sku"] == "WIDGET-1"


def test_headers_and_query_strings_are_translated(client):
    env = environ("GET", "/v1/items", query="limit=5&after=A", HTTP_X_REQUEST_ID="abc123", CONTENT_TYPE="")
    request = request_from_environ(env)
    assert request.query == {"limit": "5", "after": "A"}
    assert request.header("X-Request-Id") == "abc123"
    assert request.header("Content-Type") is None


def test_a_bad_content_length_is_read_as_an_empty_body():
    request = request_from_environ(environ("POST", "/v1/items", CONTENT_LENGTH="lots"))
    assert request.body == b""


def test_metrics_are_served_as_prometheus_text(client):
    status, headers, payload = call(make_wsgi_app(lambda: client.api), environ("GET", "/metrics"))
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("text/plain")
    assert payload.startswith(b"# TYPE http_requests_total counter")


def test_each_server_thread_gets_its_own_api_built_once(client):
    built = []

    def factory():
        built.append(threading.get_ident())
        return client.api

    app = make_wsgi_app(factory)
    call(app, environ("GET", "/healthz"))
    call(app, environ("GET", "/healthz"))
    thread = threading.Thread(target=call, args=(app, environ("GET", "/healthz")))
    thread.start()
    thread.join()
    assert len(built) == 2
    assert built[0] != built[1]


def test_the_production_application_serves_from_the_database_file(tmp_path):
    app = create_wsgi_application(str(tmp_path / "prod.sqlite3"))
    body = json.dumps({"sku": "WIDGET-1", "name": "Widget", "quantity": 2}).encode()
    assert call(app, environ("POST", "/v1/items", body))[0] == "201 Created"
    status, _, payload = call(app, environ("GET", "/v1/items/WIDGET-1"))
    assert status == "200 OK"
    assert json.loads(payload)["available"] == 2


def test_the_serve_command_builds_a_server_for_the_api(tmp_path):
    calls = []

    class FakeServer:
        def __init__(self, host, port, app):
            calls.append((host, port, callable(app)))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def serve_forever(self):
            calls.append("served")

    database = str(tmp_path / "cli.sqlite3")
    assert main(["--database", database, "serve", "--port", "9999"], server_factory=FakeServer) == 0
    assert calls == [("127.0.0.1", 9999, True), "served"]


def test_the_check_stock_command_passes_when_the_books_balance(tmp_path, capsys):
    assert main(["--database", str(tmp_path / "cli.sqlite3"), "check-stock"]) == 0
    assert capsys.readouterr().out.strip() == "stock consistent"


def test_the_check_stock_command_fails_and_names_drifted_items(tmp_path, capsys):
    database = str(tmp_path / "cli.sqlite3")
    connection = connect(database)
    connection.execute("INSERT INTO items (sku, name, on_hand, reserved, created_at) VALUES ('DRIFT-1', 'x', 5, 2, 0)")
    connection.close()
    assert main(["--database", database, "check-stock"]) == 1
    assert capsys.readouterr().out.splitlines() == ["DRIFT-1: reserved=2 but open holds=0", "1 item(s) drifted"]


def test_the_expire_command_reports_how_many_holds_it_released(tmp_path, capsys):
    assert main(["--database", str(tmp_path / "cli.sqlite3"), "expire-holds"]) == 0
    assert capsys.readouterr().out.strip() == "expired 0 reservation(s)"
