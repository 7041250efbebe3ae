"""Webhook deliveries from git hosts: verified, recorded and queued in one short request (never assessed here)."""

from flask import Blueprint, Flask, current_app, jsonify, request

from assessor.domain import submissions, webhooks
from assessor.domain.jobs import enqueue_attempt
from assessor.domain.submissions import find_available
from assessor.web.extensions import csrf, db, huey, job_settings, rubrics, sealing_key

bp = Blueprint("hooks", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _answer(status: str, code: int, **extra):
    return jsonify({"status": status, **extra}), code


@bp.route("/hooks/<int:link_id>", methods=["POST"])
@csrf.exempt  # signed by the git host with the link's own secret instead
def receive(link_id: int):
    config = current_app.config
    kek = sealing_key()
    session = db()
    body = request.get_data(cache=False)
    try:
        link, push = webhooks.receive(session, link_id=link_id, headers=request.headers, body=body, kek=kek)
    except webhooks.WebhookError as error:
        session.rollback()
        return _answer("refused" if error.status >= 400 else "ignored", error.status, reason=str(error))
    if push is None:
        return _answer("ignored", 200, reason="nothing to assess: another branch or tag, a deletion, or a ping")
    if webhooks.seen(session, link=link, delivery_id=push.delivery_id):
        return _answer("duplicate", 200, reason="this delivery was received before; nothing was done again")
    rubric = find_available(rubrics(), link.rubric_id)
    if rubric is None:
        return _answer("refused", 409, reason="the linked capstone is not offered any more")
    try:
        attempt = webhooks.submit_push(session, link=link, push=push, rubric=rubric,
                                       policy=job_settings().source_policy,
                                       max_running=int(config["MAX_RUNNING_PER_ACCOUNT"]))
        session.commit()
    except submissions.SubmissionError as error:
        session.rollback()
        return _answer("refused", 409, reason=str(error))
    try:
        job_id = enqueue_attempt(huey(), attempt.id)
    except Exception as error:  # the queue is down: the attempt says so rather than waiting for ever
        submissions.fail_unqueued(session, attempt=attempt,
                                  reason=f"the job queue is unavailable ({type(error).__name__})")
        return _answer("refused", 503, reason="the job queue is unavailable; redeliver later")
    session.refresh(attempt)
    submissions.set_job_id(session, attempt=attempt, job_id=job_id)
    session.commit()
    return _answer("queued", 202, attempt=attempt.id, commit=push.commit)
