"""Operations: `/healthz` (the process answers), `/readyz` (the database and the queue answer), `/metrics`
(Prometheus), a request id on every request and log line, and the admins' jobs page (queue depth, running and
failed jobs, the dead-letter list with re-queue)."""

import logging
import re
import hmac
import time
import uuid
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, text
from sqlmodel import select

from assessor import logs
from assessor.domain.db import utcnow
from assessor.domain.metrics import Metrics
from assessor.domain.models import FAILED, QUEUED, RUNNING, Attempt
from assessor.domain.submissions import dead_letters, requeue_dead_letter
from assessor.web.extensions import db, engine, huey, role_required

logger = logging.getLogger("assessor.web")
bp = Blueprint("ops", __name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PROBE_PATHS = ("/healthz", "/readyz", "/metrics")
# A queued attempt this old without a job is shown to the admin as one to queue again.
ORPHAN_AFTER_SECONDS = 120


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app: Flask) -> None:
    metrics = app.extensions["assessor.metrics"] = Metrics()
    metrics.watch(queue_depth=lambda: _queue_depth(app), attempts_by_status=lambda: _attempts_by_status(app))
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    app.register_blueprint(bp)
    from assessor.web.extensions import csrf

    for view in ("healthz", "readyz", "metrics"):
        csrf.exempt(f"{bp.name}.{view}")


def _queue_depth(app: Flask) -> int:
    with app.app_context():
        return huey().pending_count()


def _attempts_by_status(app: Flask) -> dict[str, int]:
    from sqlmodel import Session

    with Session(app.extensions["assessor.engine"]) as session:
        return dict(session.exec(select(Attempt.status, func.count()).group_by(Attempt.status)).all())


# ---------------------------------------------------------------------------------------------------------------
# Request ids and latency
# ---------------------------------------------------------------------------------------------------------------

def _start_request() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_id_token = logs.request_id.set(g.request_id)
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    started = g.get("request_started")
    if started is not None:
        # Every label takes values from a fixed set, so junk requests cannot grow the registry.
        endpoint = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        status = str(response.status_code) if 100 <= response.status_code <= 599 else "other"
        current_app.extensions["assessor.metrics"].http_seconds.labels(
            method, endpoint, status).observe(time.perf_counter() - started)
    return response


