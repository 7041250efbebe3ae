"""Assessments as queued jobs (huey). The huey instance is built from settings by `make_huey`; its one task calls
`run_attempt`, which runs the engine's pipeline and records every outcome on the attempt.

Never assessed twice: before running anything, `run_attempt` resolves the commit the attempt points at with
`intake.resolve_commit` (git ls-remote in intake's locked-down environment: no system/global config, no prompts, only
the allowed protocols, a time limit). If a report for (commit, rubric id, version, sha256) is stored, it is
reused and nothing is cloned or run. If the commit cannot be resolved that way (a short SHA, an unreachable
host), the pipeline runs and the report is stored-or-reused by its key afterwards.

Never stuck "running": every exception ends the attempt `failed` with a reason (the engine's one-line message,
"timed out", or "internal error" with the traceback logged). A worker that dies mid-job cannot do that, so a
heartbeat thread touches the attempt while it runs and `reap_stale` (every minute in the consumer, and when a
worker starts) hands back to the queue attempts whose heartbeat stopped (the worker was killed), up to
`max_tries` claims in all, so a job that kills every worker it lands on ends failed instead of looping; attempts
that ran past the job time limit end failed.

Exactly once: a worker claims an attempt with one conditional UPDATE (queued -> running, tries + 1), so a
duplicate enqueue or a second worker finds nothing to do; every later write of the job is conditional on its try
number, so a worker that was given up on cannot overwrite the try that replaced it. Transient failures (the git
host unreachable) are retried with exponential backoff; learner errors (a bad URL, failing tests) are results.
Failures that are the service's (retries used up, crashes, internal errors) end in the dead-letter list
(`dead_letter`), which admins see and can queue again.
"""

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from huey import MemoryHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.exceptions import TaskTimeout
from sqlmodel import Session, select

from assessor.domain import diskspace, integrity, notifications
from assessor.domain.accounts import forget_old_failures
from assessor.domain.mail import send_due, settings_from_config as mail_settings_from_config
from assessor.domain.db import DATABASE_OUTAGES, make_engine, utcnow
from assessor.errors import AssessorError, OutOfRoomError, TransientIntakeError
from assessor.engine.intake import SourcePolicy, resolve_commit
from assessor.logs import attempt_context
from assessor.domain.metrics import Metrics
from assessor.domain.models import QUEUED, RUNNING, Attempt, User
from assessor.domain.source_store import store_sources
from assessor.domain.submissions import (
    attempt_rubric, finish_failed, finish_scored, find_stored_report, heartbeat, mark_running, record_event,
    requeue_running, set_stage,
    store_report,
)

logger = logging.getLogger("assessor.jobs")

TASK_NAME = "assessor.run_attempt"
REAPER_NAME = "assessor.reap_stale"
CERTIFICATE_TASK_NAME = "assessor.issue_certificate"
MAIL_TASK_NAME = "assessor.send_mail"
MAIL_RETRY_NAME = "assessor.send_mail_periodic"
DIGEST_NAME = "assessor.mentor_digest"
GRADES_TASK_NAME = "assessor.send_grades"
GRADES_PERIODIC_NAME = "assessor.send_grades_periodic"
GRADE_RETRY_BASE_SECONDS = 30
LS_REMOTE_TIMEOUT = 30.0

# Attempts this process is assessing right now (id -> try number), so a stopping worker can hand them back.
_IN_FLIGHT: dict[int, int] = {}
_IN_FLIGHT_LOCK = threading.Lock()


@dataclass(frozen=True)
class JobSettings:
    database_url: str
    queue_url: str                      # sqlite:///PATH (embedded default), redis://..., or memory://
    work_root: Path
    cache_dir: Path
    source_policy: SourcePolicy = field(default_factory=SourcePolicy)
    unsafe_no_sandbox: bool = False
    immediate: bool = False             # run jobs inline (tests about something else only)
    job_timeout_seconds: float = 1800.0
    stale_after_seconds: float = 300.0  # no heartbeat for this long: the worker died
    heartbeat_seconds: float = 15.0
    wall_seconds: float | None = None   # override of the rubric's test-run limit
    max_tries: int = 3                  # claims of one attempt (transient retries and crash recoveries) at most
    retry_base_seconds: float = 10.0    # first retry after this long, doubling each time
    outage_wait_seconds: float = 120.0  # how long a job waits for a database that is down before giving up
    min_free_disk_mb: int = 1024        # less room than this in the work root: assessments wait
    disk_wait_seconds: float = 60.0     # and try again this much later
    issuer: Any = None                  # assessor.issuing.IssuerSettings (certificates)
    public_url: str = "https://localhost"  # the links in e-mails
    mail: Any = None                    # assessor.mail.MailSettings
    compare_with_samples: bool = True   # near copies of the shipped samples are flagged too (not in the demo)
    git_hosts: tuple = ()               # assessor.repository_access.GitHost: hosts trusted by their host keys


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _names(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(item).strip().lower() for item in value if str(item).strip()]


