"""Jobs that are neither lost nor doubled, on every database backend: retries with backoff for transient
failures only, the dead-letter list, the reaper handing crashed workers' attempts back, and try numbers that
keep a given-up worker from overwriting the try that replaced it. The engine is a stand-in here; the real
pipeline runs through real queues in test_queue_backends.py and test_worker_signals.py."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from assessor.domain import jobs
from assessor.domain.db import utcnow
from assessor.errors import IntakeError, TransientIntakeError
from assessor.domain.metrics import Metrics
from assessor.domain.models import FAILED, QUEUED, RUNNING, SCORED, Attempt, Event
from assessor.domain.submissions import mark_running

from tests.web.conftest import build_report
from tests.web.test_jobs import COMMIT


@pytest.fixture
def settings(app):
    return replace(app.extensions["assessor.job_settings"], max_tries=3, retry_base_seconds=10)


@pytest.fixture
def sessions(app):
    engine = app.extensions["assessor.engine"]
    return lambda: Session(engine, expire_on_commit=False)


class Requeues:
    def __init__(self):
        self.calls = []

    def __call__(self, attempt_id, delay=0):
        self.calls.append((attempt_id, delay))


class Flaky:
    """Fails with a network error `failures` times, then assesses."""

    def __init__(self, failures: int, error=None):
        self.failures, self.calls = failures, 0
        self.error = error or TransientIntakeError("could not connect to git.example.org: the host is unreachable")

    def __call__(self, source, rubric, *, settings, ref=None, progress):
        self.calls += 1
        progress("cloning", "cloning")
        if self.calls <= self.failures:
            raise self.error
        progress("scoring", "scoring")
        return build_report(rubric, commit=COMMIT, source=source)


def run(attempt_id, sessions, settings, assess, requeue, metrics=None):
    return jobs.run_attempt(attempt_id, sessions=sessions, settings=settings, assess=assess, requeue=requeue,
                            metrics=metrics, resolve_commit=lambda source, ref, policy: None)


def reload(db, attempt_id):
    db.expire_all()
    return db.get(Attempt, attempt_id)


def kinds(db, attempt_id):
    return [e.kind for e in db.exec(select(Event).where(Event.attempt_id == attempt_id).order_by(Event.id))]


def test_a_transient_failure_is_retried_with_backoff_then_scores(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)
    pipeline, requeues, metrics = Flaky(failures=2), Requeues(), Metrics()
    assert run(attempt.id, sessions, settings, pipeline, requeues, metrics) == "retried"
    row = reload(db, attempt.id)
    assert row.status == QUEUED and row.tries == 1 and "trying again in 10 s" in row.stage_message
    assert run(attempt.id, sessions, settings, pipeline, requeues, metrics) == "retried"
    assert run(attempt.id, sessions, settings, pipeline, requeues, metrics) == "scored"
    assert requeues.calls == [(attempt.id, 10), (attempt.id, 20)]  # doubling backoff
    row = reload(db, attempt.id)
    assert row.status == SCORED and row.tries == 3 and not row.dead_letter
    assert kinds(db, attempt.id)[1:] == ["assessment_started", "assessment_requeued"] * 2 + ["assessment_started", "assessed"]
    assert metrics.assessments.labels("retried")._value.get() == 2
    assert metrics.assessments.labels("scored")._value.get() == 1
    assert metrics.stage_seconds.labels("cloning")._sum.get() >= 0  # observed
    assert metrics.registry.get_sample_value("assessor_stage_duration_seconds_count", {"stage": "cloning"}) == 3


def test_after_the_last_try_the_attempt_is_dead_lettered_with_the_reason(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)
    pipeline, requeues = Flaky(failures=99), Requeues()
    outcomes = [run(attempt.id, sessions, settings, pipeline, requeues) for _ in range(3)]
    assert outcomes == ["retried", "retried", "failed"]
    row = reload(db, attempt.id)
    assert row.status == FAILED and row.dead_letter and row.tries == 3
    assert row.failure_reason == "could not connect to git.example.org: the host is unreachable (gave up after 3 tries)"
    assert run(attempt.id, sessions, settings, pipeline, requeues) == "skipped" and pipeline.calls == 3


@pytest.mark.parametrize("error, dead", [
    (IntakeError("repository not found at https://git.example.org/x"), False),  # the learner's: a result
    (RuntimeError("boom"), True),                                            # ours: dead letter
])
def test_learner_errors_are_not_retried_and_internal_errors_are_dead_lettered(
        db, make_user, make_attempt, sessions, settings, error, dead):
    attempt = make_attempt(make_user(), status=QUEUED)
    requeues = Requeues()
    assert run(attempt.id, sessions, settings, Flaky(failures=1, error=error), requeues) == "failed"
    row = reload(db, attempt.id)
    assert requeues.calls == [] and row.tries == 1 and row.dead_letter is dead


def test_failing_tests_are_a_result_not_a_failure(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)

    def failing_tests(source, rubric, *, settings, ref=None, progress):
        return build_report(rubric, commit=COMMIT, source=source, passed=0)

    assert run(attempt.id, sessions, settings, failing_tests, Requeues()) == "scored"
    assert reload(db, attempt.id).status == SCORED


def test_two_claims_of_one_attempt_never_both_win(db, make_user, make_attempt, sessions):
    attempt = make_attempt(make_user(), status=QUEUED)
    with sessions() as first, sessions() as second:
        assert mark_running(first, attempt_id=attempt.id) == 1
        assert mark_running(second, attempt_id=attempt.id) == 0


def test_the_reaper_hands_crashed_attempts_back_until_the_tries_are_used_up(db, make_user, make_attempt, settings):
    now = utcnow()
    crashed_once = make_attempt(make_user(), status=RUNNING)
    crashed_thrice = make_attempt(make_user(), status=RUNNING)
    for attempt, tries in ((crashed_once, 1), (crashed_thrice, 3)):
        attempt.tries, attempt.started_at, attempt.heartbeat_at = tries, now - timedelta(minutes=20), now - timedelta(minutes=10)
        db.add(attempt)
    db.commit()
    requeues = Requeues()
    reaped = jobs.reap_stale(db, settings=settings, now=now, requeue=requeues)
    assert sorted(reaped) == sorted([crashed_once.id, crashed_thrice.id])
    assert requeues.calls == [(crashed_once.id, 0)]
    once, thrice = reload(db, crashed_once.id), reload(db, crashed_thrice.id)
    assert once.status == QUEUED and kinds(db, once.id)[-1] == "assessment_requeued"
    assert thrice.status == FAILED and thrice.dead_letter and "3 times" in thrice.failure_reason


def test_a_worker_that_was_given_up_on_cannot_overwrite_the_next_try(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)
    job_settings = settings

    def handed_over_meanwhile(source, rubric, *, settings, ref=None, progress):
        with sessions() as session:  # this worker looks dead: the reaper hands the attempt to another worker
            row = session.get(Attempt, attempt.id)
            row.heartbeat_at = utcnow() - timedelta(hours=1)
            session.add(row)
            session.commit()
            jobs.reap_stale(session, settings=job_settings, requeue=Requeues())
            assert mark_running(session, attempt_id=attempt.id) == 2
        progress("scoring", "late")  # ignored: not this worker's try any more
        return build_report(rubric, commit=COMMIT, source=source)

    assert run(attempt.id, sessions, settings, handed_over_meanwhile, Requeues()) == "scored"
    row = reload(db, attempt.id)
    assert row.status == RUNNING and row.tries == 2 and row.report_id is None and row.stage != "scoring"


def test_a_stopping_worker_hands_its_attempts_back(app, db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)
    huey = jobs.make_huey(settings)
    seen = {}

    def stopped_meanwhile(source, rubric, *, settings, ref=None, progress):
        seen["handed_back"] = jobs.hand_back_in_flight(huey)
        return build_report(rubric, commit=COMMIT, source=source)

    run(attempt.id, sessions, settings, stopped_meanwhile, Requeues())
    assert seen["handed_back"] == [attempt.id]
    row = reload(db, attempt.id)
    assert row.status == QUEUED and row.report_id is None
    assert huey.pending_count() == 1  # queued again, for the next worker
    huey.flush()


def test_sandbox_kills_are_counted_by_reason(db, make_user, make_attempt, sessions, settings):
    attempt = make_attempt(make_user(), status=QUEUED)
    metrics = Metrics()

    def killed_for_wall_time(source, rubric, *, settings, ref=None, progress):
        progress("testing", "testing")
        return replace(build_report(rubric, commit=COMMIT, source=source), sandbox={"killed_by": "wall_time"})

    assert run(attempt.id, sessions, settings, killed_for_wall_time, Requeues(), metrics) == "scored"
    assert metrics.registry.get_sample_value("assessor_sandbox_kills_total", {"reason": "wall_time"}) == 1
    assert metrics.registry.get_sample_value("assessor_stage_duration_seconds_count", {"stage": "testing"}) == 1


def test_queued_attempts_whose_job_was_lost_are_enqueued_again(app, db, make_user, make_attempt, settings):
    huey = jobs.make_huey(settings)
    huey.flush()
    lost = make_attempt(make_user(), status=QUEUED)
    fresh = make_attempt(make_user(), status=QUEUED)  # its web server may be enqueueing it right now
    lost.created_at = utcnow() - timedelta(hours=1)
    db.add(lost)
    db.commit()
    assert jobs.requeue_orphans(db, huey, settings=settings) == [lost.id]
    assert huey.pending_count() == 1
    assert jobs.requeue_orphans(db, huey, settings=settings) == []  # a job is waiting: nothing is lost
    assert fresh.id not in [lost.id]
    huey.flush()


def test_orphans_are_found_while_other_jobs_wait_and_waiting_jobs_are_not_doubled(app, db, make_user, make_attempt,
                                                                                  settings):
    huey = jobs.make_huey(settings)
    huey.flush()
    jobs.enqueue_mail(huey)                       # the mail task the scheduler queues every minute
    waiting = make_attempt(make_user(), status=QUEUED)
    lost = make_attempt(make_user(), status=QUEUED)
    for attempt in (waiting, lost):
        attempt.created_at = utcnow() - timedelta(hours=1)
        db.add(attempt)
    db.commit()
    jobs.enqueue_attempt(huey, waiting.id)        # behind a long queue, its job still there
    assert jobs.queued_attempt_ids(huey) == {waiting.id}
    assert jobs.requeue_orphans(db, huey, settings=settings) == [lost.id]
    assert jobs.queued_attempt_ids(huey) == {waiting.id, lost.id} and huey.pending_count() == 3
    assert jobs.requeue_orphans(db, huey, settings=settings) == []
    huey.flush()


def test_the_embedded_workers_successor_queues_what_it_was_running_at_once(app, db, make_user, make_attempt, settings):
    huey = jobs.make_huey(settings)
    huey.flush()
    running = make_attempt(make_user(), status=RUNNING)
    running.tries, running.heartbeat_at, running.started_at = 1, utcnow(), utcnow()  # its worker was just killed
    db.add(running)
    db.commit()
    assert jobs.reap_on_start(huey) == []                     # another worker might still be running it
    assert jobs.reap_on_start(huey, sole_worker=True) == [running.id]   # serve's own worker: it is the only one
    db.expire_all()
    assert db.get(Attempt, running.id).status == QUEUED and jobs.queued_attempt_ids(huey) == {running.id}
    huey.flush()
