"""Administration of certificates: the list, revocation with a reason, and the issuer keys."""

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from assessor import issuing
from assessor.models import User
from assessor.web.extensions import db, role_required
from assessor.web.forms import ActionForm

bp = Blueprint("admin_certificates", __name__, url_prefix="/admin")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.route("/certificates")
@role_required("admin")
def certificates():
    session = db()
    rows = issuing.list_certificates(session)
    learners = {user.id: user for user in (session.get(User, uid) for uid in {row.user_id for row in rows}) if user}
    return render_template("admin/certificates.html", certificates=rows, learners=learners, form=ActionForm())


@bp.route("/certificates/<public_id>/revoke", methods=["POST"])
@role_required("admin")
def revoke(public_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db()
    if issuing.get_certificate(session, public_id=public_id) is None:
        abort(404)
    try:
        issuing.revoke(session, certificate_id=public_id, admin=current_user, reason=request.form.get("reason", ""))
    except issuing.IssuingError as error:
        session.rollback()
        flash(str(error), "error")
    else:
        flash(f"Certificate {public_id} revoked.", "success")
    return redirect(url_for("admin_certificates.certificates"))


@bp.route("/keys")
@role_required("admin")
def keys():
    settings = issuing.settings_from_config(current_app.config)
    return render_template("admin/keys.html", keys=issuing.list_keys(db()), operator_key=settings.key_file,
                           key_state=issuing.key_state,
                           published_kid=lambda row: issuing.published_kid(row, settings))