def source_policy_from_config(config: Mapping[str, Any]) -> SourcePolicy:
    from assessor.domain.repository_access import parse_git_hosts

    schemes = frozenset(_names(config.get("ALLOWED_SCHEMES")) or ["https"])
    hosts = _names(config.get("ALLOWED_HOSTS"))
    roots = [Path(root) for root in _paths(config.get("LOCAL_SOURCE_ROOTS"))]
    internal = frozenset(_names(config.get("INTERNAL_HOSTS")))
    git_hosts = parse_git_hosts(config.get("GIT_HOSTS"))
    ssh_hosts = None
    if git_hosts:
        # ssh to the hosts whose keys the operator published here, and to no other.
        names = frozenset(host.host for host in git_hosts)
        schemes, ssh_hosts = schemes | {"ssh"}, names
        hosts = hosts + sorted(names) if hosts else hosts
        internal |= frozenset(host.host for host in git_hosts if host.internal)
    return SourcePolicy(allowed_schemes=schemes, allowed_hosts=frozenset(hosts) or None,
                        allow_local=_flag(config.get("ALLOW_LOCAL_SOURCES", False)),
                        internal_hosts=internal, ssh_hosts=ssh_hosts,
                        # The web app takes local sources only from folders the operator named (the demo's own).
                        local_roots=tuple(roots))


