"""`assessor serve` behind a real proxy hop: a second local process forwards with X-Forwarded-* headers, and
waitress (told which proxy to trust) passes them on, so cookies are Secure, HSTS is sent and each client keeps
its own address; the same headers from anyone else are ignored."""

import http.client
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from assessor.domain.db import make_engine
from assessor.domain.models import RateCounter

PROXY = textwrap.dedent("""
    import http.client, http.server, sys
    upstream_port, client_address = int(sys.argv[1]), sys.argv[2]

    class Forward(http.server.BaseHTTPRequestHandler):
        def _forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {key: value for key, value in self.headers.items() if key.lower() != "host"}
            headers.update({"X-Forwarded-For": client_address, "X-Forwarded-Proto": "https",
                            "X-Forwarded-Host": "assessor.example.org", "Host": "assessor.example.org"})
            connection = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        do_GET = do_POST = _forward
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    print(server.server_port, flush=True)
    server.serve_forever()
""")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


@pytest.fixture
def served(tmp_path):
    """`assessor serve` with PROXY_FIX on, trusting a proxy at the given address; yields (port, instance)."""
    processes = []

    def start(trusted: str) -> tuple[int, Path]:
        instance = tmp_path / f"instance-{trusted}"
        port = free_port()
        env = {**{key: value for key, value in os.environ.items() if not key.startswith("ASSESSOR_")},
               "ASSESSOR_INSTANCE": str(instance), "ASSESSOR_PROXY_FIX": "true", "ASSESSOR_TRUSTED_PROXY": trusted,
               "ASSESSOR_WORK_ROOT": str(tmp_path / "work")}
        process = subprocess.Popen([sys.executable, "-c", "from assessor.cli import main; main()", "serve", "--host",
                                    "127.0.0.1", "--port", str(port), "--workers", "0"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        processes.append(process)
        wait_for(port)
        return port, instance

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def start_proxy(upstream: int, client_address: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-c", PROXY, str(upstream), client_address], stdout=subprocess.PIPE,
                               text=True)
    return process, int(process.stdout.readline())


def get(port: int, path: str, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    return response


def post(port: int, path: str, body: str, cookie: str):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # Over HTTPS Flask-WTF also wants a same-site Referer, as a browser sends.
    connection.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                          "Cookie": cookie,
                                                          "Referer": "https://assessor.example.org/login"})
    response = connection.getresponse()
    return response, response.read().decode()


def test_behind_the_trusted_proxy_cookies_are_secure_hsts_is_sent_and_clients_keep_their_address(served):
    port, instance = served("127.0.0.1")
    proxy, proxy_port = start_proxy(port, "203.0.113.7")
    try:
        page = get(proxy_port, "/login")
        assert page.getheader("Strict-Transport-Security") == "max-age=31536000"
        cookie = page.getheader("Set-Cookie")
        assert cookie and "; Secure" in cookie
        # A failed sign-in is counted for the client's own address, not the proxy's.
        connection = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
        connection.request("GET", "/login")
        response = connection.getresponse()
        html = response.read().decode()
        token = html.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        session_cookie = response.getheader("Set-Cookie").split(";")[0]
        answer, html = post(proxy_port, "/login", f"email=nobody%40example.org&password=wrongwrongwrong&csrf_token={token}",
                         session_cookie)
        assert answer.status == 400 and "wrong e-mail address or password" in html
    finally:
        proxy.terminate()
        proxy.wait()
    engine = make_engine(f"sqlite:///{instance / 'assessor.db'}")
    with Session(engine) as session:
        keys = [row.key for row in session.exec(select(RateCounter))]
    engine.dispose()
    assert keys == ["login:ip:203.0.113.7"]


def test_forwarded_headers_from_anyone_but_the_trusted_proxy_are_ignored(served):
    port, _instance = served("192.0.2.1")  # the proxy is elsewhere: this test's requests are not from it
    page = get(port, "/login", {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert page.getheader("Strict-Transport-Security") is None
    assert "Secure" not in (page.getheader("Set-Cookie") or "")
