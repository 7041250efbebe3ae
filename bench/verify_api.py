"""Verify API throughput: requests/second of GET /api/v1/certificates/<id> against a bare Flask endpoint
(a constant JSON body, no database) on the same app and the same waitress server on 127.0.0.1.

Target: the verify API reaches at least 70% of the bare endpoint. A bounded loop: N requests per endpoint over
C keep-alive client connections, after a warm-up; the certificate is a real one (approved attempt, signed,
rendered, sealed) in a temporary instance.
"""

import argparse
import http.client
import logging
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_app(root: Path):
    from sqlmodel import Session

    from assessor.domain import accounts, issuing
    from assessor.domain.db import init_db, utcnow
    from assessor.domain.models import Attempt, Submission
    from assessor.engine.rubric import find_rubric
    from assessor.domain.submissions import snapshot_rubric, store_report
    from assessor.web import create_app
    from tests.web.certificate_helpers import approve
    from tests.web.conftest import build_report
    from tests.web.rubrics import TEST_RUBRIC

    rubrics = root / "rubrics"
    rubrics.mkdir()
    (rubrics / "test-capstone.toml").write_text(TEST_RUBRIC)
    instance = root / "instance"
    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "RUBRICS_DIR": str(rubrics),
                      "DATABASE_URL": f"sqlite:///{instance / 'assessor.db'}", "WORK_ROOT": str(root / "work"),
                      "PUBLIC_URL": "https://assessor.example.org"})
    engine = app.extensions["assessor.engine"]
    init_db(engine)
    with Session(engine, expire_on_commit=False) as db:
        learner = accounts.create_user(db, email="l@example.org", password="correct horse battery", name="Ada")
        learner.email_verified_at = utcnow()  # certificates name a confirmed address
        mentor = accounts.create_user(db, email="m@example.org", password="correct horse battery", role="mentor",
                                      name="Mona", courses=["test-capstone"])
        rubric = find_rubric("test-capstone", rubrics)
        snapshot_rubric(db, rubric=rubric)
        submission = Submission(user_id=learner.id, rubric_id=rubric.id, course=rubric.course)
        db.add(submission)
        db.flush()
        stored, _ = store_report(db, report=build_report(rubric, commit="c" * 40))
        attempt = Attempt(submission_id=submission.id, user_id=learner.id, rubric_id=rubric.id,
                          rubric_version=rubric.version, rubric_sha256=rubric.sha256, course=rubric.course,
                          source_url="https://git.example.org/l/capstone.git", status="scored", commit="c" * 40,
                          report_id=stored.id)
        db.add(attempt)
        db.commit()
        approve(db, app, attempt, mentor)
        certificate = issuing.issue_certificate(db, attempt_id=attempt.id,
                                                settings=issuing.settings_from_config(app.config))

    @app.route("/bench/bare")
    def bare():
        return {"status": "ok"}

    return app, certificate.public_id


def hammer(port: int, path: str, requests: int, connections: int) -> float:
    """Requests per second for `requests` GETs of `path` spread over `connections` keep-alive connections."""
    per = requests // connections
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(per):
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(response.status)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{path}: {len(errors)} non-200 responses, e.g. {errors[0]}")
    return per * connections / elapsed


def _serve_quietly(server) -> None:
    try:
        server.run()
    except OSError:  # the server was closed under the loop at the end of the run
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=2000, help="requests per endpoint per round")
    parser.add_argument("-c", "--connections", type=int, default=4, help="concurrent keep-alive connections")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    parser.add_argument("--threads", type=int, default=4, help="waitress threads")
    args = parser.parse_args()

    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" while saturated is the point

    with tempfile.TemporaryDirectory() as tmp:
        app, public_id = build_app(Path(tmp))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        server = create_server(app, host="127.0.0.1", port=port, threads=args.threads)
        thread = threading.Thread(target=_serve_quietly, args=(server,), daemon=True)
        thread.start()
        api = f"/api/v1/certificates/{public_id}"
        # The client runs in a process of its own, so it does not compete with the server for the GIL.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            try:
                pool.apply(hammer, (port, "/bench/bare", 200, args.connections))  # warm-up
                pool.apply(hammer, (port, api, 200, args.connections))
                bare_best = api_best = 0.0
                for _ in range(args.rounds):
                    bare_best = max(bare_best, pool.apply(hammer, (port, "/bench/bare", args.requests, args.connections)))
                    api_best = max(api_best, pool.apply(hammer, (port, api, args.requests, args.connections)))
            finally:
                server.close()
    ratio = api_best / bare_best
    print(f"bare Flask endpoint   {bare_best:8.0f} req/s")
    print(f"verify API            {api_best:8.0f} req/s")
    print(f"ratio                 {ratio:8.1%}  (target >= 70%: {'met' if ratio >= 0.7 else 'NOT met'})")


if __name__ == "__main__":
    main()
