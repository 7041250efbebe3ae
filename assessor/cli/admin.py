"""Operator commands for the web service: init, users, worker, serve. `register(main)` adds them to the CLI."""

import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from assessor.config import resolve_paths
from assessor.errors import AssessorError
from assessor.domain.models import ROLES

EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _app():
    from assessor.web import create_app

    try:
        return create_app()
    except AssessorError as error:
        _fail(str(error))


def _init_database(app) -> None:
    """Bring the database to the newest schema (Alembic migrations; a fresh database is created by them)."""
    from assessor.domain.migrate import upgrade

    try:
        upgrade(app.extensions["assessor.engine"])
    except Exception as error:  # an unreachable server, a refused login: say which database
        _fail(f"database {_redacted(app.config['DATABASE_URL'])} is not usable: {type(error).__name__}: "
              f"{str(error).splitlines()[0] if str(error) else ''}")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


def write_secret_key(instance: Path) -> bool:
    """Create instance/secret_key (mode 0600) unless it exists; True when a new key was written."""
    from assessor.web import SECRET_KEY_FILE

    instance.mkdir(parents=True, exist_ok=True)
    instance.chmod(0o700)
    path = instance / SECRET_KEY_FILE
    if path.exists():
        path.chmod(0o600)
        return False
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True


def register(main: click.Group) -> None:
    main.add_command(init)
    main.add_command(users)
    main.add_command(worker)
    main.add_command(serve)
    main.add_command(backup)
    main.add_command(restore)
    main.add_command(config_group)
    main.add_command(db_group)
    main.add_command(integrity_group)


@click.command()
def init() -> None:
    """Create the instance folder, its secret key and the database (safe to run again)."""
    paths = resolve_paths()
    created = write_secret_key(paths.instance)
    app = _app()
    _init_database(app)
    click.echo(f"instance folder {paths.instance}")
    click.echo(f"secret key {'created' if created else 'kept'} ({paths.instance / 'secret_key'}, mode 0600)")
    click.echo(f"database ready ({app.config['DATABASE_URL']})")
    click.echo(f"job queue {app.config['QUEUE_URL']}")
    from assessor.cli.certificates import ensure_key

    click.echo(ensure_key(app))


