"""Administration of LTI 1.3: what to give the LMS, the platforms registered, and each score's delivery."""

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for

from assessor.domain import lti
from assessor.web.extensions import db, job_settings, role_required
from assessor.web.forms import ActionForm

bp = Blueprint("admin_lti", __name__, url_prefix="/admin")
FIELDS = ("name", "issuer", "client_id", "auth_login_url", "auth_token_url", "key_set_url")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _page(*, values=None, error: str | None = None, code: int = 200):
    base = job_settings().public_url
    tool = {"OIDC login URL": f"{base}{url_for('lti.login')}",
            "Launch (redirect) URL": f"{base}{url_for('lti.launch')}",
            "Deep linking URL": f"{base}{url_for('lti.launch')}",
            "Key set (JWKS) URL": f"{base}{url_for('lti.jwks')}"}
    return render_template("admin/lti.html", tool=tool, platforms=lti.platforms(db()), form=ActionForm(),
                           deliveries=lti.grade_deliveries(db()), values=values or {}, error=error), code


@bp.route("/lti")
@role_required("admin")
def lti_page():
    return _page()


@bp.route("/lti/platforms", methods=["POST"])
@role_required("admin")
def add_platform():
    if not ActionForm().validate_on_submit():
        abort(400)
    values = {name: request.form.get(name, "")[:1000] for name in (*FIELDS, "deployment_ids")}
    try:
        lti.register_platform(db(), **{name: values[name] for name in FIELDS},
                              deployment_ids=values["deployment_ids"].replace(",", " ").split())
    except lti.LtiError as error:
        db().rollback()
        return _page(values=values, error=str(error), code=400)
    flash(f"Registered {values['name'] or values['issuer']}.", "success")
    return redirect(url_for("admin_lti.lti_page"))


@bp.route("/lti/platforms/<int:platform_id>/delete", methods=["POST"])
@role_required("admin")
def remove_platform(platform_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        lti.remove_platform(db(), platform_id=platform_id)
    except lti.LtiError:
        abort(404)
    flash("The platform is removed: its launches are refused from now on.", "success")
    return redirect(url_for("admin_lti.lti_page"))
