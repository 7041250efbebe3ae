"""Database outages: pages answer a plain 503 that needs nothing (no account, no database) with one log line per
request, and work again when it is back; a job taken from the queue while the database is down waits for it
instead of being dropped. The database sits behind a TCP relay the test can cut, in front of the PostgreSQL
server named by ASSESSOR_TEST_DATABASE_URL."""

import logging
import os
import socket
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from assessor.domain import jobs
from assessor.domain.models import SCORED

from tests.backends import IN_CI, PG_ENV, postgresql_schema_url
from tests.ops.test_worker_processes import engine, queued_attempt, wait_for  # noqa: F401  (fixtures)


class Relay:
    """Forwards a local port to a server; `cut()` drops every connection and refuses new ones until `mend()`."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.close()
            except OSError:
                pass

    def cut(self) -> None:
        self.open = False
        for end in self.sockets:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    def mend(self) -> None:
        self.open = True


@pytest.fixture
def relayed_database():
    if not os.environ.get(PG_ENV):
        if IN_CI:
            pytest.fail(f"CI=true but {PG_ENV} is not set: .ci/run sets it", pytrace=False)
        pytest.skip(f"needs the PostgreSQL server named by {PG_ENV}")
    url, drop = postgresql_schema_url()
    parsed = make_url(url)
    relay = Relay(parsed.host or "127.0.0.1", parsed.port or 5432)
    yield parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False), relay
    relay.listener.close()
    drop()


@pytest.fixture
def database_url(relayed_database):
    return relayed_database[0]


@pytest.mark.parametrize("deployment", ["scaled"], indirect=True)
def test_a_database_outage_shows_a_plain_page_logs_one_line_each_and_heals(app, client, auth, make_user,
                                                                          relayed_database, caplog):
    relay = relayed_database[1]
    learner = make_user()
    auth.as_(learner)
    assert client.get("/learner/").status_code == 200
    relay.cut()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="assessor"):
        pages = [client.get(path) for path in ("/learner/", "/learner/", "/verify")]
    for response in pages:
        text = response.get_data(as_text=True)
        assert response.status_code == 503 and response.headers["Retry-After"] == "30"
        assert "Temporarily unavailable" in text and "Nothing you sent is lost" in text and "Traceback" not in text
    api = client.get("/api/v1/certificates/C-TEST-0001")
    assert api.status_code == 503 and api.get_json()["error"] == "Temporarily unavailable"
    records = [record for record in caplog.records if record.name.startswith("assessor")]
    assert [record.levelname for record in records if record.levelname == "ERROR"] == ["ERROR"] * len(records)
    assert all(record.exc_info is None and "unavailable on GET" in record.getMessage() for record in records)
    assert len(records) >= 3
    relay.mend()
    assert client.get("/learner/").status_code == 200


@pytest.mark.parametrize("deployment", ["scaled"], indirect=True)
def test_a_job_taken_while_the_database_is_down_waits_for_it_and_completes(app, engine, queued_attempt,
                                                                           relayed_database):
    relay = relayed_database[1]
    attempt = queued_attempt(slow=False)
    huey = jobs.make_huey(app.extensions["assessor.job_settings"])
    jobs.enqueue_attempt(huey, attempt.id)
    relay.cut()
    with jobs.ThreadConsumer(huey, workers=1, periodic=False):
        time.sleep(4)  # the worker has taken the job and keeps trying to claim the attempt
        assert huey.pending_count() == 0
        relay.mend()
        done = wait_for(engine, attempt.id, lambda a: a.finished, "finished")
    assert done.status == SCORED, done.failure_reason
