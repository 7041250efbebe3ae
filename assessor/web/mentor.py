"""The mentor's journey: the review queue, the review page, decisions, and learners' calibration."""

from flask import Blueprint, Flask, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from assessor.domain import conversation, integrity, line_comments, lti, notifications, reviews, submissions
from assessor.web.charts import calibration_chart, coverage_bars, coverage_files_from_report, line_thresholds, rank_distribution
from assessor.errors import AssessorError
from assessor.domain.models import APPROVED, AWAITING_REVIEW, CHANGES_REQUESTED, User
from assessor.domain.jobs import enqueue_certificate, enqueue_grades, enqueue_mail
from assessor.domain.source_store import has_sources
from assessor.web.extensions import db, huey, public_url, role_required, rubrics
from assessor.web.forms import ActionForm

bp = Blueprint("mentor", __name__, url_prefix="/mentor")

# The review form's buttons: the decision each records; "acknowledge" and "save_next" save a draft too.
DECISION_BUTTONS = {"save": None, "save_next": None, "acknowledge": None, "approve": APPROVED,
                    "request_changes": CHANGES_REQUESTED}
SAVED_MESSAGES = {"save": "Review saved.", "save_next": "Review saved.",
                  "acknowledge": "Flag acknowledged (your reason is on the timeline) and the review saved.",
                  "approve": "Approved. The learner can see the result.",
                  "request_changes": "Changes requested. The learner can see your comments."}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _page_arg(name: str) -> int:
    try:
        return max(1, min(int(request.args.get(name, 1)), 1_000_000))
    except (TypeError, ValueError):
        return 1


def _attempt(attempt_id: int):
    attempt = reviews.attempt_for_mentor(db(), mentor=current_user, attempt_id=attempt_id)
    if attempt is None:
        abort(404)
    return attempt


def _rubric_and_report(attempt):
    session = db()
    report = submissions.load_report(session, attempt=attempt)
    if report is None:
        abort(404)
    return submissions.attempt_rubric(session, attempt=attempt), report


@bp.route("/")
@role_required("mentor", "admin")
def dashboard():
    session = db()
    courses = reviews.mentor_rubric_ids(session, mentor=current_user)
    try:
        titles = {rubric.id: f"{rubric.course}: {rubric.title}" for rubric in rubrics()}
    except AssessorError:
        titles = {}
    course_ids = courses if courses is not None else sorted(titles)
    course = request.args.get("course") or None
    if course is not None and course not in course_ids:
        course = None
    state = request.args.get("state") or None
    if state not in AWAITING_REVIEW:
        state = None
    flags = request.args.get("flags") or None
    if flags not in FLAG_FILTERS:
        flags = None
    per_page = int(current_app.config["PAGE_SIZE"])
    queue = reviews.review_queue(session, mentor=current_user, rubric_id=course, state=state,
                                 flagged=FLAG_FILTERS.get(flags), page=_page_arg("page"), per_page=per_page)
    done = reviews.reviewed_by(session, mentor=current_user, page=_page_arg("done_page"), per_page=per_page)
    next_attempt = reviews.next_ungraded(session, mentor=current_user, rubric_id=course)
    asked = conversation.open_requests(session, mentor=current_user, page=_page_arg("asked_page"),
                                       per_page=per_page)
    return render_template("mentor/dashboard.html", queue=queue, done=done, course=course, state=state,
                           flags=flags, next_attempt=next_attempt, asked=asked,
                           courses=[(cid, titles.get(cid, cid)) for cid in course_ids])


FLAG_FILTERS = {"flagged": True, "clean": False}


