"""A real SMTP server on loopback for the tests (aiosmtpd), keeping what it receives to be read back."""

import email
import email.policy
import socket
import threading

import pytest
from aiosmtpd.controller import Controller


class Inbox:
    """A real SMTP server; `refuse` makes it answer every message with a temporary failure."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = False
        self.arrived = threading.Condition()
        inbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
                if inbox.refuse:
                    return "451 try again later"
                with inbox.arrived:
                    inbox.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                    inbox.arrived.notify_all()
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def wait_for(self, count: int, seconds: float = 30) -> list[email.message.EmailMessage]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=seconds)
        assert len(self.messages) >= count, f"{len(self.messages)} messages arrived, expected {count}"
        return self.messages

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [message for message in self.messages if message["To"] == address]



@pytest.fixture
def inbox():
    server = Inbox()
    server.controller.start()
    yield server
    server.controller.stop()