def _paths(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(os.pathsep)
    return [str(item) for item in value if str(item).strip()]


def settings_from_config(config: Mapping[str, Any]) -> JobSettings:
    """Read the job settings out of the app's configuration mapping (keys without the ASSESSOR_ prefix)."""
    wall = config.get("WALL_SECONDS")
    return JobSettings(
        database_url=config["DATABASE_URL"],
        queue_url=config["QUEUE_URL"],
        work_root=Path(config["WORK_ROOT"]),
        cache_dir=Path(config["CACHE_DIR"]),
        source_policy=source_policy_from_config(config),
        unsafe_no_sandbox=_flag(config.get("UNSAFE_NO_SANDBOX", False)),
        immediate=_flag(config.get("QUEUE_IMMEDIATE", False)),
        job_timeout_seconds=float(config.get("JOB_TIMEOUT_SECONDS", 1800)),
        stale_after_seconds=float(config.get("STALE_AFTER_SECONDS", 300)),
        heartbeat_seconds=float(config.get("HEARTBEAT_SECONDS", 15)),
        wall_seconds=float(wall) if wall not in (None, "") else None,
        max_tries=max(1, int(config.get("MAX_TRIES", 3))),
        retry_base_seconds=float(config.get("RETRY_BASE_SECONDS", 10)),
        issuer=_issuer_settings(config),
        public_url=str(config.get("PUBLIC_URL") or "https://localhost").rstrip("/"),
        mail=mail_settings_from_config(config),
        compare_with_samples=_flag(config.get("INTEGRITY_SAMPLES", True)),
        min_free_disk_mb=int(config.get("MIN_FREE_DISK_MB", 1024)),
        git_hosts=_git_hosts(config),
    )


def _git_hosts(config: Mapping[str, Any]) -> tuple:
    from assessor.domain.repository_access import parse_git_hosts

    return parse_git_hosts(config.get("GIT_HOSTS"))


def _issuer_settings(config: Mapping[str, Any]):
    from assessor.domain.issuing import settings_from_config as issuer_settings_from_config

    return issuer_settings_from_config(config) if config.get("KEYS_DIR") else None


class _Runtime:
    """Per-process resources of a queue: the engine is made on first use, so a forked worker makes its own."""

    def __init__(self, settings: JobSettings, metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()

    @cached_property
    def engine(self):
        return make_engine(self.settings.database_url)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


# huey keys each task by its function's module and name, and a queued job carries that key: the tasks keep the
# module they were defined in before the package took layers, so jobs queued by an earlier version still run.
TASK_MODULE = "assessor.jobs"


def _queued(decorator, *args, **options):
    def register(function):
        function.__module__ = TASK_MODULE
        return decorator(*args, **options)(function)
    return register


def make_huey(settings: JobSettings, *, name: str = "assessor", metrics: Metrics | None = None) -> Huey:
    """The queue for these settings, with the assessment task and the stale-job reaper registered."""
    common = dict(name=name, results=False, store_none=False, store_intermediate_errors=False, utc=True)
    url = settings.queue_url
    if settings.immediate:
        huey: Huey = MemoryHuey(immediate=True, **common)
    elif url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(filename=str(path), **common)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from huey import RedisHuey
            import redis
        except ImportError:
            raise AssessorError("a redis:// queue needs the 'redis' package installed") from None
        # A connect timeout, so an unreachable Redis is an error within seconds rather than a hang.
        pool = redis.ConnectionPool.from_url(url, socket_connect_timeout=5)
        huey = RedisHuey(connection_pool=pool, **common)
    elif url == "memory://":
        huey = MemoryHuey(**common)
    else:
        raise AssessorError(f"unknown queue URL {url!r}: use sqlite:///PATH or redis://HOST:PORT/DB")
    runtime = _Runtime(settings, metrics)

    # huey's own timeout only works with process workers; the reaper covers thread workers.
    @_queued(huey.task, name=TASK_NAME, retries=0, timeout=int(settings.job_timeout_seconds))
    def run_attempt_task(attempt_id: int) -> None:
        space = diskspace.room(settings.work_root, needed_mb=settings.min_free_disk_mb)
        if not space.enough:  # the attempt stays queued, no try spent; the admin sees it on /readyz and Jobs
            logger.error("attempt %s waits: %s", attempt_id, space.describe())
            requeue(attempt_id, settings.disk_wait_seconds)
            return
        outcome = run_attempt(attempt_id, sessions=runtime.session, settings=settings, metrics=runtime.metrics,
                              requeue=requeue)
        if outcome in ("scored", "reused", "failed"):
            send_mail_task()

    def requeue(attempt_id: int, delay: float = 0) -> None:
        if delay > 0:
            run_attempt_task.schedule((attempt_id,), delay=delay)
        else:
            huey.enqueue(run_attempt_task.s(attempt_id))

    @_queued(huey.periodic_task, crontab(minute="*"), name=REAPER_NAME)
    def reap_task() -> None:
        with runtime.session() as session:
            reap_stale(session, settings=settings, requeue=requeue, metrics=runtime.metrics)
            requeue_orphans(session, huey, settings=settings)
            session.commit()
        # The work folders of jobs whose worker died, not only when a worker next starts.
        from assessor.engine.pipeline import clean_stale_job_dirs

        for job_dir in clean_stale_job_dirs(settings.work_root):
            logger.warning("removed the work folder of a job whose worker died: %s", job_dir.name)
        with runtime.session() as session:
            forget_old_failures(session, before=utcnow() - timedelta(days=1))
            session.commit()

    # Idempotent (one certificate per attempt), so a retry after a crash is safe.
    @_queued(huey.task, name=CERTIFICATE_TASK_NAME, retries=3, retry_delay=30)
    def issue_certificate_task(attempt_id: int) -> None:
        from assessor.domain.issuing import (
            CERTIFICATE_BLOCKED, IssuingError, SigningUnavailable, certificate_for_attempt, issue_certificate,
        )

        with runtime.session() as session:
            try:
                had = certificate_for_attempt(session, attempt_id=attempt_id)
                certificate = issue_certificate(session, attempt_id=attempt_id, settings=settings.issuer)
            except SigningUnavailable as error:  # this machine cannot sign: the admins are told, huey retries
                session.rollback()
                logger.error("the certificate of attempt %s cannot be signed here: %s", attempt_id, error)
                record_event(session, kind=CERTIFICATE_BLOCKED, attempt_id=attempt_id, detail=str(error))
                session.commit()
                raise
            except IssuingError as error:  # not certifiable: retrying would not change that
                logger.warning("no certificate for attempt %s: %s", attempt_id, error)
                return
            if certificate.credential_ld is None:
                from assessor.domain.wallet import add_wallet_form

                add_wallet_form(session, certificate=certificate, settings=settings.issuer)
            if had is None:
                attempt = session.get(Attempt, attempt_id)
                notifications.certificate_issued(session, user=session.get(User, certificate.user_id),
                                                 course=attempt.course, attempt_id=attempt_id,
                                                 verify_url=settings.issuer.verify_url(certificate.public_id),
                                                 base_url=settings.public_url)
                session.commit()
                send_mail_task()

    # Mail waits in the database; this sends what is due (right after it is queued, and every minute for retries).
    @_queued(huey.task, name=MAIL_TASK_NAME, retries=0)
    def send_mail_task() -> None:
        with runtime.session() as session:
            send_due(session, settings.mail)

    @_queued(huey.periodic_task, crontab(minute="*"), name=MAIL_RETRY_NAME)
    def send_mail_periodic() -> None:
        with runtime.session() as session:
            send_due(session, settings.mail)

    @_queued(huey.periodic_task, crontab(hour="7", minute="0"), name=DIGEST_NAME)
    def mentor_digest_task() -> None:
        with runtime.session() as session:
            notifications.mentor_digests(session, base_url=settings.public_url)
            session.commit()
        send_mail_task()

    # Scores back to the course's LMS (LTI Assignment and Grade Services): each pending one, retried with backoff.
    @_queued(huey.task, name=GRADES_TASK_NAME, retries=0)
    def send_grades_task() -> None:
        from assessor.domain import lti

        kek = settings.issuer.kek if settings.issuer is not None else None
        if kek is None:
            return
        with runtime.session() as session:
            waiting = [(send.id, send.tries) for send in lti.pending_grades(session)]
            retry_in = None
            for send_id, tries in waiting:
                if lti.send_grade(session, send_id=send_id, kek=kek) == "retry":
                    delay = min(GRADE_RETRY_BASE_SECONDS * 2 ** tries, 3600)
                    retry_in = delay if retry_in is None else min(retry_in, delay)
        if retry_in is not None:
            send_grades_task.schedule(delay=retry_in)

    @_queued(huey.periodic_task, crontab(minute="*/5"), name=GRADES_PERIODIC_NAME)
    def send_grades_periodic() -> None:
        send_grades_task.call_local()

    huey.assessor_grades_task = send_grades_task  # type: ignore[attr-defined]
    huey.assessor_certificate_task = issue_certificate_task  # type: ignore[attr-defined]
    huey.assessor_mail_task = send_mail_task  # type: ignore[attr-defined]
    huey.assessor_digest_task = mentor_digest_task  # type: ignore[attr-defined]
    huey.assessor_runtime = runtime  # type: ignore[attr-defined]
    huey.assessor_task = run_attempt_task  # type: ignore[attr-defined]
    huey.assessor_requeue = requeue  # type: ignore[attr-defined]
    return huey


def check_queue(huey: Huey, url: str) -> int:
    """The number of jobs waiting; raises AssessorError naming the queue when it cannot be reached."""
    try:
        return huey.storage.queue_size()
    except Exception as error:
        shown = re.sub(r"//[^@/]*@", "//***@", url)
        raise AssessorError(f"the job queue {shown} is not reachable ({type(error).__name__}: "
                            f"{str(error).strip().splitlines()[0] if str(error).strip() else 'no details'}); start "
                            f"the worker under a supervisor that restarts it (systemd's Restart=always, see "
                            f"docs/deployment.md): it then starts by itself once the queue answers") from None


def enqueue_attempt(huey: Huey, attempt_id: int) -> str:
    """Queue the assessment of one attempt; returns huey's task id."""
    task = huey.assessor_task.s(attempt_id)  # type: ignore[attr-defined]
    huey.enqueue(task)
    return task.id


def enqueue_certificate(huey: Huey, attempt_id: int) -> str:
    """Queue issuing the certificate of an approved, passing attempt."""
    task = huey.assessor_certificate_task.s(attempt_id)  # type: ignore[attr-defined]
    huey.enqueue(task)
    return task.id


def enqueue_grades(huey: Huey) -> None:
    """Send the scores waiting for the course's LMS soon (the periodic task sends them later if the queue is down)."""
    try:
        huey.enqueue(huey.assessor_grades_task.s())  # type: ignore[attr-defined]
    except Exception:
        logger.warning("could not queue sending the grades; the periodic send will pick them up", exc_info=True)


def enqueue_mail(huey: Huey) -> None:
    """Send queued mail soon; a queue that is down only delays it (the periodic task sends it later)."""
    try:
        huey.enqueue(huey.assessor_mail_task.s())  # type: ignore[attr-defined]
    except Exception:
        logger.warning("could not queue the mail task; the periodic send will pick the mail up", exc_info=True)


def hand_back_in_flight(huey: Huey) -> list[int]:
    """When a worker stops before its jobs finished, the attempts it was still assessing go back to the queue
    (rather than running until reaped); another worker assesses them from the start."""
    runtime: _Runtime = huey.assessor_runtime  # type: ignore[attr-defined]
    with _IN_FLIGHT_LOCK:
        pending = sorted(_IN_FLIGHT.items())
    handed_back = []
    for attempt_id, try_number in pending:
        try:
            with runtime.session() as session:
                if requeue_running(session, attempt_id=attempt_id, try_number=try_number,
                                   reason="the worker was stopped during the assessment; queued again"):
                    huey.assessor_requeue(attempt_id)  # type: ignore[attr-defined]
                    handed_back.append(attempt_id)
        except Exception:
            logger.exception("could not hand back attempt %s (the reaper will)", attempt_id)
    return handed_back


def requeue_orphans(session: Session, huey: Huey, *, settings: JobSettings, now: datetime | None = None) -> list[int]:
    """Queued attempts whose job is gone (a Redis restarted without persistence, a web server that died between
    its commit and its enqueue, a job dropped while the database was down) are enqueued again, whatever else is
    waiting: those queued longer than `stale_after_seconds` ago with no job for them in the queue or its
    schedule. The reaper runs every minute, so an orphan waits at most that long and a minute. A duplicate job
    is harmless: the claim lets one run."""
    before = (now or utcnow()) - timedelta(seconds=settings.stale_after_seconds)
    waiting = set(session.exec(select(Attempt.id).where(Attempt.status == QUEUED, Attempt.created_at < before)))
    if not waiting:
        return []
    orphans = sorted(waiting - queued_attempt_ids(huey))
    for attempt_id in orphans:
        huey.assessor_requeue(attempt_id)  # type: ignore[attr-defined]
    if orphans:
        logger.warning("queued attempts without a job enqueued again: %s", ", ".join(map(str, orphans)))
    return orphans


def queued_attempt_ids(huey: Huey) -> set[int]:
    """The attempts that have a job waiting in the queue or scheduled for later."""
    found = set()
    for task in [*huey.pending(), *huey.scheduled()]:
        if getattr(task, "name", None) == TASK_NAME and task.args and isinstance(task.args[0], int):
            found.add(task.args[0])
    return found


def reap_on_start(huey: Huey, *, sole_worker: bool = False) -> list[int]:
    """Reap before the consumer starts, on an engine of its own (so no connection is inherited by a fork).
    `sole_worker` (the worker `serve` runs for its instance): whatever is still running was its predecessor's,
    which is dead, so it is queued again at once instead of after the heartbeat's silence."""
    settings: JobSettings = huey.assessor_runtime.settings  # type: ignore[attr-defined]
    engine = make_engine(settings.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            reaped = reap_stale(session, settings=settings, requeue=huey.assessor_requeue,  # type: ignore[attr-defined]
                                silent_seconds=0 if sole_worker else None)
            return reaped + requeue_orphans(session, huey, settings=settings)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------------------------

def run_attempt(attempt_id: int, *, sessions: Callable[[], Session], settings: JobSettings,
                assess: Callable[..., Any] | None = None,
                resolve_commit: Callable[[str, str | None, SourcePolicy], str | None] | None = None,
                metrics: Metrics | None = None, requeue: Callable[[int, float], None] | None = None) -> str:
    """Assess one queued attempt and record the outcome. Returns scored, reused, failed, retried or skipped.
    Never leaves the attempt running: any exception marks it failed with the reason, except a transient one
    while tries remain (and `requeue` is given), which queues it again after a backoff."""
    with attempt_context(attempt_id):
        outcome = _run_attempt(attempt_id, sessions=sessions, settings=settings, assess=assess,
                               resolve_commit=resolve_commit, metrics=metrics, requeue=requeue)
        if metrics is not None and outcome != "skipped":
            metrics.assessments.labels(outcome).inc()
        if outcome in ("scored", "reused", "failed"):
            _notify_finished(attempt_id, sessions=sessions, settings=settings)
        return outcome


def _notify_finished(attempt_id: int, *, sessions, settings: JobSettings) -> None:
    """Tell the learner (if they want to know); mail trouble never changes the assessment's outcome."""
    from assessor.domain.models import StoredReport

    try:
        with sessions() as session:
            attempt = session.get(Attempt, attempt_id)
            stored = session.get(StoredReport, attempt.report_id) if attempt.report_id else None
            notifications.assessment_finished(session, attempt=attempt, base_url=settings.public_url,
                                              outcome=stored.outcome if stored else None,
                                              reason=attempt.failure_reason)
            session.commit()
    except Exception:
        logger.exception("could not queue the e-mail about attempt %s", attempt_id)


def patiently(action: Callable[[], Any], *, settings: JobSettings, what: str) -> Any:
    """`action()`, tried again while the database is down (1 s, 2 s, 4 s... apart) for up to
    `outage_wait_seconds`: a restart of the database delays a job, it never drops one. Then the error stands."""
    deadline = time.monotonic() + settings.outage_wait_seconds
    pause = 1.0
    while True:
        try:
            return action()
        except DATABASE_OUTAGES as error:
            if time.monotonic() + pause > deadline:
                raise
            logger.warning("the database is not answering while %s (%s); trying again in %g s", what,
                           type(error).__name__, pause)
            time.sleep(pause)
            pause = min(pause * 2, 30.0)


def _claim(attempt_id: int, sessions) -> tuple[int, str, str | None] | None:
    with sessions() as session:
        try_number = mark_running(session, attempt_id=attempt_id)
        if not try_number:
            return None
        attempt = session.get(Attempt, attempt_id)
        return try_number, attempt.source_url, attempt.ref


SIBLING_WAIT_SECONDS = 30.0


def _sibling_running(attempt_id: int, sessions) -> bool:
    """Another attempt of the same capstone by the same learner is being assessed (a push queued beside it)."""
    with sessions() as session:
        attempt = session.get(Attempt, attempt_id)
        if attempt is None:
            return False
        return session.exec(select(Attempt.id).where(Attempt.submission_id == attempt.submission_id,
                                                     Attempt.id != attempt_id, Attempt.status == RUNNING)).first() \
            is not None


def _run_attempt(attempt_id, *, sessions, settings: JobSettings, assess, resolve_commit, metrics, requeue) -> str:
    # One running attempt per learner and capstone: a push that arrived meanwhile waits its turn, unclaimed.
    if requeue is not None and patiently(lambda: _sibling_running(attempt_id, sessions), settings=settings,
                                         what=f"checking attempt {attempt_id}'s turn"):
        logger.info("attempt %s waits for the learner's running attempt of the same capstone", attempt_id)
        requeue(attempt_id, SIBLING_WAIT_SECONDS)
        return "waiting"
    claimed = patiently(lambda: _claim(attempt_id, sessions), settings=settings, what=f"claiming attempt {attempt_id}")
    if claimed is None:
        logger.info("attempt %s is not queued any more (another worker has it, or it is finished); skipped",
                    attempt_id)
        return "skipped"
    try_number, source, ref = claimed
    logger.info("attempt %s: try %s started", attempt_id, try_number)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat_loop,
                            args=(attempt_id, try_number, sessions, settings.heartbeat_seconds, stop),
                            name=f"heartbeat-{attempt_id}", daemon=True)
    beat.start()
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT[attempt_id] = try_number
    timer = _StageTimer(metrics)
    dead_letter = False
    try:
        return _assess_attempt(attempt_id, source, ref, sessions=sessions, settings=settings, assess=assess,
                               resolve_commit=resolve_commit or resolve_remote_commit, try_number=try_number,
                               timer=timer, metrics=metrics)
    except TaskTimeout:
        reason = f"timed out: the assessment took longer than {_minutes(settings.job_timeout_seconds)}"
    except OutOfRoomError as error:
        # Not the learner's: back in the queue for later, the try given back, never a failure on their page.
        logger.error("attempt %s: %s", attempt_id, error)
        with sessions() as session:
            if requeue_running(session, attempt_id=attempt_id, reason=str(error), try_number=try_number,
                               give_back_try=True) and requeue is not None:
                requeue(attempt_id, settings.disk_wait_seconds)
        return "retried"
    except TransientIntakeError as error:
        if requeue is not None and try_number < settings.max_tries:
            delay = settings.retry_base_seconds * 2 ** (try_number - 1)
            message = f"{error}; trying again in {delay:g} s (try {try_number} of {settings.max_tries})"
            logger.warning("attempt %s: %s", attempt_id, message)
            with sessions() as session:
                if requeue_running(session, attempt_id=attempt_id, reason=message, try_number=try_number):
                    requeue(attempt_id, delay)
            return "retried"
        reason = f"{error} (gave up after {try_number} tries)"
        dead_letter = True
    except AssessorError as error:
        reason = str(error) or type(error).__name__
    except Exception:
        logger.exception("internal error while assessing attempt %s", attempt_id)
        reason = "internal error while assessing (the details are logged for the operators); please submit again later"
        dead_letter = True
    except BaseException:
        _fail(sessions, attempt_id, "the worker was stopped during the assessment; please submit again",
              try_number=try_number)
        raise
    finally:
        timer.close()
        stop.set()
        beat.join(timeout=5)
        with _IN_FLIGHT_LOCK:
            if _IN_FLIGHT.get(attempt_id) == try_number:
                del _IN_FLIGHT[attempt_id]
    _fail(sessions, attempt_id, reason, dead_letter=dead_letter, try_number=try_number, settings=settings)
    return "failed"


class _StageTimer:
    """Stage durations from the pipeline's progress calls: a stage lasts until the next one starts."""

    def __init__(self, metrics: Metrics | None):
        self.metrics = metrics
        self.stage: str | None = None
        self.started = 0.0

    def start(self, stage: str) -> None:
        self.close()
        self.stage, self.started = stage, time.monotonic()

    def close(self) -> None:
        if self.stage is not None and self.metrics is not None:
            self.metrics.stage_seconds.labels(self.stage).observe(time.monotonic() - self.started)
        self.stage = None


def _assess_attempt(attempt_id, source, ref, *, sessions, settings: JobSettings, assess, resolve_commit,
                    try_number: int | None = None, timer: "_StageTimer | None" = None,
                    metrics: Metrics | None = None) -> str:
    with sessions() as session:
        attempt = session.get(Attempt, attempt_id)
        rubric = attempt_rubric(session, attempt=attempt)
        credentials = _credentials(session, attempt, source, settings)
    # A private repository's key goes to git only, and only when there is one (the engine's default otherwise).
    with_key = {"credentials": credentials} if credentials is not None else {}
    commit = resolve_commit(source, ref, settings.source_policy, **with_key)
    if commit:
        with sessions() as session:
            stored = find_stored_report(session, commit=commit, attempt=session.get(Attempt, attempt_id))
            if stored is not None:
                finish_scored(session, attempt_id=attempt_id, stored=stored, reused=True, try_number=try_number)
                logger.info("attempt %s: commit %s already assessed; report %s reused", attempt_id, commit, stored.id)
                return "reused"
    if assess is None:
        from assessor.engine.pipeline import assess  # the engine; imported when first needed
    from assessor.engine.pipeline import PipelineSettings

    def progress(stage: str, message: str) -> None:
        if timer is not None:
            timer.start(stage)
        try:
            with sessions() as session:
                set_stage(session, attempt_id=attempt_id, stage=stage, message=message, try_number=try_number)
        except DATABASE_OUTAGES:  # the stage shown to the learner lags; the assessment goes on
            logger.warning("attempt %s: the database is not answering; stage %s not recorded", attempt_id, stage)

    pipeline_settings = PipelineSettings(
        work_root=settings.work_root, cache_dir=settings.cache_dir, source_policy=settings.source_policy,
        unsafe_no_sandbox=settings.unsafe_no_sandbox, wall_seconds=settings.wall_seconds, keep_sources=True)
    report = assess(source, rubric, settings=pipeline_settings, ref=ref, progress=progress, **with_key)
    if timer is not None:
        timer.close()
    killed_by = (getattr(report, "sandbox", None) or {}).get("killed_by")
    if killed_by and metrics is not None:
        metrics.sandbox_kills.labels(killed_by).inc()
    def record(report) -> bool:
        with sessions() as session:
            if getattr(report, "sources", None) is not None:
                measured = {entry.get("path") for entry in (report.coverage or {}).get("files") or ()}
                store_sources(session, commit=report.commit, snapshot=report.sources, measured=measured)
            report, near_copies = _find_near_copies(session, report, rubric, attempt_id,
                                                    samples=settings.compare_with_samples)
            stored, reused = store_report(session, report=report)
            if near_copies is not None and not reused:
                integrity.record_near_copies(session, report_id=stored.id, pending=near_copies)
            if not finish_scored(session, attempt_id=attempt_id, stored=stored, reused=reused, try_number=try_number):
                logger.warning("attempt %s finished after it was marked failed (reaped); report %s kept", attempt_id,
                               stored.id)
            return reused

    # The report waits for the database rather than being thrown away after minutes of work.
    reused = patiently(lambda: record(report), settings=settings, what=f"storing the report of attempt {attempt_id}")
    return "reused" if reused else "scored"


def _credentials(session, attempt: Attempt, source: str, settings: JobSettings):
    from assessor.domain.repository_access import credentials_for

    if not settings.git_hosts:
        return None
    kek = settings.issuer.kek if settings.issuer is not None else None
    return credentials_for(session, user_id=attempt.user_id, source=source, hosts=settings.git_hosts, kek=kek)


def _find_near_copies(session, report, rubric, attempt_id: int, *, samples: bool):
    """After scoring: compare with the course's stored submissions. A failure here is logged and leaves the
    report without similarity findings; it never fails the assessment."""
    if getattr(report, "sources", None) is None:
        return report, None
    try:
        return integrity.find_near_copies(session, report=report, rubric=rubric,
                                          learner_id=session.get(Attempt, attempt_id).user_id, samples=samples)
    except Exception:
        logger.exception("attempt %s: near copies could not be looked for", attempt_id)
        session.rollback()
        return report, None


def _fail(sessions, attempt_id: int, reason: str, *, dead_letter: bool = False, try_number: int | None = None,
          settings: JobSettings | None = None) -> None:
    def record() -> None:
        with sessions() as session:
            finish_failed(session, attempt_id=attempt_id, reason=reason, dead_letter=dead_letter, try_number=try_number)

    try:
        if settings is not None:
            patiently(record, settings=settings, what=f"recording the failure of attempt {attempt_id}")
        else:
            record()
    except Exception:
        logger.exception("could not record the failure of attempt %s (the reaper will)", attempt_id)


def _heartbeat_loop(attempt_id: int, try_number: int, sessions, every: float, stop: threading.Event) -> None:
    with attempt_context(attempt_id):
        _beat(attempt_id, try_number, sessions, every, stop)


def _beat(attempt_id: int, try_number: int, sessions, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            with sessions() as session:
                heartbeat(session, attempt_id=attempt_id, try_number=try_number)
        except Exception:
            logger.warning("heartbeat for attempt %s failed", attempt_id, exc_info=True)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} seconds"


def reap_stale(session: Session, *, settings: JobSettings, now: datetime | None = None,
               requeue: Callable[[int, float], None] | None = None, metrics: Metrics | None = None,
               silent_seconds: float | None = None) -> list[int]:
    """Running attempts whose worker stopped sending heartbeats (for `silent_seconds`, by default
    stale_after_seconds) go back to the queue (with `requeue`, while tries remain) or end failed in the
    dead-letter list; those that ran past the time limit end failed."""
    now = now or utcnow()
    timed_out_before = now - timedelta(seconds=settings.job_timeout_seconds)
    silent_before = now - timedelta(seconds=settings.stale_after_seconds if silent_seconds is None
                                    else silent_seconds)
    reaped = []
    for attempt in session.exec(select(Attempt).where(Attempt.status == RUNNING)).all():
        started = attempt.started_at or attempt.created_at
        if started < timed_out_before:
            reason = f"timed out: the assessment took longer than {_minutes(settings.job_timeout_seconds)}"
        elif (attempt.heartbeat_at or started) < silent_before:
            if requeue is not None and attempt.tries < settings.max_tries:
                if requeue_running(session, attempt_id=attempt.id, try_number=attempt.tries,
                                   reason="the assessment worker stopped while assessing; queued again"):
                    logger.warning("attempt %s: its worker stopped (no heartbeat); queued again", attempt.id)
                    requeue(attempt.id, 0)
                    if metrics is not None:
                        metrics.assessments.labels("requeued").inc()
                    reaped.append(attempt.id)
                continue
            reason = ("the assessment worker stopped while assessing (it crashed or was restarted)"
                      + (f", {attempt.tries} times" if attempt.tries > 1 else "") + "; please submit again")
        else:
            continue
        if finish_failed(session, attempt_id=attempt.id, reason=reason, try_number=attempt.tries,
                         dead_letter=not reason.startswith("timed out")):
            logger.warning("attempt %s reaped: %s", attempt.id, reason)
            reaped.append(attempt.id)
    return reaped


def resolve_remote_commit(source: str, ref: str | None, policy: SourcePolicy,
                          timeout: float = LS_REMOTE_TIMEOUT, credentials=None) -> str | None:
    """The commit an attempt points at, resolved without cloning (see `intake.resolve_commit`)."""
    return resolve_commit(source, ref, policy=policy, timeout_seconds=timeout, credentials=credentials)


# ---------------------------------------------------------------------------------------------------------------
# Consumers
# ---------------------------------------------------------------------------------------------------------------

class ThreadConsumer:
    """A huey consumer whose workers are threads of this process, started without touching signal handlers
    (for `assessor serve` and tests). `stop()` lets a running job finish, up to `shutdown_timeout`."""

    def __init__(self, huey: Huey, *, workers: int = 1, periodic: bool = True, shutdown_timeout: float | None = None):
        self.consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=periodic,
                                             initial_delay=0.05, max_delay=1.0, backoff=1.5,
                                             check_worker_health=False, shutdown_timeout=shutdown_timeout)

    def start(self) -> "ThreadConsumer":
        self.consumer.scheduler.start()
        for _, thread in self.consumer.worker_threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.consumer.stop(graceful=True)

    def __enter__(self) -> "ThreadConsumer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
