"""The web service: `create_app` loads configuration, then each subsystem's `init_app` wires itself in."""

from datetime import timedelta
from pathlib import Path

from flask import Flask

from assessor.config import PROJECT_ROOT, resolve_paths
from assessor.errors import AssessorError

SECRET_KEY_FILE = "secret_key"


def default_config(instance: Path) -> dict:
    paths = resolve_paths()
    return dict(
        DATABASE_URL=f"sqlite:///{instance / 'assessor.db'}",
        QUEUE_URL=f"sqlite:///{instance / 'queue.db'}",
        QUEUE_IMMEDIATE=False,
        RUBRICS_DIR=str(paths.rubrics),
        WORK_ROOT=str(paths.work_root),
        CACHE_DIR=str(instance / "cache"),
        KEYS_DIR=str(instance / "keys"),  # certificate signing keys (0700 dir, 0600 files)
        SIGNING_KEY_FILE=None,  # or the operator's own P-256 PEM (ASSESSOR_SIGNING_KEY_FILE)
        PUBLIC_URL="https://localhost",  # https base URL printed on certificates (verify links, issuer id)
        ISSUER_NAME="Capstone Assessor",
        CERTIFICATE_UPLOAD_MAX=5 * 1024 * 1024,
        VERIFY_API_PER_MINUTE=60,  # POST /api/v1/verify checks from one network address per minute
        LINKEDIN_ORGANIZATION_ID=None,  # the issuer's LinkedIn company id, so "Add to profile" names it
        ALLOW_LOCAL_SOURCES=False,
        ALLOWED_SCHEMES=["https"],
        ALLOWED_HOSTS=None,
        UNSAFE_NO_SANDBOX=False,
        JOB_TIMEOUT_SECONDS=1800,
        STALE_AFTER_SECONDS=300,
        MIN_FREE_DISK_MB=1024,  # less room than this for assessments: they wait, and /readyz says so
        LOGIN_MAX_FAILURES=5,
        LOGIN_WINDOW_SECONDS=900,
        LOGIN_MAX_PER_ADDRESS=50,  # sign-in attempts from one network address per window
        SIGNUP_PER_HOUR=10,  # new accounts from one network address per hour
        MAX_RUNNING_PER_ACCOUNT=2,  # assessments of one account queued or running at once
        METRICS_TOKEN=None,
        METRICS_PUBLIC=False,  # /metrics without a token only when the operator opens it on purpose
        TRUSTED_PROXY="127.0.0.1",  # with PROXY_FIX: the proxy whose X-Forwarded-* headers waitress trusts
        SMTP_HOST=None,  # no SMTP server: mail is kept in the queue (admins see it), never sent
        SMTP_PORT=25,
        SMTP_SECURITY="starttls",  # starttls, ssl or none
        SMTP_USERNAME=None,
        SMTP_PASSWORD=None,
        MAIL_SENDER=None,
        PAGE_SIZE=25,
        PROXY_FIX=False,
        MAX_CONTENT_LENGTH=512 * 1024,
        SESSION_COOKIE_NAME="assessor_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,  # also secure whenever the request came over https (see security.py)
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
    )


def read_secret_key(instance: Path) -> str | None:
    path = instance / SECRET_KEY_FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def create_app(test_config: dict | None = None) -> Flask:
    """Configuration, lowest precedence first: defaults, `config.py` in the instance folder, `ASSESSOR_*`
    environment variables (prefix dropped, values parsed as JSON where they parse), then `test_config`."""
    instance = Path((test_config or {}).get("INSTANCE_PATH") or resolve_paths().instance).resolve()
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=True,
                template_folder=str(PROJECT_ROOT / "templates"), static_folder="static")
    app.config.from_mapping(default_config(instance))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("ASSESSOR")
    if test_config is not None:
        app.config.from_mapping(test_config)
    if app.config.get("REDIS_URL"):  # scaled out: RedisHuey instead of the embedded SqliteHuey
        app.config["QUEUE_URL"] = app.config["REDIS_URL"]
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = read_secret_key(instance)
    if not app.config.get("SECRET_KEY"):
        raise AssessorError(f"no secret key in {instance}: run `assessor init` first (or set ASSESSOR_SECRET_KEY)")

    from assessor.web import (
        admin, admin_lti, auth, extensions, hooks, learner, lti, mentor, repositories, security,
    )

    security.install_converters(app)
    extensions.init_app(app)
    from assessor.web import ops

    ops.init_app(app)  # first: its request id and timing wrap every other hook
    security.init_app(app)
    auth.init_app(app)
    learner.init_app(app)
    repositories.init_app(app)
    hooks.init_app(app)
    lti.init_app(app)
    admin_lti.init_app(app)
    mentor.init_app(app)
    admin.init_app(app)
    from assessor.web import admin_certificates, admin_modules, api, code, public

    public.init_app(app)
    admin_certificates.init_app(app)
    admin_modules.init_app(app)
    api.init_app(app)
    code.init_app(app)
    return app
