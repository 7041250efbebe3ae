"""Sign up, sign in (rate-limited), sign out."""

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from assessor.domain import accounts, issuing, notifications
from assessor.domain.jobs import enqueue_certificate, enqueue_mail
from assessor.web.extensions import db, huey, public_url, redirect_home
from assessor.web.forms import (
    ActionForm, ForgotPasswordForm, LoginForm, NotificationsForm, ResetPasswordForm, SignupForm, attach_error,
)

bp = Blueprint("auth", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.context_processor
    def _action_form():
        # Every page's header has a sign-out button, which needs its CSRF token.
        return {"logout_form": ActionForm(formdata=None)}


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect after sign-in is a phishing aid."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@bp.route("/")
def index():
    """Signed in: the home of one's role. Otherwise what the product is, for each kind of visitor."""
    if current_user.is_authenticated:
        return redirect_home()
    return render_template("auth/landing.html")


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect_home()
    form = SignupForm()
    if form.validate_on_submit():
        session_db = db()
        if not accounts.allow_signup(session_db, ip=_client_ip(), per_hour=int(current_app.config["SIGNUP_PER_HOUR"])):
            form.form_errors.append("too many accounts were made from your network in the last hour; try again later")
            return render_template("auth/signup.html", form=form), 429
        try:
            user = accounts.create_user(session_db, email=form.email.data, password=form.password.data,
                                        name=form.name.data or "", role="learner")
            notifications.send_verification(session_db, user=user, base_url=public_url())
            session_db.commit()
        except accounts.AccountError as error:
            session_db.rollback()
            attach_error(form, error.field or "email", str(error))
        else:
            enqueue_mail(huey())
            session.clear()
            login_user(user)
            flash(f"Welcome! Your account is ready. We sent a link to {user.email}: open it to confirm your address "
                  f"(certificates name only confirmed addresses).", "success")
            return redirect(url_for("learner.home"))
    status = 400 if form.errors or form.form_errors else 200
    return render_template("auth/signup.html", form=form), status


def _client_ip() -> str:
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect_home()
    form = LoginForm()
    if form.validate_on_submit():
        config = current_app.config
        limits = accounts.LoginLimits(max_failures=int(config["LOGIN_MAX_FAILURES"]),
                                      max_failures_per_ip=int(config["LOGIN_MAX_PER_ADDRESS"]),
                                      window=timedelta(seconds=int(config["LOGIN_WINDOW_SECONDS"])))
        try:
            user = accounts.authenticate(db(), email=form.email.data, password=form.password.data,
                                         ip=_client_ip(), limits=limits)
        except accounts.LoginThrottled as error:
            form.form_errors.append(str(error))
            return render_template("auth/login.html", form=form), 429
        except accounts.AccountError as error:
            form.form_errors.append(str(error))
        else:
            session.clear()  # a fresh session on sign-in
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or redirect_home().location)
    status = 400 if form.errors or form.form_errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = ActionForm()
    if form.validate_on_submit():
        # Signing out ends every session of the account, so a copied cookie is worth nothing afterwards.
        accounts.end_sessions(db(), user=current_user)
        db().commit()
        logout_user()
        session.clear()
        flash("You are signed out, on every device.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/verify-email/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    """GET shows a button (mail scanners that open links must not use the token up); POST confirms."""
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        session_db = db()
        try:
            user = accounts.verify_email(session_db, raw=token)
            session_db.commit()
        except accounts.AccountError as error:
            session_db.rollback()
            return render_template("auth/verify_email.html", form=form, error=str(error)), 400
        for attempt_id in issuing.approved_without_certificate(session_db, user_id=user.id):
            enqueue_certificate(huey(), attempt_id)  # certificates that waited for a confirmed address
        flash(f"Thank you: {user.email} is confirmed.", "success")
        return redirect(url_for("auth.account") if current_user.is_authenticated else url_for("auth.login"))
    return render_template("auth/verify_email.html", form=form, error=None)


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        session_db = db()
        email = accounts.normalise_email(form.email.data)
        user = accounts.find_user(session_db, email=email)
        allowed = accounts.allow_mail_request(session_db, kind="reset", email=email, ip=_client_ip())
        if allowed and user is not None and user.active:
            notifications.send_password_reset(session_db, user=user, base_url=public_url())
            session_db.commit()
            enqueue_mail(huey())
        # The same answer whether or not there is such an account, and whether or not a limit was reached.
        flash("If an account uses that address, we sent it a link to choose a new password. It works for one "
              "hour.", "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form), 400 if form.errors else 200


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    return _choose_password(token, purpose="reset",
                            done="Your password is changed and every device was signed out. Sign in as {email}.")


@bp.route("/welcome/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    """An invited person chooses their password (the link in the invitation an admin sent)."""
    return _choose_password(token, purpose="invite",
                            done="Welcome: your password is set. Sign in as {email}.")


def _choose_password(token: str, *, purpose: str, done: str):
    """A password chosen from an e-mailed link ("reset" or "invite")."""
    form = ResetPasswordForm()
    welcome = purpose == "invite"
    if welcome:
        form.password.label.text = "Your password"
    if form.validate_on_submit():
        session_db = db()
        try:
            user = accounts.password_from_link(session_db, purpose=purpose, raw=token, password=form.password.data)
            session_db.commit()
        except accounts.AccountError as error:
            session_db.rollback()
            attach_error(form, error.field or None, str(error))
        else:
            logout_user()
            session.clear()
            flash(done.format(email=user.email), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form, welcome=welcome), \
        400 if form.errors or form.form_errors else 200


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """The e-mail address (confirmed or not) and the notification switches."""
    form = NotificationsForm(obj=current_user)
    if form.validate_on_submit():
        session_db = db()
        for name in ("notify_assessment", "notify_review", "notify_certificate", "notify_digest"):
            setattr(current_user, name, bool(getattr(form, name).data))
        session_db.add(current_user)
        session_db.commit()
        flash("Your e-mail settings are saved.", "success")
        return redirect(url_for("auth.account"))
    return _account_page(form)


def _account_page(form=None, *, commit_error: str | None = None, commit_value: str = "", status: int = 200):
    page = render_template("auth/account.html", form=form or NotificationsForm(obj=current_user),
                           resend=ActionForm(formdata=None), commit_emails=accounts.commit_emails(db(), user=current_user),
                           commit_error=commit_error, commit_value=commit_value)
    return page, status


@bp.route("/account/commit-emails", methods=["POST"])
@login_required
def add_commit_email():
    """Another address the learner commits with: a link goes to it, and it counts once opened."""
    if not ActionForm().validate_on_submit():
        abort(400)
    session_db = db()
    typed = request.form.get("email", "")[:300]
    try:
        row = accounts.add_commit_email(session_db, user=current_user, email=typed)
    except accounts.AccountError as error:
        session_db.rollback()
        return _account_page(commit_error=str(error), commit_value=typed, status=400)
    _send_commit_link(session_db, row)
    session_db.commit()
    flash(f"{row.email} is on your list. Open the link we sent to it to confirm it.", "success")
    return redirect(url_for("auth.account", _anchor="commit-emails"))


def _send_commit_link(session_db, row) -> None:
    if accounts.allow_mail_request(session_db, kind="commit", email=row.email, ip=_client_ip()):
        notifications.send_commit_email_confirmation(session_db, user=current_user, row=row, base_url=public_url())
        session_db.flush()
        enqueue_mail(huey())


@bp.route("/account/commit-emails/<int:email_id>/resend", methods=["POST"])
@login_required
def resend_commit_email(email_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    session_db = db()
    row = next((row for row in accounts.commit_emails(session_db, user=current_user) if row.id == email_id), None)
    if row is None:
        abort(404)
    if row.confirmed_at is None:
        _send_commit_link(session_db, row)
        session_db.commit()
    flash(f"If {row.email} is still unconfirmed, a new link is on its way to it.", "info")
    return redirect(url_for("auth.account", _anchor="commit-emails"))


@bp.route("/account/commit-emails/<int:email_id>/delete", methods=["POST"])
@login_required
def remove_commit_email(email_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    session_db = db()
    if not accounts.remove_commit_email(session_db, user=current_user, email_id=email_id):
        abort(404)
    session_db.commit()
    flash("The address is removed from your list.", "info")
    return redirect(url_for("auth.account", _anchor="commit-emails"))


@bp.route("/account/commit-emails/confirm/<token>", methods=["GET", "POST"])
def confirm_commit_email(token: str):
    """GET shows a button (mail scanners open links); POST confirms."""
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        session_db = db()
        try:
            row = accounts.confirm_commit_email(session_db, raw=token)
            session_db.commit()
        except accounts.AccountError as error:
            session_db.rollback()
            return render_template("auth/confirm_commit_email.html", form=form, error=str(error), claim=None), 400
        flash(f"Thank you: {row.email} is confirmed; commits made with it count as yours.", "success")
        return redirect(url_for("auth.account") if current_user.is_authenticated else url_for("auth.login"))
    claim = accounts.commit_email_claim(db(), raw=token)
    if claim is None:
        return render_template("auth/confirm_commit_email.html", form=form, error=accounts.INVALID_LINK,
                               claim=None), 400
    return render_template("auth/confirm_commit_email.html", form=form, error=None, claim=claim)


@bp.route("/account/verify", methods=["POST"])
@login_required
def resend_verification():
    if not ActionForm().validate_on_submit():
        abort(400)
    session_db = db()
    if current_user.email_verified_at is None and accounts.allow_mail_request(
            session_db, kind="verify", email=current_user.email, ip=_client_ip()):
        notifications.send_verification(session_db, user=current_user, base_url=public_url())
        session_db.commit()
        enqueue_mail(huey())
    flash(f"If your address is still unconfirmed, a new link is on its way to {current_user.email}.", "info")
    return redirect(url_for("auth.account"))
