"""The sandbox's mail catcher, run in-process: real SMTP in through aiosmtpd, read back through the HTTP APIs tests
use (MailHog's v2 messages and search, Mailpit's v1 list and message), and cleared."""

import json
import smtplib
import socket
import threading
import urllib.error
import urllib.request
from email.message import EmailMessage
from http.server import ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from assessor.engine.services.mailcatcher import Catcher, Mailbox, handler_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def catcher():
    mailbox = Mailbox()
    controller = Controller(Catcher(mailbox), hostname="127.0.0.1", port=free_port())
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(mailbox))
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield controller.port, http.server_address[1]
    http.shutdown()
    controller.stop()


def send(smtp_port: int, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "shop@example.org", to, subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as server:
        server.send_message(message)


def get(http_port: int, path: str, method: str = "GET") -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_mail_is_caught_and_read_back_as_mailhog_and_mailpit_describe_it(catcher):
    smtp_port, http_port = catcher
    send(smtp_port, "stock@example.org", "Out of stock: pen", "pen is out of stock")
    send(smtp_port, "ada@example.org", "Welcome", "hello Ada")

    status, hog = get(http_port, "/api/v2/messages")
    assert status == 200 and hog["total"] == 2
    newest = hog["items"][0]
    assert newest["Raw"]["From"] == "shop@example.org" and newest["Raw"]["To"] == ["ada@example.org"]
    assert newest["Content"]["Headers"]["Subject"] == ["Welcome"] and newest["To"][0]["Domain"] == "example.org"
    _, found = get(http_port, "/api/v2/search?kind=to&query=stock@example.org")
    assert [item["Content"]["Headers"]["Subject"] for item in found["items"]] == [["Out of stock: pen"]]
    _, found = get(http_port, "/api/v2/search?kind=containing&query=hello")
    assert found["total"] == 1

    _, pit = get(http_port, "/api/v1/messages")
    assert [message["Subject"] for message in pit["messages"]] == ["Welcome", "Out of stock: pen"]
    assert pit["messages"][1]["To"] == [{"Name": "", "Address": "stock@example.org"}]
    _, one = get(http_port, f"/api/v1/message/{pit['messages'][1]['ID']}")
    assert one["Text"].strip() == "pen is out of stock"
    assert get(http_port, "/api/v1/message/latest")[1]["Subject"] == "Welcome"
    assert get(http_port, "/api/v1/message/nope")[0] == 404
    assert get(http_port, "/elsewhere")[0] == 404

    assert get(http_port, "/api/v1/messages", method="DELETE")[0] == 200
    assert get(http_port, "/api/v2/messages")[1]["total"] == 0
