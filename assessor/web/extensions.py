"""Per-app resources: the database engine and a session per request, the job queue, the rubrics, Flask-Login."""

from collections.abc import Callable
from functools import wraps

from flask import Flask, abort, current_app, g, redirect, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from sqlmodel import Session

from assessor.domain import accounts
from assessor.domain.db import make_engine
from assessor.domain.jobs import make_huey, settings_from_config
from assessor.engine.measure.artifacts import section_words
from assessor.engine.rubric import Rubric
from assessor.domain.submissions import available_rubrics

login_manager = LoginManager()
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    app.extensions["assessor.engine"] = make_engine(app.config["DATABASE_URL"])
    app.extensions["assessor.job_settings"] = settings_from_config(app.config)
    app.teardown_appcontext(_close_session)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(_load_user)
    app.add_template_filter(human_time)
    app.add_template_filter(waited)
    app.add_template_filter(section_words)


def human_time(value) -> str:
    """A stored ISO time as a reader says it: "2 Dec 2026, 14:05 UTC" (text that is not a time is shown as is)."""
    from datetime import datetime, timezone

    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    moment = moment.astimezone(timezone.utc) if moment.tzinfo else moment
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def waited(since, now=None) -> str:
    """How long ago, as a reader says it: "5 min", "3 h", "2 days"."""
    from assessor.domain.db import utcnow

    if since is None:
        return "–"
    seconds = max(0, ((now or utcnow()) - since).total_seconds())
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


def engine():
    return current_app.extensions["assessor.engine"]


def db() -> Session:
    """The request's database session (closed when the request ends)."""
    if "db_session" not in g:
        g.db_session = Session(engine(), expire_on_commit=False)
    return g.db_session


def _close_session(_error=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def job_settings():
    return current_app.extensions["assessor.job_settings"]


def public_url() -> str:
    """The address people reach the service at, for links in e-mails (ASSESSOR_PUBLIC_URL)."""
    return job_settings().public_url


def sealing_key() -> bytes:
    """The key-encryption key this app seals secrets with (deploy keys, webhook secrets, the LTI tool key)."""
    from assessor.certificates.sealing import key_encryption_key

    config = current_app.config
    return key_encryption_key(configured=config.get("KEY_ENCRYPTION_KEY"), secret_key=config.get("SECRET_KEY"))


def huey():
    """The app's queue, made on first use."""
    queue = current_app.extensions.get("assessor.huey")
    if queue is None:
        queue = current_app.extensions["assessor.huey"] = make_huey(job_settings())
    return queue


def rubrics() -> list[Rubric]:
    """The rubrics offered for new submissions (read once per request)."""
    if "rubrics" not in g:
        g.rubrics = available_rubrics(current_app.config["RUBRICS_DIR"])
    return g.rubrics


def _load_user(session_id: str):
    """The user a session belongs to, only while the session's token is still the account's (see
    accounts.end_sessions): a copied cookie dies with sign-out, a password change or deactivation."""
    return accounts.user_for_session(db(), session_id)


def role_required(*roles: str) -> Callable:
    """Signed in and holding one of `roles`; anyone else signed in gets 403."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorator


def home_url_for(user) -> str:
    if user.role == "admin":
        return url_for("admin.users")
    if user.role == "mentor":
        return url_for("mentor.dashboard")
    return url_for("learner.home")


def redirect_home():
    return redirect(home_url_for(current_user))
