"""The job function and the reaper, with the engine replaced by a stand-in (the real queue and pipeline run in
test_queue.py): every ending is a visible status with a reason, and a stored report is reused, never redone."""

from datetime import timedelta

import pytest
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, func, select

from assessor.domain import jobs
from assessor.domain.db import utcnow
from assessor.errors import IntakeError, SandboxError
from assessor.domain.models import FAILED, QUEUED, RUNNING, SCORED, Attempt, Event, StoredReport

from tests.conftest import git
from tests.web.conftest import build_report

COMMIT = "ab" * 20


@pytest.fixture
def settings(app):
    return app.extensions["assessor.job_settings"]


@pytest.fixture
def sessions(app):
    engine = app.extensions["assessor.engine"]
    return lambda: Session(engine, expire_on_commit=False)


class FakePipeline:
    """Stands in for assessor.pipeline.assess: reports each stage, then returns a report (or raises)."""

    def __init__(self, error: Exception | None = None, commit: str = COMMIT):
        self.calls = 0
        self.error = error
        self.commit = commit
        self.stages_seen = []

    def __call__(self, source, rubric, *, settings, ref=None, progress):
        self.calls += 1
        for stage in ("cloning", "measuring", "installing", "testing", "scoring"):
            progress(stage, f"{stage}…")
            self.stages_seen.append(stage)
            if self.error is not None and stage == "testing":
                raise self.error
        return build_report(rubric, commit=self.commit, source=source)


def run(attempt, sessions, settings, assess, commit=None):
    return jobs.run_attempt(attempt.id, sessions=sessions, settings=settings, assess=assess,
                            resolve_commit=lambda source, ref, policy: commit)


def reload(db, attempt):
    db.expire_all()
    return db.get(Attempt, attempt.id)


def kinds(db, attempt):
    return [e.kind for e in db.exec(select(Event).where(Event.attempt_id == attempt.id).order_by(Event.id))]


def test_a_job_scores_the_attempt_and_stores_the_report(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)
    pipeline = FakePipeline()
    assert run(attempt, sessions, settings, pipeline) == "scored"
    attempt = reload(db, attempt)
    assert attempt.status == SCORED and attempt.commit == COMMIT and attempt.report_id and not attempt.reused_report
    assert attempt.started_at and attempt.finished_at and attempt.stage is None
    assert kinds(db, attempt) == ["submitted", "assessment_started", "assessed"]
    stored = db.get(StoredReport, attempt.report_id)
    assert stored.key == f"{COMMIT}:test-capstone:1.0.0:{attempt.rubric_sha256}"


def test_the_same_commit_is_never_assessed_twice(db, make_user, make_attempt, sessions, settings):
    learner = make_user()
    first = make_attempt(learner, status=QUEUED)
    pipeline = FakePipeline()
    run(first, sessions, settings, pipeline)
    second = make_attempt(make_user(), status=QUEUED)  # another learner, the same commit (a fork)
    assert run(second, sessions, settings, pipeline, commit=COMMIT) == "reused"
    assert pipeline.calls == 1
    second = reload(db, second)
    assert second.status == SCORED and second.reused_report and second.report_id == reload(db, first).report_id
    assert "report_reused" in kinds(db, second)
    assert db.exec(select(func.count()).select_from(StoredReport)).one() == 1


def test_a_report_for_a_commit_found_only_after_cloning_is_reused(db, make_user, make_attempt, sessions, settings):
    first = make_attempt(make_user(), status=QUEUED)
    run(first, sessions, settings, FakePipeline())
    second = make_attempt(make_user(), status=QUEUED)
    assert run(second, sessions, settings, FakePipeline(), commit=None) == "reused"  # store-or-reuse by key
    assert db.exec(select(func.count()).select_from(StoredReport)).one() == 1


@pytest.mark.parametrize("error, reason", [
    (IntakeError("repository not found at https://git.example.org/x (check the URL)"), "repository not found"),
    (SandboxError("bubblewrap (bwrap) is not installed"), "bubblewrap (bwrap) is not installed"),
    (RuntimeError("boom"), "internal error while assessing"),
])
def test_every_failure_ends_failed_with_the_reason(db, make_user, make_attempt, sessions, settings, error, reason, caplog):
    attempt = make_attempt(make_user(), status=QUEUED)
    assert run(attempt, sessions, settings, FakePipeline(error=error)) == "failed"
    attempt = reload(db, attempt)
    assert attempt.status == FAILED and attempt.failure_reason.startswith(reason) and attempt.finished_at
    assert kinds(db, attempt)[-1] == "assessment_failed"
    if isinstance(error, RuntimeError):
        assert "boom" not in attempt.failure_reason and "Traceback" in caplog.text


def test_stages_are_written_as_they_happen(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)
    seen = []

    def watching(source, rubric, *, settings, ref=None, progress):
        for stage in ("cloning", "measuring", "installing", "testing", "scoring"):
            progress(stage, f"now {stage}")
            with sessions() as session:
                row = session.get(Attempt, attempt.id)
                seen.append((row.status, row.stage, row.stage_message))
        return build_report(rubric, commit=COMMIT, source=source)

    run(attempt, sessions, settings, watching)
    assert seen == [(RUNNING, s, f"now {s}") for s in ("cloning", "measuring", "installing", "testing", "scoring")]


