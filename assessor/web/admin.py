"""Administration: accounts, roles, mentors' course assignments, sessions and the mail the service sends."""

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from assessor.domain import accounts, integrity, mail, notifications, overview
from assessor.errors import AssessorError
from assessor.domain.jobs import enqueue_mail
from assessor.web.extensions import db, huey, job_settings, public_url, role_required, rubrics
from assessor.web.forms import ActionForm, UserForm, attach_error, choice

bp = Blueprint("admin", __name__, url_prefix="/admin")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _course_choices():
    try:
        return [choice(rubric.id, f"{rubric.course}: {rubric.title}") for rubric in rubrics()]
    except AssessorError:
        return []


@bp.route("/")
@role_required("admin")
def users():
    session = db()
    search = (request.args.get("q") or "")[:100]
    people = accounts.list_users(session, search=search)
    courses = {user.id: accounts.assigned_courses(session, user=user) for user in people if user.role == "mentor"}
    return render_template("admin/users.html", users=people, courses=courses, search=search)


@bp.route("/overview")
@role_required("admin")
def overview_page():
    """What waits, for how long, what failed and what was certified."""
    return render_template("admin/overview.html", overview=overview.service_overview(db()))


@bp.route("/integrity")
@role_required("admin")
def integrity_page():
    """Attempts another learner submitted the same work for, per course."""
    try:
        courses = [(rubric.id, f"{rubric.course}: {rubric.title}") for rubric in rubrics()]
    except AssessorError:
        courses = []
    course = request.args.get("course") or None
    if course not in {cid for cid, _ in courses}:
        course = None
    rows = integrity.flagged_attempts(db(), rubric_id=course)
    return render_template("admin/integrity.html", rows=rows, courses=courses, course=course)


@bp.route("/users/new", methods=["GET", "POST"])
@role_required("admin")
def new_user():
    form = UserForm()
    form.courses.choices = _course_choices()
    form.password.label.text = "Password (leave empty to send an invitation: they choose their own)"
    if form.validate_on_submit():
        session = db()
        invited = not form.password.data
        try:
            details = dict(email=form.email.data, role=form.role.data, name=form.name.data or "",
                           courses=form.courses.data or [])
            if invited:
                user = accounts.invite_user(session, **details)
                notifications.send_invitation(session, user=user, base_url=public_url(), invited_by=current_user)
            else:
                user = accounts.create_user(session, password=form.password.data, **details)
                notifications.send_verification(session, user=user, base_url=public_url())
            user.active = bool(form.active.data)
            session.commit()
        except accounts.AccountError as error:
            session.rollback()
            attach_error(form, error.field or "email", str(error))
        else:
            enqueue_mail(huey())
            flash(f"Account {user.email} created; " + ("an invitation to choose a password was mailed to it."
                                                       if invited else "a link to confirm the address was mailed to it."),
                  "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user.html", form=form, user=None), 400 if form.errors else 200


def _user_or_404(user_id: int):
    user = accounts.get_user(db(), user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@role_required("admin")
def edit_user(user_id: int):
    session = db()
    user = _user_or_404(user_id)
    form = UserForm(obj=user)
    form.courses.choices = _course_choices()
    form.password.label.text = "New password (leave empty to keep the current one)"
    if not form.is_submitted():
        form.courses.data = accounts.assigned_courses(session, user=user)
    if form.validate_on_submit():
        try:
            email = accounts.check_email(form.email.data)
            other = accounts.find_user(session, email=email)
            if other is not None and other.id != user.id:
                raise accounts.AccountError("another account uses that e-mail address", field="email")
            if user.id == current_user.id and (form.role.data != "admin" or not form.active.data):
                raise accounts.AccountError("you cannot remove your own admin role or deactivate yourself", field="role")
            deactivated = user.active and not form.active.data
            readdressed = email != user.email
            user.email, user.name, user.active = email, (form.name.data or "").strip(), bool(form.active.data)
            if deactivated:
                accounts.end_sessions(session, user=user)
            accounts.set_role(session, user=user, role=form.role.data)
            if form.password.data:
                accounts.set_password(session, user=user, password=form.password.data)
            accounts.set_courses(session, user=user, rubric_ids=form.courses.data or [])
            if readdressed:  # the new address is not proven until its owner confirms it
                user.email_verified_at = None
                notifications.send_verification(session, user=user, base_url=public_url())
            session.commit()
        except accounts.AccountError as error:
            session.rollback()
            attach_error(form, error.field or "email", str(error))
        else:
            if readdressed:
                enqueue_mail(huey())
            flash(f"Account {user.email} saved." + (" A confirmation link was mailed to the new address."
                                                    if readdressed else ""), "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user.html", form=form, user=user), 400 if form.errors else 200


@bp.route("/users/<int:user_id>/sign-out", methods=["POST"])
@role_required("admin")
def sign_out_everywhere(user_id: int):
    """End every session of an account at once (a stolen laptop, a leaked cookie)."""
    session = db()
    user = _user_or_404(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    accounts.end_sessions(session, user=user)
    session.commit()
    flash(f"Every session of {user.email} has ended.", "success")
    return redirect(url_for("admin.edit_user", user_id=user.id))


@bp.route("/mail")
@role_required("admin")
def mail_page():
    """Mail the service sent, is retrying, or gave up on, newest first."""
    search = (request.args.get("q") or "")[:100]
    return render_template("admin/mail.html", messages=mail.recent(db(), search=search), search=search,
                           enabled=job_settings().mail.enabled, form=ActionForm(formdata=None))


@bp.route("/mail/<int:message_id>/retry", methods=["POST"])
@role_required("admin")
def retry_mail(message_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    if not mail.retry_now(db(), message_id=message_id):
        abort(404)
    enqueue_mail(huey())
    flash("The message will be sent again now.", "success")
    return redirect(url_for("admin.mail_page"))
