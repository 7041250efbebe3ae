"""Probes, metrics, request ids and JSON log lines, and the admins' jobs page, on every backend available."""

import io
import json
import logging
from datetime import timedelta

from sqlmodel import select

from assessor import logs
from assessor.domain.db import utcnow
from assessor.domain.models import FAILED, QUEUED, RUNNING, Attempt, Event
from assessor.web import create_app

from tests.web.conftest import csrf_token


def test_healthz_and_readyz_answer_when_the_database_and_queue_do(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "queue": "ok", "disk": "ok"}


def test_readyz_is_red_with_the_reason_when_redis_is_unreachable(app_config):
    app = create_app({**app_config, "QUEUE_URL": "redis://127.0.0.1:1/0"})  # nothing listens on port 1
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"] == {"database": "ok", "queue": "unreachable", "disk": "ok"}
    assert "queue: ConnectionError" in body["reason"]
    assert app.test_client().get("/healthz").status_code == 200  # the process is up all the same


def test_readyz_is_red_when_the_database_is_unreachable(app_config):
    app = create_app({**app_config, "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unreachable"


def test_metrics_expose_http_latency_queue_depth_and_attempts(app, client, make_user, make_attempt):
    app.config["METRICS_PUBLIC"] = True
    make_attempt(make_user(), status=FAILED, failure_reason="x")
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'assessor_http_request_duration_seconds_count{endpoint="/healthz",method="GET",status="200"} 1.0' in text
    assert "assessor_queue_depth 0.0" in text
    assert 'assessor_attempts{status="failed"} 1.0' in text
    for name in ("assessor_assessments_total", "assessor_stage_duration_seconds", "assessor_sandbox_kills_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in text


def test_each_app_has_its_own_registry(app_config):
    first, second = (create_app({**app_config, "METRICS_PUBLIC": True}) for _ in range(2))
    first.test_client().get("/healthz")
    assert "/healthz" in first.test_client().get("/metrics").get_data(as_text=True)
    assert "/healthz" not in second.test_client().get("/metrics").get_data(as_text=True)


def test_metrics_can_require_a_token(app_config):
    client = create_app({**app_config, "METRICS_TOKEN": "s3cret"}).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_every_log_line_carries_the_request_id_as_json(app):
    stream = io.StringIO()
    handler = logs.handler("json", stream)
    logging.getLogger().addHandler(handler)
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)

    @app.get("/_log_probe")
    def probe():
        logging.getLogger("assessor.test").info("inside the request")
        with logs.attempt_context(42):
            logging.getLogger("assessor.test").info("inside an attempt")
        return "ok"

    try:
        response = app.test_client().get("/_log_probe", headers={"X-Request-ID": "abc-123"})
        generated = app.test_client().get("/_log_probe")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(previous)
    assert response.headers["X-Request-ID"] == "abc-123"
    assert len(generated.headers["X-Request-ID"]) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line["logger"] == "assessor.test"]
    assert mine[0]["request_id"] == "abc-123" and mine[0]["attempt_id"] is None
    assert mine[1]["request_id"] == "abc-123" and mine[1]["attempt_id"] == 42
    assert mine[2]["request_id"] == generated.headers["X-Request-ID"]
    assert all({"time", "level", "message"} <= set(line) for line in lines)


def test_a_bad_request_id_header_is_replaced(client):
    bad = "spaces and <script>" + "x" * 80
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["X-Request-ID"] != bad and len(response.headers["X-Request-ID"]) == 32


def test_the_jobs_page_shows_the_queue_and_requeues_dead_letters(app, client, auth, make_user, make_attempt, db):
    auth.as_(make_user("admin"))
    learner = make_user()
    dead = make_attempt(learner, status=FAILED, failure_reason="could not connect to git.example.org (gave up after 3 tries)")
    dead.dead_letter, dead.tries = True, 3
    learners_fault = make_attempt(learner, status=FAILED, failure_reason="repository not found")
    running = make_attempt(learner, status=RUNNING)
    db.add(dead)
    db.commit()
    html = client.get("/admin/jobs").get_data(as_text=True)
    assert 'id="queue-depth">0<' in html
    assert "gave up after 3 tries" in html and "repository not found" in html and f"#{running.id}" in html
    dead_table = html.split('id="dead-letters"')[1].split("</table>")[0]
    assert f"#{dead.id}" in dead_table and f"#{learners_fault.id}" not in dead_table

    assert client.post(f"/admin/jobs/{dead.id}/requeue").status_code == 400  # no CSRF token
    response = client.post(f"/admin/jobs/{dead.id}/requeue", data={"csrf_token": csrf_token(client, "/admin/jobs")})
    assert response.status_code == 302
    db.expire_all()
    again = db.get(Attempt, dead.id)
    assert again.status == QUEUED and not again.dead_letter and again.tries == 0 and again.failure_reason is None
    assert db.exec(select(Event.kind).where(Event.attempt_id == dead.id).order_by(Event.id.desc())).first() \
        == "requeued_by_admin"
    from assessor.web.extensions import huey

    with app.app_context():
        assert huey().pending_count() == 1
    token = csrf_token(client, "/admin/jobs")
    assert client.post(f"/admin/jobs/{learners_fault.id}/requeue", data={"csrf_token": token}).status_code == 404


def test_only_admins_see_the_jobs_page(client, auth, make_user):
    auth.as_(make_user("mentor"))
    assert client.get("/admin/jobs").status_code == 403


def test_the_jobs_page_lists_queued_attempts_without_a_job_and_queues_them_again(app, client, auth, make_user,
                                                                                 make_attempt, db):
    from assessor.domain.jobs import enqueue_attempt, queued_attempt_ids
    from assessor.web.extensions import huey

    auth.as_(make_user("admin"))
    learner = make_user()
    lost, waiting, fresh = (make_attempt(learner, status=QUEUED) for _ in range(3))
    for attempt in (lost, waiting):
        attempt.created_at = utcnow() - timedelta(minutes=10)
        db.add(attempt)
    db.commit()
    with app.app_context():
        huey().flush()
        enqueue_attempt(huey(), waiting.id)
    table = client.get("/admin/jobs").get_data(as_text=True).split('id="orphans"')[1].split("</table>")[0]
    assert f"#{lost.id}" in table and f"#{waiting.id}" not in table and f"#{fresh.id}" not in table
    token = csrf_token(client, "/admin/jobs")
    assert client.post(f"/admin/jobs/{lost.id}/enqueue", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert queued_attempt_ids(huey()) == {lost.id, waiting.id}
    assert "Every queued attempt has its job." in client.get("/admin/jobs").get_data(as_text=True)
    finished = make_attempt(learner, status=FAILED)
    assert client.post(f"/admin/jobs/{finished.id}/enqueue", data={"csrf_token": token}).status_code == 404


def test_low_disk_space_makes_assessments_wait_and_is_shown_to_the_admin(app, client, auth, make_user, make_attempt,
                                                                        db):
    import time

    from assessor.domain import jobs
    from assessor.web.extensions import huey

    attempt = make_attempt(make_user(), status=QUEUED)
    app.config["MIN_FREE_DISK_MB"] = 10**9  # more than any disk has
    settings = jobs.settings_from_config(app.config)
    queue = jobs.make_huey(settings)
    queue.flush()
    jobs.enqueue_attempt(queue, attempt.id)
    with jobs.ThreadConsumer(queue, workers=1, periodic=False):
        deadline = time.monotonic() + 20
        while queue.pending_count() and time.monotonic() < deadline:  # taken, found no room, put back for later
            time.sleep(0.1)
        time.sleep(0.5)
    db.expire_all()
    waiting = db.get(Attempt, attempt.id)
    assert waiting.status == QUEUED and waiting.tries == 0 and waiting.failure_reason is None
    assert attempt.id in jobs.queued_attempt_ids(queue)  # its job is scheduled again, not dropped
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["disk"] == "low"
    assert "MB needed" in ready.get_json()["reason"] and str(app.config["WORK_ROOT"]) not in ready.get_json()["reason"]
    auth.as_(make_user("admin"))
    assert "assessments wait until there is room" in client.get("/admin/jobs").get_data(as_text=True)
    app.config["MIN_FREE_DISK_MB"] = 1
    assert client.get("/readyz").get_json()["checks"]["disk"] == "ok"
    with app.app_context():
        huey().flush()