def _review_context(attempt, *, values=None, errors=None, comment=None, confirm_approve=False, answer_for=None,
                    answer_values=None, answer_errors=None, integrity_value=""):
    session = db()
    rubric = submissions.attempt_rubric(session, attempt=attempt)
    report = submissions.load_report(session, attempt=attempt)
    review = reviews.get_review(session, attempt=attempt)
    levels = reviews.review_levels(session, review=review)
    result = reviews.final_score(rubric, report, levels) if report is not None else None
    selves = reviews.self_assessments(session, attempt=attempt)
    if values is None:
        values = {cid: (row.level, row.comment, row.override_reason or "") for cid, row in levels.items()}
    learner = session.get(User, attempt.user_id)
    previous, previous_levels, previous_comment = reviews.previous_review(session, attempt=attempt)
    chosen = {cid: value[0] for cid, value in values.items()}
    same_work = integrity.same_work(session, attempt=attempt, viewer=current_user)
    near_copies = integrity.near_copies(session, attempt=attempt, viewer=current_user)
    return dict(
        requests=conversation.requests_for(session, attempt=attempt, rubric=rubric),
        bank=reviews.comment_bank(session, mentor=current_user, rubric_id=attempt.rubric_id),
        answer_for=answer_for, answer_values=answer_values or {}, answer_errors=answer_errors or {},
        integrity_value=integrity_value,
        flag_pending=bool(same_work or near_copies) and not (review and review.integrity_acknowledged_at),
        next_attempt=reviews.next_ungraded(session, mentor=current_user, after=attempt),
        bar_score=reviews.preview_score(rubric, report, chosen) if report is not None else None,
        previous=previous, previous_levels=previous_levels, previous_comment=previous_comment,
        has_code=has_sources(session, commit=attempt.commit), confirm_approve=confirm_approve,
        code_comments=line_comments.comments_for(session, attempt=attempt, rubric=rubric),
        error_links=_error_links(rubric, errors or {}),
        same_work=same_work, near_copies=near_copies,
        authorship=integrity.authorship_evidence(session, report=report, learner=learner),
        attempt=attempt, rubric=rubric, report=report, review=review, levels=levels, result=result, selves=selves,
        values=values, errors=errors or {}, comment=review.comment if comment is None and review else (comment or ""),
        learner=learner, timeline=submissions.timeline(session, attempt=attempt),
        calibration=reviews.calibration_rows(rubric, selves, result) if result else [],
        charts={"coverage": coverage_bars(coverage_files_from_report(report.coverage),
                                          thresholds=line_thresholds(rubric)) if report else "",
                "complexity": rank_distribution((report.complexity or {}).get("rank_counts") or {}) if report else ""},
        action_form=ActionForm(formdata=None),
        mine=review is not None and review.mentor_id == current_user.id,
        decided=review is not None and review.decided_at is not None,
    )


def _error_links(rubric, errors: dict[str, str]) -> list[tuple[str, str]]:
    """(field id, what to fix) for each field in error, in page order, for the banner's links."""
    links = []
    for criterion in rubric.criteria:
        for prefix, what in (("level", "level"), ("reason", "reason for the override"), ("comment", "comment")):
            key = f"{prefix}-{criterion.id}"
            if key in errors:
                links.append((key, f"{criterion.title}, {what}: {errors[key]}"))
    if "comment" in errors:
        links.append(("comment", f"Overall comment: {errors['comment']}"))
    for key in ("integrity", "integrity_reason"):
        if key in errors:
            links.append(("integrity_reason", f"Integrity: {errors[key]}"))
    return links


@bp.route("/attempts/<int:attempt_id>/preview.json")
@role_required("mentor", "admin")
def preview(attempt_id: int):
    """The final score the levels chosen on the page would give (the decision bar asks as levels change)."""
    rubric, report = _rubric_and_report(_attempt(attempt_id))
    result = reviews.preview_score(rubric, report, {criterion.id: request.args.get(f"level-{criterion.id}")
                                                    for criterion in rubric.criteria})
    return jsonify({"total": round(result.score.total, 1), "max": result.score.max,
                    "percent": round(result.score.percent, 1), "outcome": result.outcome,
                    "reasons": list(result.score.reasons)})


@bp.route("/attempts/<int:attempt_id>")
@role_required("mentor", "admin")
def review(attempt_id: int):
    attempt = _attempt(attempt_id)
    return render_template("mentor/review.html", **_review_context(attempt))


