"""Administration of certificates: the list, revocation with a reason, and the issuer keys."""

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from assessor.domain import issuing
from assessor.domain.jobs import enqueue_mail
from assessor.domain.models import Attempt, User
from assessor.web.extensions import db, huey, public_url, role_required
from assessor.web.forms import ActionForm

bp = Blueprint("admin_certificates", __name__, url_prefix="/admin")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.route("/certificates")
@role_required("admin")
def certificates():
    return _certificates_page()


def _certificates_page(*, confirm=None, reason: str = ""):
    session = db()
    rows = issuing.list_certificates(session)
    learners = {user.id: user for user in (session.get(User, uid) for uid in {row.user_id for row in rows}) if user}
    attempts = {attempt.id: attempt for attempt in
                (session.get(Attempt, aid) for aid in {row.attempt_id for row in rows}) if attempt}
    return render_template("admin/certificates.html", certificates=rows, learners=learners, attempts=attempts,
                           form=ActionForm(), confirm=confirm, reason=reason)


@bp.route("/certificates/<public_id>/revoke", methods=["POST"])
@role_required("admin")
def revoke(public_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db()
    certificate = issuing.get_certificate(session, public_id=public_id)
    if certificate is None:
        abort(404)
    reason = request.form.get("reason", "")
    if request.form.get("confirmed") != "yes" and reason.strip() and certificate.revoked_at is None:
        # Revoking cannot be undone: it is asked once more, naming whose certificate it is.
        return _certificates_page(confirm=certificate, reason=reason)
    try:
        issuing.revoke(session, certificate_id=public_id, admin=current_user, reason=reason, base_url=public_url())
    except issuing.IssuingError as error:
        session.rollback()
        flash(str(error), "error")
    else:
        enqueue_mail(huey())
        flash(f"Certificate {public_id} revoked; the learner is told by e-mail.", "success")
    return redirect(url_for("admin_certificates.certificates"))


@bp.route("/keys")
@role_required("admin")
def keys():
    settings = issuing.settings_from_config(current_app.config)
    return render_template("admin/keys.html", keys=issuing.list_keys(db()), operator_key=settings.key_file,
                           key_state=issuing.key_state,
                           published_kid=lambda row: issuing.published_kid(row, settings))