@click.group("db")
def db_group() -> None:
    """Database schema: migrations (Alembic)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision) -> None:
    """Migrate the database (ASSESSOR_DATABASE_URL or the instance's) to the newest schema."""
    from assessor.domain.migrate import upgrade

    app = _app()
    try:
        before, after = upgrade(app.extensions["assessor.engine"], revision)
    except Exception as error:
        _fail(f"database {_redacted(app.config['DATABASE_URL'])}: {type(error).__name__}: {error}")
    click.echo(f"database {_redacted(app.config['DATABASE_URL'])}: "
               + (f"at {after} (unchanged)" if before == after else f"{before or 'empty'} -> {after}"))


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the revision changes.")
def db_revision(message) -> None:
    """For developers: write a new migration with the changes to assessor/models.py (review it before use)."""
    from assessor.domain.migrate import new_revision

    click.echo(f"wrote {new_revision(message)}")


@db_group.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest one."""
    from assessor.domain.migrate import current, head

    app = _app()
    click.echo(f"current {current(app.extensions['assessor.engine']) or 'none'}, newest {head()}")


@click.group("integrity")
def integrity_group() -> None:
    """Integrity evidence: the near-copy index."""


@integrity_group.command("index")
@click.option("--course", "rubric_id", default=None, help="Only this course's (rubric id) submissions.")
def integrity_index(rubric_id) -> None:
    """Fingerprint stored submissions that have no fingerprints yet (assessed before near copies were looked for,
    or under an older engine), so that new submissions are compared with them. Safe to run again."""
    from sqlmodel import Session

    from assessor.domain import integrity

    app = _app()
    _init_database(app)
    with Session(app.extensions["assessor.engine"]) as session:
        indexed, skipped = integrity.index_stored_submissions(session, rubric_id=rubric_id)
    click.echo(f"fingerprinted {indexed} stored submission{'' if indexed == 1 else 's'}"
               + (f"; {skipped} without kept files (assessed before the code view) cannot be compared" if skipped
                  else ""))


@click.group()
def users() -> None:
    """Add and list accounts (learner, mentor, admin)."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="learner", show_default=True)
@click.option("--name", default="", help="Display name.")
@click.option("--course", "courses", multiple=True, metavar="RUBRIC_ID", help="Course a mentor reviews (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def users_add(email, role, name, courses, password_stdin) -> None:
    """Create an account. Without --password-stdin the password is prompted for (twice, hidden)."""
    from assessor.domain import accounts
    from assessor.domain.db import session_scope
    from assessor.domain.submissions import available_rubrics

    app = _app()
    _init_database(app)
    if courses:
        try:
            known = {rubric.id for rubric in available_rubrics(app.config["RUBRICS_DIR"])}
        except AssessorError as error:
            _fail(str(error))
        unknown = sorted(set(courses) - known)
        if unknown:
            _fail(f"unknown rubric {unknown[0]!r} (available: {', '.join(sorted(known)) or 'none'})")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(app.extensions["assessor.engine"]) as session:
            user = accounts.create_user(session, email=email, password=password, role=role, name=name, courses=courses)
            summary = f"{user.email} ({user.role})"
    except AssessorError as error:
        _fail(str(error))
    click.echo(f"created {summary}" + (f", courses: {', '.join(sorted(courses))}" if courses else ""))


@users.command("list")
def users_list() -> None:
    """Every account with its role and courses."""
    from assessor.domain import accounts
    from assessor.domain.db import session_scope

    app = _app()
    _init_database(app)
    with session_scope(app.extensions["assessor.engine"]) as session:
        for user in accounts.list_users(session):
            courses = accounts.assigned_courses(session, user=user)
            state = "" if user.active else "  (inactive)"
            click.echo(f"{user.email:<40} {user.role:<8} {', '.join(courses)}{state}")


@contextmanager
def _existing_account(email: str):
    """A session and the account with this e-mail, or exit 2 naming it."""
    from assessor.domain import accounts
    from assessor.domain.db import session_scope

    with session_scope(_app().extensions["assessor.engine"]) as session:
        user = accounts.find_user(session, email=email)
        if user is None:
            _fail(f"no account {email!r}")
        yield session, user


@users.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def users_role(email, role) -> None:
    """Change an account's role."""
    from assessor.domain import accounts

    with _existing_account(email) as (session, user):
        accounts.set_role(session, user=user, role=role)
    click.echo(f"{email}: role {role}")


@users.command("courses")
@click.argument("email")
@click.argument("rubric_ids", nargs=-1)
def users_courses(email, rubric_ids) -> None:
    """Set the courses (rubric ids) a mentor reviews; none clears them."""
    from assessor.domain import accounts

    with _existing_account(email) as (session, user):
        accounts.set_courses(session, user=user, rubric_ids=rubric_ids)
    click.echo(f"{email}: courses {', '.join(sorted(rubric_ids)) or 'none'}")



def _started_app():
    """The app a long-running command (serve, worker) works with: logs set up, the instance folder and its secret
    key made on a fresh machine (the embedded default comes up with nothing but this command), the database
    brought up to date."""
    from assessor import logs

    logs.configure()
    if write_secret_key(resolve_paths().instance):
        click.echo("first start: created the instance folder and its secret key", err=True)
    app = _app()
    logs.configure(app.config.get("LOG_FORMAT"))  # the instance config may ask for JSON lines
    _init_database(app)
    return app

@click.command()
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Jobs run at once.")
@click.option("--type", "worker_type", type=click.Choice(["thread", "process"]), default="thread", show_default=True,
              help="process workers also enforce the job time limit inside the worker.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0, help="Serve this worker's Prometheus "
              "metrics (assessments, stage durations, sandbox kills) on this port; 0: do not.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option("--parent-pid", type=click.IntRange(1), hidden=True,
              help="Stop when this process, the one that started the worker, is gone (how `serve` starts it).")
def worker(workers, worker_type, metrics_port, metrics_host, parent_pid) -> None:
    """Run the assessment worker (huey consumer). SIGINT or SIGTERM: running jobs may finish (up to 30 s); any
    still running then are handed back to the queue for another worker."""
    from assessor.domain import jobs

    # Started in the background by a shell (`serve &`, nohup), the worker inherits SIGINT ignored; SIGINT is
    # how it is told to stop at once.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if parent_pid:
        from assessor.domain.embedded_worker import stop_with_parent

        stop_with_parent(parent_pid)
    app = _started_app()
    _refuse_other_settings(app)
    settings = jobs.settings_from_config(app.config)
    try:
        huey = jobs.make_huey(settings)
        jobs.check_queue(huey, settings.queue_url)
    except AssessorError as error:
        _fail(str(error))
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=huey.assessor_runtime.metrics.registry)
        click.echo(f"worker metrics on http://{metrics_host}:{metrics_port}/metrics", err=True)
    from assessor.engine.pipeline import clean_stale_job_dirs

    reaped = jobs.reap_on_start(huey, sole_worker=bool(parent_pid))
    # A worker killed outright leaves its job dirs (and their sandbox mounts) behind.
    for job_dir in clean_stale_job_dirs(settings.work_root):
        click.echo(f"removed the work dir of a job that died: {job_dir}", err=True)
    if reaped:
        click.echo(f"stale running attempt(s) {', '.join(map(str, reaped))} handled (queued again or failed)", err=True)
    consumer = huey.create_consumer(workers=workers, worker_type=worker_type, periodic=True, graceful_signal="TERM",
                                    initial_delay=0.1, max_delay=2.0, shutdown_timeout=30)
    try:
        consumer.run()
    finally:
        jobs.hand_back_in_flight(huey)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Web server threads.")
@click.option("--workers", type=click.IntRange(0, 64), default=2, show_default=True,
              help="Assessment jobs run at once by the embedded worker (0: start no worker).")
def serve(host, port, threads, workers) -> None:
    """Serve the web app with waitress and, for the embedded queue, an assessment worker beside it."""
    from waitress import create_server

    app = _started_app()
    _record_settings(app)
    embedded = None
    if workers and app.config["QUEUE_URL"].startswith("sqlite:///"):
        from assessor.domain.embedded_worker import EmbeddedWorker

        embedded = EmbeddedWorker(workers)
        app.extensions["assessor.embedded_worker"] = embedded  # /readyz reports it
        click.echo(f"worker started (pid {embedded.start()}, {workers} at once)", err=True)
    server = create_server(app, host=host, port=port, threads=threads, ident="capstone-assessor",
                           **proxy_options(app.config))

    def stop(signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    click.echo(f"serving on http://{host}:{port}/ (Ctrl-C stops the server and the worker)", err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
        if embedded is not None:
            embedded.stop(_stop_child)
    click.echo("stopped", err=True)


def proxy_options(config) -> dict:
    """waitress drops X-Forwarded-* unless told which proxy to trust: with PROXY_FIX, the one at TRUSTED_PROXY
    (default 127.0.0.1, a TLS terminator on the same machine) is trusted for one hop; headers from anyone else
    are removed, so they cannot claim another address or https."""
    if not config.get("PROXY_FIX"):
        return {}
    return {"trusted_proxy": str(config.get("TRUSTED_PROXY") or "127.0.0.1"), "trusted_proxy_count": 1,
            "trusted_proxy_headers": "x-forwarded-for x-forwarded-proto x-forwarded-host x-forwarded-port",
            "clear_untrusted_proxy_headers": True}


def _stop_child(child: subprocess.Popen, graceful_seconds: float = 35.0) -> None:
    """SIGTERM (the worker's graceful stop: running jobs may finish, the rest are handed back), then SIGINT
    (immediate: running jobs are handed back), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, graceful_seconds), (signal.SIGINT, 5.0), (signal.SIGKILL, 5.0)):
        if child.poll() is not None:
            return
        try:
            child.send_signal(sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)


@click.command()
@click.argument("destination", type=click.Path(path_type=Path))
def backup(destination: Path) -> None:
    """Back up everything a restore needs into DESTINATION (a new folder, mode 0700: it holds the secret key):
    the database (SQLite's online backup, or pg_dump), the instance's secret key and config.py. The service may
    go on running."""
    from assessor.domain.backup import BackupError, take_backup

    app = _app()
    try:
        manifest = take_backup(database_url=app.config["DATABASE_URL"], instance=Path(app.instance_path),
                               destination=destination,
                               kek_from_environment=bool(app.config.get("KEY_ENCRYPTION_KEY")))
    except BackupError as error:
        _fail(str(error))
    click.echo(f"backup written to {destination}: {manifest.database} database, "
               f"{', '.join(manifest.instance_files) or 'no instance files'}; key-encryption key: "
               f"{manifest.key_encryption_key}")


@click.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True, file_okay=False))
def restore(source: Path) -> None:
    """Restore a backup taken with `assessor backup` into this instance, whose database must be empty; then the
    schema is brought up to date. Start the service afterwards."""
    from sqlalchemy import inspect

    from assessor.domain.backup import BackupError, restore_database, restore_instance_files

    try:
        restore_instance_files(source=source, instance=resolve_paths().instance)
    except BackupError as error:
        _fail(str(error))
    app = _app()
    engine = app.extensions["assessor.engine"]
    try:
        empty = not inspect(engine).get_table_names()
    except Exception as error:
        _fail(f"database {_redacted(app.config['DATABASE_URL'])} is not usable: {type(error).__name__}")
    engine.dispose()
    try:
        manifest = restore_database(source=source, database_url=app.config["DATABASE_URL"], database_is_empty=empty)
    except BackupError as error:
        _fail(str(error))
    _init_database(app)
    click.echo(f"restored the {manifest.database} database and {', '.join(manifest.instance_files) or 'no files'} "
               f"from a backup of {manifest.created_at}")


def _record_settings(app) -> None:
    """A web server starting publishes its public URL, issuer and mail sender as the deployment's."""
    from sqlmodel import Session

    from assessor.domain import deployment

    with Session(app.extensions["assessor.engine"]) as session:
        deployment.record(session, app.config)


def _refuse_other_settings(app) -> None:
    """A worker whose settings differ from what the web servers publish would issue certificates naming another
    address, or mail from another sender: it does not start."""
    from sqlmodel import Session

    from assessor.domain import deployment

    with Session(app.extensions["assessor.engine"]) as session:
        found = deployment.differences(session, app.config)
    if found:
        _fail("this worker's settings differ from the web servers': "
              + "; ".join(f"ASSESSOR_{name} is {here!r} here but {recorded!r} there" for name, recorded, here in found)
              + " (give it the same settings; `assessor config check` shows them)")


@click.group("config")
def config_group() -> None:
    """This machine's configuration."""


@config_group.command("check")
def config_check() -> None:
    """Print the settings this machine will use and where each comes from, beside the ones the web servers
    recorded; exit 2 when a recorded one differs (a worker would refuse to start)."""
    from sqlmodel import Session

    from assessor.domain import deployment

    app = _app()
    try:
        with Session(app.extensions["assessor.engine"]) as session:
            lines = deployment.describe(session, app.config, Path(app.instance_path))
    except Exception as error:  # no database yet, or unreachable: the local view still helps
        click.echo(f"(database not readable: {type(error).__name__}; recorded settings not compared)", err=True)
        lines = deployment.describe(None, app.config, Path(app.instance_path))
    width = max(len(line.name) for line in lines) + len("ASSESSOR_")
    for line in lines:
        recorded = ""
        if line.recorded is not None:
            recorded = "  (the web servers' value)" if not line.differs else f"  DIFFERS from the web servers' {line.recorded!r}"
        click.echo(f"{'ASSESSOR_' + line.name:<{width}}  {line.shown or '(empty)'}  [{line.source}]{recorded}")
    if any(line.differs for line in lines):
        sys.exit(EXIT_BAD_INPUT)
