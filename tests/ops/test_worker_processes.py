"""Real workers on real queues (SqliteHuey, and RedisHuey + PostgreSQL when configured) running the real
pipeline: a duplicate enqueue and two workers run an attempt once; an `assessor worker` process killed with
SIGKILL mid-assessment has its attempt picked up by the next worker and completed once; SIGTERM lets the
running assessment finish and the worker exit cleanly."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlmodel import Session, func, select

from assessor.domain import jobs
from assessor.domain.models import QUEUED, RUNNING, SCORED, Attempt, Event, StoredReport

from tests.web.test_queue import TINY_CAPSTONE

pytestmark = pytest.mark.slow
SLOW_TEST = """\
    import time


    def test_takes_a_while():
        time.sleep(4)
    """
WAIT_SECONDS = 180


@pytest.fixture
def engine(app):
    return app.extensions["assessor.engine"]


@pytest.fixture
def queued_attempt(app, make_user, make_attempt, make_repo, engine):
    """A queued attempt of a small capstone whose test suite takes a few seconds (time to stop a worker)."""
    def factory(slow: bool = True) -> Attempt:
        files = {**TINY_CAPSTONE, **({"tests/test_slow.py": SLOW_TEST} if slow else {})}
        repo = make_repo(files)
        attempt = make_attempt(make_user(), status=QUEUED)
        with Session(engine) as session:
            row = session.get(Attempt, attempt.id)
            row.source_url = str(repo)
            session.add(row)
            session.commit()
        return attempt
    return factory


def wait_for(engine, attempt_id: int, condition, what: str, timeout: float = WAIT_SECONDS) -> Attempt:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as session:
            attempt = session.get(Attempt, attempt_id)
            if condition(attempt):
                return attempt
        time.sleep(0.05)
    pytest.fail(f"attempt {attempt_id} never {what} in {timeout}s (status {attempt.status}, stage {attempt.stage})")


def kinds(engine, attempt_id: int) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Event.kind).where(Event.attempt_id == attempt_id).order_by(Event.id)))


def reports(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(StoredReport)).one()


def test_a_duplicate_enqueue_on_two_workers_runs_the_attempt_once(app, engine, queued_attempt):
    attempt = queued_attempt(slow=False)
    huey = jobs.make_huey(app.extensions["assessor.job_settings"])
    for _ in range(3):
        jobs.enqueue_attempt(huey, attempt.id)
    with jobs.ThreadConsumer(huey, workers=2, periodic=False):
        done = wait_for(engine, attempt.id, lambda a: a.finished, "finished")
        deadline = time.monotonic() + 10
        while huey.pending_count() and time.monotonic() < deadline:  # let the copies be consumed
            time.sleep(0.1)
        time.sleep(0.3)
    assert done.status == SCORED, done.failure_reason
    assert kinds(engine, attempt.id) == ["submitted", "assessment_started", "assessed"]
    assert reports(engine) == 1


def worker_env(app, tmp_path) -> dict:
    config = app.config
    env = {key: value for key, value in os.environ.items() if not key.startswith("ASSESSOR_")}
    env.update({
        "ASSESSOR_INSTANCE": str(tmp_path / "worker-instance"),
        "ASSESSOR_SECRET_KEY": "test-secret-key",
        "ASSESSOR_DATABASE_URL": config["DATABASE_URL"],
        "ASSESSOR_QUEUE_URL": config["QUEUE_URL"],
        "ASSESSOR_RUBRICS_DIR": config["RUBRICS_DIR"],
        "ASSESSOR_WORK_ROOT": config["WORK_ROOT"],
        "ASSESSOR_CACHE_DIR": config["CACHE_DIR"],
        "ASSESSOR_ALLOW_LOCAL_SOURCES": "true",
        "ASSESSOR_LOCAL_SOURCE_ROOTS": config["LOCAL_SOURCE_ROOTS"],
        "ASSESSOR_HEARTBEAT_SECONDS": "0.5",
        "ASSESSOR_STALE_AFTER_SECONDS": "3",
        "ASSESSOR_LOG_FORMAT": "json",
    })
    return env


def start_worker(env, log_path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-c", "from assessor.cli import main; main()", "worker", "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def unmount_leftovers(root) -> None:
    """A worker killed with SIGKILL leaves its run's size-capped tmpfs mounted (see sandbox.size_capped_dir)."""
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root) + "/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30)


def test_a_worker_killed_mid_assessment_is_recovered_and_the_attempt_completes_once(app, engine, queued_attempt, tmp_path):
    attempt = queued_attempt()
    env = worker_env(app, tmp_path)
    first = start_worker(env, tmp_path / "first.log")
    second = None
    try:
        jobs.enqueue_attempt(jobs.make_huey(app.extensions["assessor.job_settings"]), attempt.id)
        wait_for(engine, attempt.id, lambda a: a.status == RUNNING and a.stage == "testing", "reached testing")
        os.killpg(first.pid, signal.SIGKILL)  # the worker and everything it started, mid-assessment
        first.wait(timeout=10)
        time.sleep(3.5)  # its heartbeat goes stale
        second = start_worker(env, tmp_path / "second.log")
        done = wait_for(engine, attempt.id, lambda a: a.finished, "finished")
    finally:
        stop(first)
        if second is not None:
            stop(second)
        unmount_leftovers(tmp_path)
    log = (tmp_path / "second.log").read_text(errors="replace")
    assert done.status == SCORED, (done.failure_reason, log[-2000:])
    assert done.tries == 2
    assert kinds(engine, attempt.id) == ["submitted", "assessment_started", "assessment_requeued",
                                         "assessment_started", "assessed"]
    assert reports(engine) == 1
    assert f'"attempt_id": {attempt.id}' in log  # JSON log lines name the attempt


def test_sigterm_lets_the_running_assessment_finish_and_the_worker_exit_cleanly(app, engine, queued_attempt, tmp_path):
    attempt = queued_attempt()
    process = start_worker(worker_env(app, tmp_path), tmp_path / "worker.log")
    try:
        jobs.enqueue_attempt(jobs.make_huey(app.extensions["assessor.job_settings"]), attempt.id)
        wait_for(engine, attempt.id, lambda a: a.status == RUNNING and a.stage == "testing", "reached testing")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        stop(process)
    with Session(engine) as session:
        done = session.get(Attempt, attempt.id)
    assert done.status == SCORED, (done.status, done.failure_reason, (tmp_path / "worker.log").read_text()[-2000:])
    assert done.tries == 1 and reports(engine) == 1
