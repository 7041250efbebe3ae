"""Runs inside the sandbox with the service's tools: a mail catcher for a test run. aiosmtpd accepts every message
on the SMTP port and keeps it in memory; a small HTTP API answers the way MailHog (`/api/v2/messages`,
`/api/v2/search`) and Mailpit (`/api/v1/messages`, `/api/v1/message/ID`) do, so tests that read the mail back
work. Nothing is kept after the run.

Usage: python -I mailcatcher.py SMTP_PORT HTTP_PORT [HTTP_PORT...]
"""

import email
import email.policy
import json
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

MAX_MESSAGES = 1000


class Mailbox:
    """The messages received so far, newest first, as both APIs describe them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []

    def add(self, sender, recipients, data):
        message = email.message_from_bytes(data, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        entry = {"id": uuid.uuid4().hex, "from": sender, "to": list(recipients),
                 "data": data.decode("utf-8", "replace"), "subject": str(message.get("Subject", "")), "text": body.get_content() if body else "",
                 "headers": {key: [str(value) for value in message.get_all(key, [])] for key in message.keys()},
                 "created": datetime.now(timezone.utc).isoformat()}
        with self.lock:
            self.messages.insert(0, entry)
            del self.messages[MAX_MESSAGES:]

    def all(self):
        with self.lock:
            return list(self.messages)

    def clear(self):
        with self.lock:
            self.messages.clear()


def mailhog_message(entry):
    def address(text):
        mailbox, _, domain = text.partition("@")
        return {"Relays": None, "Mailbox": mailbox, "Domain": domain, "Params": ""}

    return {"ID": entry["id"], "From": address(entry["from"]), "To": [address(to) for to in entry["to"]],
            "Content": {"Headers": entry["headers"], "Body": entry["text"], "Size": len(entry["data"])},
            "Created": entry["created"], "Raw": {"From": entry["from"], "To": entry["to"], "Data": entry["data"]}}


def mailpit_summary(entry):
    return {"ID": entry["id"], "From": {"Name": "", "Address": entry["from"]},
            "To": [{"Name": "", "Address": to} for to in entry["to"]], "Subject": entry["subject"],
            "Created": entry["created"], "Size": len(entry["data"])}


def mailhog_search(messages, kind, query):
    fields = {"from": lambda entry: entry["from"], "to": lambda entry: " ".join(entry["to"]),
              "containing": lambda entry: entry["data"]}
    pick = fields.get(kind, fields["containing"])
    return [entry for entry in messages if query in pick(entry)]


def handler_for(mailbox):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, value, status=200):
            data = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            messages = mailbox.all()
            if parts.path == "/api/v2/search":
                messages = mailhog_search(messages, query.get("kind", "containing"), query.get("query", ""))
            if parts.path in ("/api/v2/messages", "/api/v2/search"):
                items = [mailhog_message(entry) for entry in messages]
                return self.answer({"total": len(items), "count": len(items), "start": 0, "items": items})
            if parts.path == "/api/v1/messages":
                return self.answer({"total": len(messages), "unread": len(messages), "count": len(messages),
                                    "start": 0, "messages": [mailpit_summary(entry) for entry in messages]})
            if parts.path.startswith("/api/v1/message/"):
                wanted = parts.path.rsplit("/", 1)[-1]
                found = next((entry for entry in messages if entry["id"] == wanted or wanted == "latest"), None)
                if found is None:
                    return self.answer({"error": "not found"}, 404)
                return self.answer({**mailpit_summary(found), "Text": found["text"], "HTML": ""})
            return self.answer({"error": "not found"}, 404)

        def do_DELETE(self):
            if urlsplit(self.path).path in ("/api/v1/messages", "/api/v2/messages"):
                mailbox.clear()
                return self.answer({})
            return self.answer({"error": "not found"}, 404)

    return Handler


class Catcher:
    def __init__(self, mailbox):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):
        self.mailbox.add(envelope.mail_from, envelope.rcpt_tos, envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def main():
    smtp_port, http_ports = int(sys.argv[1]), [int(port) for port in sys.argv[2:]]
    mailbox = Mailbox()
    controller = Controller(Catcher(mailbox), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    for port in http_ports:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(mailbox))
        threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