def _end_request(_error=None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        try:
            logs.request_id.reset(token)
        except ValueError:  # set in another context (a streamed response): nothing to restore
            logs.request_id.set(None)


# ---------------------------------------------------------------------------------------------------------------
# Probes and metrics
# ---------------------------------------------------------------------------------------------------------------

@bp.route("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz():
    checks, problems = {}, []
    try:
        with engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = "unreachable"
        problems.append(f"database: {type(error).__name__}: {_first_line(error)}")
    try:
        huey().storage.queue_size()
        checks["queue"] = "ok"
    except Exception as error:
        checks["queue"] = "unreachable"
        problems.append(f"queue: {type(error).__name__}: {_first_line(error)}")
    space = _disk_room()
    checks["disk"] = "ok" if space.enough else "low"
    if not space.enough:  # assessments wait on this machine until there is room
        problems.append(f"disk: {space.describe()}")
    embedded = current_app.extensions.get("assessor.embedded_worker")
    if embedded is not None:  # `serve` with its own worker: no worker, no assessments
        status = embedded.status()
        checks["worker"] = status["state"]
        if status["state"] != "running":
            problems.append(f"worker: exited with {status['last_exit']}; being started again "
                            f"(restart {status['restarts'] + 1})")
    if problems:
        logger.warning("not ready: %s", "; ".join(problems))
        return jsonify(status="unavailable", checks=checks, reason="; ".join(problems)), 503
    return jsonify(status="ok", checks=checks)


def _disk_room():
    from assessor.domain import diskspace

    return diskspace.room(Path(current_app.config["WORK_ROOT"]),
                          needed_mb=int(current_app.config.get("MIN_FREE_DISK_MB", 1024)))


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else ""


@bp.route("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            abort(401)
    elif not current_app.config.get("METRICS_PUBLIC"):
        # Closed unless the operator opens it on purpose (a scraper on a private network).
        abort(404)
    body = generate_latest(current_app.extensions["assessor.metrics"].registry)
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0], headers={"Content-Type": CONTENT_TYPE_LATEST})


# ---------------------------------------------------------------------------------------------------------------
# The admins' jobs page
# ---------------------------------------------------------------------------------------------------------------

@bp.route("/admin/jobs")
@role_required("admin")
def jobs_page():
    from assessor.domain.jobs import queued_attempt_ids

    session = db()
    try:
        depth, queue_problem, with_jobs = huey().pending_count(), None, queued_attempt_ids(huey())
    except Exception as error:
        depth, queue_problem, with_jobs = None, f"{type(error).__name__}: {_first_line(error)}", None
    # Queued a while ago and no job for them in the queue: the reaper queues them again within minutes; the
    # admin need not wait.
    before = utcnow() - timedelta(seconds=ORPHAN_AFTER_SECONDS)
    waiting = list(session.exec(select(Attempt).where(Attempt.status == QUEUED, Attempt.created_at < before)
                                .order_by(Attempt.created_at).limit(200)))
    orphans = [attempt for attempt in waiting if with_jobs is not None and attempt.id not in with_jobs][:50]
    running = list(session.exec(select(Attempt).where(Attempt.status == RUNNING).order_by(Attempt.started_at)))
    queued = session.exec(select(func.count()).select_from(Attempt).where(Attempt.status == QUEUED)).one()
    failed = list(session.exec(select(Attempt).where(Attempt.status == FAILED, Attempt.dead_letter == False)  # noqa: E712
                               .order_by(Attempt.finished_at.desc(), Attempt.id.desc()).limit(50)))
    from assessor.domain.issuing import blocked_certificates

    return render_template("admin/jobs.html", depth=depth, queue_problem=queue_problem, running=running,
                           queued=queued, failed=failed, dead=dead_letters(session), orphans=orphans,
                           unsigned=blocked_certificates(session), disk=_disk_room())


@bp.route("/admin/jobs/<int:attempt_id>/certificate", methods=["POST"])
@role_required("admin")
def issue_again(attempt_id: int):
    """Queue the certificate of an approved attempt again, once the machines can sign."""
    from assessor.domain.issuing import blocked_certificates
    from assessor.domain.jobs import enqueue_certificate

    if attempt_id not in dict(blocked_certificates(db())):
        abort(404)
    try:
        enqueue_certificate(huey(), attempt_id)
    except Exception:
        flash("The certificate could not be queued: the job queue is unavailable. Try again later.", "error")
    else:
        flash(f"The certificate of attempt {attempt_id} is queued again.", "success")
    return redirect(url_for("ops.jobs_page"))


@bp.route("/admin/jobs/<int:attempt_id>/enqueue", methods=["POST"])
@role_required("admin")
def enqueue(attempt_id: int):
    """A queued attempt whose job is gone, queued again now (a duplicate job is harmless: one claim wins)."""
    from assessor.domain.jobs import enqueue_attempt

    attempt = db().get(Attempt, attempt_id)
    if attempt is None or attempt.status != QUEUED:
        abort(404)
    try:
        enqueue_attempt(huey(), attempt_id)
    except Exception:
        flash(f"Attempt {attempt_id} could not be queued: the job queue is unavailable. Try again later.", "error")
    else:
        logger.info("queued attempt %s given a job again by admin %s", attempt_id, current_user.id)
        flash(f"Attempt {attempt_id} queued again.", "success")
    return redirect(url_for("ops.jobs_page"))


@bp.route("/admin/jobs/<int:attempt_id>/requeue", methods=["POST"])
@role_required("admin")
def requeue(attempt_id: int):
    from assessor.domain.jobs import enqueue_attempt

    session = db()
    if not requeue_dead_letter(session, attempt_id=attempt_id, actor=current_user):
        abort(404)
    try:
        enqueue_attempt(huey(), attempt_id)
    except Exception as error:
        from assessor.domain.submissions import finish_failed

        finish_failed(session, attempt_id=attempt_id, from_statuses=(QUEUED,), dead_letter=True,
                      reason=f"the job queue is unavailable ({type(error).__name__})")
        flash(f"Attempt {attempt_id} could not be queued: the job queue is unavailable.", "error")
    else:
        logger.info("attempt %s queued again by admin %s", attempt_id, current_user.id)
        flash(f"Attempt {attempt_id} queued again.", "success")
    return redirect(url_for("ops.jobs_page"))
