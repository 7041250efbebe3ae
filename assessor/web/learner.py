"""The learner's journey: submit, watch the stages, read the report, self-assess, see the review and calibration."""

from urllib.parse import urlencode

from flask import (
    Blueprint, Flask, abort, current_app, flash, jsonify, make_response, redirect, render_template, request, url_for,
)
from flask_login import current_user, login_required

from assessor.domain import conversation, integrity, line_comments, reviews, submissions
from assessor.engine import scoring
from assessor.domain.attempt_summary import summarise
from assessor.certificates.render import qr_svg
from assessor.web.charts import coverage_bars, coverage_files_from_report, line_thresholds, rank_distribution
from assessor.errors import AssessorError, RubricError
from assessor.domain.jobs import enqueue_attempt, enqueue_mail
from assessor.domain.models import APPROVED, CHANGES_REQUESTED, HELD, SUPERSEDED
from assessor.engine.pipeline import STAGES
from assessor.domain.source_store import has_sources
from assessor.web.extensions import db, huey, job_settings, public_url, rubrics
from assessor.web.forms import ActionForm, SubmitForm, attach_error, choice

bp = Blueprint("learner", __name__, url_prefix="/learner")

def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _own_attempt(attempt_id: int):
    attempt = submissions.attempt_for_owner(db(), user=current_user, attempt_id=attempt_id)
    if attempt is None:
        abort(404)
    return attempt


@bp.route("/")
@login_required
def home():
    return render_template("learner/home.html", history=submissions.learner_history(db(), user=current_user))


@bp.route("/submit", methods=["GET", "POST"])
@login_required
def submit():
    form = SubmitForm()
    try:
        offered = rubrics()
    except RubricError as error:
        flash(f"The course rubrics cannot be read right now: {error}", "error")
        offered = []
    form.rubric.choices = [choice(rubric.id, f"{rubric.course}: {rubric.title} (v{rubric.version})") for rubric in offered]
    session = db()
    if request.method == "GET":
        # "Submit again" comes with the capstone and repository filled in; otherwise the learner's own course.
        form.rubric.data = request.args.get("rubric") or submissions.usual_rubric(
            session, user=current_user, offered=[rubric.id for rubric in offered])
        form.source.data = (request.args.get("source") or "")[:1000] or None
        form.ref.data = (request.args.get("ref") or "")[:255] or None
    pending = (submissions.awaiting_review(session, user=current_user, rubric_id=form.rubric.data)
               if form.rubric.data else None)
    valid = form.validate_on_submit()
    if valid and pending is not None and not form.replace_pending.data:
        attach_error(form, "replace_pending", f"attempt {pending.number} is waiting for a mentor's review: tick "
                                              f"the box to replace it, or keep it by not submitting now")
    elif valid:
        rubric = submissions.find_available(offered, form.rubric.data)
        try:
            attempt = submissions.create_attempt(session, user=current_user, rubric=rubric, source=form.source.data,
                                                 ref=form.ref.data, policy=job_settings().source_policy,
                                                 max_running=int(current_app.config["MAX_RUNNING_PER_ACCOUNT"]))
            session.commit()
        except submissions.SubmissionError as error:
            session.rollback()
            attach_error(form, error.field or "source", str(error))
        except AssessorError as error:
            session.rollback()
            attach_error(form, "rubric", str(error))
        else:
            try:
                job_id = enqueue_attempt(huey(), attempt.id)
            except Exception as error:  # the queue is down: say so, never leave a queued row nobody will run
                submissions.fail_unqueued(session, attempt=attempt, reason=f"the job queue is unavailable ({type(error).__name__})")
            else:
                session.refresh(attempt)
                submissions.set_job_id(session, attempt=attempt, job_id=job_id)
                session.commit()
            return redirect(url_for("learner.attempt", attempt_id=attempt.id))
    status = 400 if form.errors else 200
    return render_template("learner/submit.html", form=form, has_rubrics=bool(offered), pending=pending,
                           rubrics={rubric.id: rubric for rubric in offered},
                           private_repositories=bool(job_settings().git_hosts)), status