@bp.route("/attempts/<int:attempt_id>/start", methods=["POST"])
@role_required("mentor", "admin")
def start(attempt_id: int):
    attempt = _attempt(attempt_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        reviews.start_review(db(), mentor=current_user, attempt=attempt)
    except reviews.ReviewError as error:
        db().rollback()
        flash(str(error), "error")
    else:
        flash("Review started: the learner's self-assessment is now locked.", "info")
    return redirect(url_for("mentor.review", attempt_id=attempt.id))


@bp.route("/attempts/<int:attempt_id>/review", methods=["POST"])
@role_required("mentor", "admin")
def save(attempt_id: int):
    attempt = _attempt(attempt_id)
    session = db()
    rubric, report = _rubric_and_report(attempt)
    action = request.form.get("action", "save")
    if action not in DECISION_BUTTONS:
        action = "save"
    entries = {criterion.id: (request.form.get(f"level-{criterion.id}"), request.form.get(f"comment-{criterion.id}", ""),
                              request.form.get(f"reason-{criterion.id}", ""))
               for criterion in rubric.criteria}
    comment = request.form.get("comment", "")
    integrity_reason = request.form.get("integrity_reason", "")
    if action == "approve" and request.form.get("confirmed") != "yes":
        # Approving issues a certificate: it is asked once more (the page's dialog does it without a round trip).
        context = _review_context(attempt, values=entries, comment=comment, confirm_approve=True,
                                  integrity_value=integrity_reason)
        return render_template("mentor/review.html", **context)
    try:
        decided = reviews.save_review(session, mentor=current_user, attempt=attempt, rubric=rubric, report=report,
                                      entries=entries, comment=comment, decision=DECISION_BUTTONS[action],
                                      integrity_reason=integrity_reason, acknowledge=action == "acknowledge")
    except reviews.ReviewError as error:
        session.rollback()
        session.refresh(attempt)
        context = _review_context(attempt, values=entries, errors=error.errors or {"form": str(error)}, comment=comment,
                                  integrity_value=integrity_reason)
        return render_template("mentor/review.html", **context), 400 if error.errors else 409
    flash(SAVED_MESSAGES[action], "success")
    if decided.decision in (APPROVED, CHANGES_REQUESTED):
        notifications.review_decided(session, attempt=attempt, approved=decided.decision == APPROVED,
                                     outcome=decided.final_outcome, base_url=public_url())
        _grade_to_lms(session, attempt, percent=decided.final_percent,
                      comment="Approved" if decided.decision == APPROVED else "Changes requested")
        enqueue_mail(huey())
    if decided.decision == APPROVED and decided.final_outcome == "pass":
        _queue_certificate(attempt.id)
    if action == "save_next":
        following = reviews.next_ungraded(session, mentor=current_user, after=attempt)
        if following is None:
            flash("Nothing else is waiting for a review.", "info")
            return redirect(url_for("mentor.dashboard"))
        return redirect(url_for("mentor.review", attempt_id=following.id))
    return redirect(url_for("mentor.review", attempt_id=attempt.id))


@bp.route("/attempts/<int:attempt_id>/requests/<int:request_id>/answer", methods=["POST"])
@role_required("mentor", "admin")
def answer(attempt_id: int, request_id: int):
    """The answer to a learner's question or regrade request; a new level changes the final score."""
    attempt = _attempt(attempt_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db()
    rubric, report = _rubric_and_report(attempt)
    values = {"answer": request.form.get("answer", ""), "level": request.form.get("level", "")}
    try:
        answered = conversation.answer_request(session, mentor=current_user, attempt=attempt, rubric=rubric,
                                               report=report, request_id=request_id, answer=values["answer"],
                                               level=values["level"], base_url=public_url())
    except conversation.ConversationError as error:
        session.rollback()
        session.refresh(attempt)
        context = _review_context(attempt, answer_for=request_id, answer_values=values,
                                  answer_errors=error.errors or {"form": str(error)})
        return render_template("mentor/review.html", **context), 400 if error.errors else 409
    if answered.level_changed:
        _grade_to_lms(session, attempt, percent=answered.percent_after, comment="Regraded")
        if answered.now_passes and attempt.review_state == APPROVED:
            _queue_certificate(attempt.id)
    enqueue_mail(huey())
    flash("Answer sent" + (": the level and the final score changed." if answered.level_changed else "."), "success")
    return redirect(url_for("mentor.review", attempt_id=attempt.id, _anchor=f"request-{request_id}"))


def _grade_to_lms(session, attempt, *, percent: float | None, comment: str) -> None:
    """The final score goes back to the course's LMS when the attempt was launched from one (committed here)."""
    graded = lti.queue_grades(session, attempt=attempt, score=percent or 0.0, comment=comment)
    session.commit()
    if graded:
        enqueue_grades(huey())


def _queue_certificate(attempt_id: int) -> None:
    """Issue in the worker (rendering never holds up a request); `assessor certificates issue` is the fallback."""
    try:
        enqueue_certificate(huey(), attempt_id)
    except Exception:  # the approval stands; the operator can issue it by hand
        current_app.logger.exception("could not queue the certificate of attempt %s", attempt_id)


@bp.route("/calibration")
@role_required("mentor", "admin")
def calibration():
    """The cohort's self-assessments against the final levels, per criterion, for one course."""
    session = db()
    allowed = reviews.mentor_rubric_ids(session, mentor=current_user)
    try:
        offered = {rubric.id: rubric for rubric in rubrics()}
    except AssessorError:
        offered = {}
    course_ids = [cid for cid in (allowed if allowed is not None else sorted(offered)) if cid in offered]
    course = request.args.get("course") or (course_ids[0] if course_ids else None)
    if course not in course_ids:
        course = course_ids[0] if course_ids else None
    cohort = reviews.cohort_calibration(session, rubric=offered[course]) if course else None
    chart = calibration_chart([(row.title, row.mean_self, row.mean_final, row.top_level)
                               for row in cohort.rows]) if cohort else ""
    return render_template("mentor/calibration.html", cohort=cohort, chart=chart, course=course,
                           courses=[(cid, f"{offered[cid].course}: {offered[cid].title}") for cid in course_ids])


@bp.route("/learners/<int:learner_id>")
@role_required("mentor", "admin")
def learner(learner_id: int):
    session = db()
    learner = reviews.learner_for_mentor(session, mentor=current_user, learner_id=learner_id)
    if learner is None:
        abort(404)
    summary = reviews.learner_calibration(session, learner=learner,
                                          rubric_ids=reviews.mentor_rubric_ids(session, mentor=current_user))
    return render_template("mentor/learner.html", summary=summary, learner=learner)