def test_a_job_for_an_attempt_that_is_not_queued_does_nothing(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=FAILED, failure_reason="earlier")
    pipeline = FakePipeline()
    assert run(attempt, sessions, settings, pipeline) == "skipped"
    assert pipeline.calls == 0 and reload(db, attempt).failure_reason == "earlier"


def test_reaper_fails_dead_and_timed_out_jobs(db, make_user, make_attempt, settings):
    now = utcnow()
    dead = make_attempt(make_user(), status=RUNNING)
    slow = make_attempt(make_user(), status=RUNNING)
    alive = make_attempt(make_user(), status=RUNNING)
    dead.started_at, dead.heartbeat_at = now - timedelta(minutes=20), now - timedelta(minutes=10)
    slow.started_at, slow.heartbeat_at = now - timedelta(hours=2), now
    alive.started_at, alive.heartbeat_at = now - timedelta(minutes=2), now
    db.add_all([dead, slow, alive])
    db.commit()
    reaped = jobs.reap_stale(db, settings=settings, now=now)
    assert sorted(reaped) == sorted([dead.id, slow.id])
    assert "worker stopped" in reload(db, dead).failure_reason
    assert reload(db, slow).failure_reason.startswith("timed out")
    assert reload(db, alive).status == RUNNING


def test_a_reaped_attempt_is_not_revived_when_its_job_finishes(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)
    job_settings = settings

    def reaped_meanwhile(source, rubric, *, settings, ref=None, progress):
        with sessions() as session:
            row = session.get(Attempt, attempt.id)
            row.heartbeat_at = row.started_at = utcnow() - timedelta(hours=3)
            session.add(row)
            session.commit()
            jobs.reap_stale(session, settings=job_settings)
        return build_report(rubric, commit=COMMIT, source=source)

    run(attempt, sessions, settings, reaped_meanwhile)
    attempt = reload(db, attempt)
    assert attempt.status == FAILED and attempt.failure_reason.startswith("timed out")


def test_events_are_append_only(db, make_user, make_attempt):
    make_attempt(make_user())
    event = db.exec(select(Event)).first()
    event.detail = "rewritten history"
    db.add(event)
    with pytest.raises(DatabaseError, match="append-only"):
        db.commit()
    db.rollback()
    with pytest.raises(DatabaseError, match="append-only"):
        db.delete(db.exec(select(Event)).first())
        db.commit()


def test_ls_remote_resolves_branches_tags_and_head(make_repo, settings):
    repo = make_repo({"a.py": "x = 1\n"})
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "v1", "-m", "release")
    git(repo, "tag", "light")
    policy = settings.source_policy
    assert jobs.resolve_remote_commit(str(repo), None, policy) == head
    assert jobs.resolve_remote_commit(str(repo), "main", policy) == head
    assert jobs.resolve_remote_commit(str(repo), "v1", policy) == head  # annotated tag peeled to its commit
    assert jobs.resolve_remote_commit(str(repo), "light", policy) == head
    assert jobs.resolve_remote_commit(str(repo), "nope", policy) is None
    assert jobs.resolve_remote_commit(str(repo), head[:8], policy) is None  # short SHA: let the clone decide
    assert jobs.resolve_remote_commit(str(repo), head.upper(), policy) == head
    from dataclasses import replace
    assert jobs.resolve_remote_commit(str(repo), None, replace(policy, allow_local=False)) is None


def test_queue_factory_reads_the_url(tmp_path, settings):
    from dataclasses import replace
    from huey import MemoryHuey, SqliteHuey
    from assessor.errors import AssessorError

    assert isinstance(jobs.make_huey(replace(settings, queue_url=f"sqlite:///{tmp_path}/q.db")), SqliteHuey)
    assert isinstance(jobs.make_huey(replace(settings, immediate=True)), MemoryHuey)
    with pytest.raises(AssessorError, match="unknown queue URL"):
        jobs.make_huey(replace(settings, queue_url="amqp://nowhere"))


def test_config_to_settings_and_source_policy():
    config = {"DATABASE_URL": "sqlite:///x.db", "QUEUE_URL": "sqlite:///q.db", "WORK_ROOT": "/tmp/w",
              "CACHE_DIR": "/tmp/c", "ALLOW_LOCAL_SOURCES": "false", "ALLOWED_HOSTS": "GitHub.com, gitlab.com",
              "ALLOWED_SCHEMES": ["https", "ssh"], "JOB_TIMEOUT_SECONDS": "60"}
    settings = jobs.settings_from_config(config)
    assert settings.source_policy.allowed_hosts == frozenset({"github.com", "gitlab.com"})
    assert settings.source_policy.allowed_schemes == frozenset({"https", "ssh"})
    assert settings.source_policy.allow_local is False and settings.job_timeout_seconds == 60.0


@pytest.mark.parametrize("task", ["run_attempt", "issue_certificate", "send_mail", "send_grades", "reap_stale"])
def test_jobs_queued_before_the_package_took_layers_still_find_their_task(settings, task):
    """A queued job names its task by the module it was defined in; that was assessor.jobs."""
    queue = jobs.make_huey(settings)
    assert queue._registry.string_to_task(f"assessor.jobs.assessor.{task}") is not None
