"""Webhook answer time and the time from a push to "assessing".

A real HTTP server (werkzeug, threaded) in front of the app with its embedded default (SQLite database, SQLite
queue). N signed GitHub push deliveries, each for a new commit, are sent over one keep-alive connection; each is
verified, recorded, replaces the queued attempt of the previous push and is queued. Baseline in the same run: the
same number of GET /healthz (no database). Target: webhook median under 50 ms.

Then, with a worker consuming the queue, the time from a delivery to its attempt being claimed ("assessing"):
the worker's queue polling is most of it.

    .venv/bin/python bench/webhooks.py --n 200
"""

import argparse
import hashlib
import hmac
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import Session, select  # noqa: E402

from assessor.domain import accounts, jobs, webhooks  # noqa: E402
from assessor.certificates.sealing import key_encryption_key  # noqa: E402
from assessor.domain.db import init_db  # noqa: E402
from assessor.domain.models import Attempt  # noqa: E402
from assessor.web import create_app  # noqa: E402
from tests.web.rubrics import OTHER_RUBRIC  # noqa: E402

TARGET_MS = 50
SOURCE = "https://127.0.0.1/ada/capstone.git"  # never cloned while measuring answers


def make_app(folder: Path):
    rubrics = folder / "rubrics"
    rubrics.mkdir()
    (rubrics / "other.toml").write_text(OTHER_RUBRIC)
    instance = folder / "instance"
    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench-secret",
                      "DATABASE_URL": f"sqlite:///{instance / 'assessor.db'}",
                      "QUEUE_URL": f"sqlite:///{instance / 'queue.db'}", "RUBRICS_DIR": str(rubrics),
                      "WORK_ROOT": str(folder / "work"), "CACHE_DIR": str(folder / "cache"),
                      "INTERNAL_HOSTS": "127.0.0.1", "MAX_RUNNING_PER_ACCOUNT": 1000})
    init_db(app.extensions["assessor.engine"])
    return app


def serve(app) -> tuple[int, object]:
    from werkzeug.serving import make_server

    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_port, server


def signed(secret: str, commit: str) -> tuple[bytes, dict]:
    body = json.dumps({"ref": "refs/heads/main", "after": commit, "pusher": {"name": "ada"},
                       "repository": {"clone_url": SOURCE}}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-GitHub-Event": "push",
                  "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": f"sha256={signature}"}


def timed(connection, method: str, path: str, body=None, headers=None) -> tuple[float, int]:
    started = time.perf_counter()
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    response.read()
    return (time.perf_counter() - started) * 1000, response.status


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # the attempts' failed clones of the fake address are expected
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--pushes", type=int, default=10, help="deliveries timed to 'assessing'")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as folder:
        app = make_app(Path(folder))
        engine = app.extensions["assessor.engine"]
        kek = key_encryption_key(configured=None, secret_key="bench-secret")
        # Each link takes 30 deliveries a minute (the rate limit): one learner and link per 25 deliveries.
        links = []
        with Session(engine) as session:
            for number in range(options.n // 25 + 2):  # the last one is kept for the second part
                learner = accounts.create_user(session, email=f"learner{number}@example.org",
                                               password="correct horse battery", role="learner")
                session.commit()
                link, secret = webhooks.create_link(
                    session, user=learner, rubric_id="other-capstone", source=SOURCE, provider="github",
                    branch="main", tag_pattern=None, policy=app.extensions["assessor.job_settings"].source_policy,
                    kek=kek)
                links.append((link.id, secret))
        port, server = serve(app)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        timed(connection, "GET", "/healthz")  # warm
        baseline = [timed(connection, "GET", "/healthz")[0] for _ in range(options.n)]
        answers = []
        for number in range(options.n):
            link_id, secret = links[number % (len(links) - 1)]
            body, headers = signed(secret, uuid.uuid4().hex + uuid.uuid4().hex[:8])
            elapsed, status = timed(connection, "POST", f"/hooks/{link_id}", body, headers)
            assert status == 202, status
            answers.append(elapsed)
        median, base = statistics.median(answers), statistics.median(baseline)
        p95 = sorted(answers)[int(0.95 * len(answers)) - 1]
        print(f"GET /healthz (baseline)      median {base:6.1f} ms  (n={options.n})")
        print(f"POST /hooks/<id> (signed)    median {median:6.1f} ms  p95 {p95:6.1f} ms  x{median / base:.1f} the "
              f"baseline  target < {TARGET_MS} ms: {'met' if median < TARGET_MS else 'MISSED'}")

        huey = jobs.make_huey(app.extensions["assessor.job_settings"])
        consumer = jobs.ThreadConsumer(huey, workers=1, periodic=False).start()
        try:
            waits = []
            link_id, secret = links[-1]
            for _ in range(options.pushes):
                body, headers = signed(secret, uuid.uuid4().hex + uuid.uuid4().hex[:8])
                started = time.perf_counter()
                connection.request("POST", f"/hooks/{link_id}", body=body, headers=headers)
                response = connection.getresponse()
                answer = json.loads(response.read())
                assert "attempt" in answer, answer
                attempt_id = answer["attempt"]
                while True:
                    with Session(engine) as session:
                        attempt = session.get(Attempt, attempt_id)
                        if attempt.status != "queued" or attempt.started_at is not None:
                            break
                    time.sleep(0.005)
                waits.append((time.perf_counter() - started) * 1000)
        finally:
            consumer.stop()
            server.shutdown()
        print(f"push to 'assessing'          median {statistics.median(waits):6.0f} ms  "
              f"max {max(waits):6.0f} ms  (n={options.pushes}, one worker polling the SQLite queue)")
        with Session(engine) as session:
            kept = len(session.exec(select(Attempt)).all())
        print(f"attempts recorded: {kept} (each push replaced the queued one before it)")


if __name__ == "__main__":
    main()