@bp.route("/attempts/<int:attempt_id>/choose-for-review", methods=["POST"])
@login_required
def choose_for_review(attempt_id: int):
    attempt = _own_attempt(attempt_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db()
    try:
        replaced = submissions.choose_for_review(session, attempt=attempt, user=current_user)
    except submissions.SubmissionError as error:
        session.rollback()
        flash(str(error), "error")
    else:
        session.commit()
        flash(f"Attempt {attempt.number} goes to review; attempt {replaced.number} has left the queue.", "success")
    return redirect(url_for("learner.attempt", attempt_id=attempt.id))


def _report_context(attempt):
    session = db()
    report = submissions.load_report(session, attempt=attempt)
    rubric = submissions.attempt_rubric(session, attempt=attempt)
    charts = {}
    if report is not None:
        charts["coverage"] = coverage_bars(coverage_files_from_report(report.coverage), thresholds=line_thresholds(rubric))
        charts["complexity"] = rank_distribution((report.complexity or {}).get("rank_counts") or {})
    return report, rubric, charts


@bp.route("/attempts/<int:attempt_id>")
@login_required
def attempt(attempt_id: int):
    ask = request.args.get("ask") or None
    return _attempt_page(_own_attempt(attempt_id), ask_values={"criterion": ask} if ask else None)


@bp.route("/attempts/<int:attempt_id>/requests", methods=["POST"])
@login_required
def ask(attempt_id: int):
    """A question or a regrade request about one criterion, after the mentor's decision."""
    attempt = _own_attempt(attempt_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db()
    values = {name: request.form.get(name, "") for name in ("criterion", "kind", "body")}
    try:
        conversation.open_request(session, learner=current_user, attempt=attempt,
                                  rubric=submissions.attempt_rubric(session, attempt=attempt),
                                  criterion_id=values["criterion"], kind=values["kind"], body=values["body"],
                                  base_url=public_url())
    except conversation.ConversationError as error:
        session.rollback()
        return _attempt_page(attempt, ask_values=values,
                             ask_errors=error.errors or {"form": str(error)}), 400 if error.errors else 409
    enqueue_mail(huey())
    flash("Sent: your mentor is told and answers here.", "success")
    return redirect(url_for("learner.attempt", attempt_id=attempt.id, _anchor="requests"))


def _attempt_page(attempt, *, ask_values=None, ask_errors=None):
    session = db()
    report, rubric, charts = _report_context(attempt)
    review = reviews.get_review(session, attempt=attempt)
    decided = review is not None and review.decided_at is not None
    result = calibration = None
    levels = {}
    if decided and report is not None:
        levels = reviews.review_levels(session, review=review)
        result = reviews.final_score(rubric, report, levels)
        calibration = reviews.calibration_rows(rubric, reviews.self_assessments(session, attempt=attempt), result)
    selves = reviews.self_assessments(session, attempt=attempt, drafts=True)
    can_self_assess = reviews.can_self_assess(attempt)
    certificate = _certificate_context(attempt, rubric, result)
    summary = summarise(attempt=attempt, report=report, result=result, answered=len(selves),
                        submitted=attempt.self_assessed_at is not None,
                        can_self_assess=can_self_assess, has_certificate=bool(certificate and certificate["certificate"]),
                        revoked_reason=_revoked_reason(certificate),
                        unchanged_from=_unchanged_from(session, attempt))
    code_comments = line_comments.comments_for(session, attempt=attempt, rubric=rubric) if decided else []
    return render_template(
        "learner/attempt.html", attempt=attempt, code_comments=code_comments,
        has_code=has_sources(session, commit=attempt.commit), report=report, rubric=rubric, charts=charts,
        status=submissions.status_payload(attempt, STAGES), selves=selves, can_self_assess=can_self_assess,
        review=review if decided else None, levels=levels, result=result, calibration=calibration,
        timeline=submissions.timeline(session, attempt=attempt), decisions=(APPROVED, CHANGES_REQUESTED),
        certificate=certificate, summary=summary, latest=submissions.latest_attempt_id(session, attempt=attempt)
        if attempt.review_state == SUPERSEDED else None, action_form=ActionForm(),
        authorship=integrity.authorship_evidence(session, report=report, learner=current_user),
        requests=conversation.requests_for(session, attempt=attempt, rubric=rubric) if rubric else [],
        gains=scoring.gains(rubric, report.criteria) if report is not None and rubric else [],
        can_ask=conversation.can_ask(attempt, review), ask_values=ask_values or {}, ask_errors=ask_errors or {},
    )


def _unchanged_from(session, attempt) -> int | None:
    if attempt.review_state != HELD:
        return None
    earlier = submissions.unchanged_since(session, attempt=attempt)
    return earlier.number if earlier is not None else None


@bp.route("/attempts/<int:attempt_id>/ask-feedback", methods=["POST"])
@login_required
def ask_feedback(attempt_id: int):
    """An attempt that cannot pass as it stands goes to a mentor when its learner asks."""
    attempt = _own_attempt(attempt_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db()
    try:
        submissions.ask_for_feedback(session, attempt=attempt, user=current_user)
    except submissions.SubmissionError as error:
        session.rollback()
        flash(str(error), "error")
    else:
        session.commit()
        flash(f"Attempt {attempt.number} is in your mentor's queue: you will get an e-mail with the feedback.",
              "success")
    return redirect(url_for("learner.attempt", attempt_id=attempt.id))


def _revoked_reason(certificate: dict | None) -> str | None:
    issued = certificate and certificate["certificate"]
    if not issued or issued.revoked_at is None:
        return None
    return f"revoked on {issued.revoked_at:%Y-%m-%d}: {issued.revoked_reason}"


def _certificate_context(attempt, rubric, result) -> dict | None:
    """None when no certificate is due; else the certificate (or None while the worker issues it) and links."""
    from assessor.domain import issuing

    if attempt.review_state != APPROVED or result is None or result.outcome != "pass":
        return None
    certificate = issuing.certificate_for_attempt(db(), attempt_id=attempt.id)
    if certificate is None:
        blocked = dict(issuing.blocked_certificates(db())).get(attempt.id) is not None
        return {"certificate": None, "blocked": blocked}
    settings = issuing.settings_from_config(current_app.config)
    verify_url = settings.verify_url(certificate.public_id)
    issued = certificate.issued_at
    organization = current_app.config.get("LINKEDIN_ORGANIZATION_ID")
    # With the operator's company id LinkedIn links the issuer's page; the name alone is plain text.
    issuer = {"organizationId": str(organization)} if organization else {"organizationName": settings.issuer_name}
    linkedin = "https://www.linkedin.com/profile/add?" + urlencode({
        "startTask": "CERTIFICATION_NAME", "name": f"{rubric.course}: {rubric.title}", **issuer,
        "issueYear": issued.year, "issueMonth": issued.month, "certUrl": verify_url, "certId": certificate.public_id,
    })
    wallet_url = f"{settings.public_url}/api/v1/certificates/{certificate.public_id}/credential.json"
    return {"certificate": certificate, "verify_url": verify_url, "linkedin_url": linkedin, "wallet_url": wallet_url,
            "wallet_qr": qr_svg(wallet_url)}


@bp.route("/certificates/<public_id>.pdf")
@login_required
def certificate_pdf(public_id: str):
    """The stored, sealed PDF: only for its owner (anyone else gets 404, as if it did not exist)."""
    from assessor.domain import issuing

    certificate = issuing.get_certificate(db(), public_id=public_id)
    if certificate is None or certificate.user_id != current_user.id:
        abort(404)
    response = make_response(certificate.pdf)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="certificate-{certificate.public_id}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/attempts/<int:attempt_id>/status.json")
@login_required
def attempt_status(attempt_id: int):
    return jsonify(submissions.status_payload(_own_attempt(attempt_id), STAGES))


@bp.route("/attempts/<int:attempt_id>/self-assessment", methods=["GET", "POST"])
@login_required
def self_assessment(attempt_id: int):
    attempt = _own_attempt(attempt_id)
    session = db()
    rubric = submissions.attempt_rubric(session, attempt=attempt)
    report = submissions.load_report(session, attempt=attempt)
    existing = reviews.self_assessments(session, attempt=attempt, drafts=True)
    values = {cid: (row.level, row.justification) for cid, row in existing.items()}
    carried_from = None
    if not existing:
        carried_from, values = reviews.carried_over_answers(session, attempt=attempt)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        draft = request.form.get("action") == "draft"
        entries = {criterion.id: (request.form.get(f"level-{criterion.id}"),
                                  request.form.get(f"justification-{criterion.id}", ""))
                   for criterion in rubric.criteria}
        try:
            reviews.save_self_assessment(session, user=current_user, attempt=attempt, rubric=rubric, entries=entries,
                                         draft=draft)
        except reviews.ReviewError as error:
            session.rollback()
            errors = error.errors or {"form": str(error)}
            values = entries
            carried_from = None
            status = 400 if error.errors else 409
        else:
            if draft and attempt.self_assessed_at is None:
                flash("Draft saved. Your mentor sees it only once you submit it.", "success")
                return redirect(url_for("learner.self_assessment", attempt_id=attempt.id))
            flash("Your self-assessment is submitted. You can change it until a mentor starts the review.", "success")
            return redirect(url_for("learner.attempt", attempt_id=attempt.id))
    return render_template("learner/self_assessment.html", attempt=attempt, rubric=rubric, report=report,
                           values=values, errors=errors, editable=reviews.can_self_assess(attempt),
                           carried_from=carried_from, submitted=attempt.self_assessed_at is not None), status


@bp.route("/calibration")
@login_required
def calibration():
    summary = reviews.learner_calibration(db(), learner=current_user)
    return render_template("learner/calibration.html", summary=summary, learner=current_user)
