"""Sign up, sign in (rate-limited), sign out."""

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from assessor import accounts
from assessor.web.extensions import db, redirect_home
from assessor.web.forms import ActionForm, LoginForm, SignupForm, attach_error

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
    if current_user.is_authenticated:
        return redirect_home()
    return redirect(url_for("auth.login"))


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect_home()
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(db(), email=form.email.data, password=form.password.data,
                                        name=form.name.data or "", role="learner")
            db().commit()
        except accounts.AccountError as error:
            db().rollback()
            attach_error(form, error.field or "email", str(error))
        else:
            session.clear()
            login_user(user)
            flash("Welcome! Your account is ready.", "success")
            return redirect(url_for("learner.home"))
    status = 400 if form.errors else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect_home()
    form = LoginForm()
    if form.validate_on_submit():
        config = current_app.config
        limits = accounts.LoginLimits(max_failures=int(config["LOGIN_MAX_FAILURES"]),
                                      window=timedelta(seconds=int(config["LOGIN_WINDOW_SECONDS"])))
        try:
            user = accounts.authenticate(db(), email=form.email.data, password=form.password.data,
                                         ip=request.remote_addr or "unknown", limits=limits)
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
        logout_user()
        session.clear()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
