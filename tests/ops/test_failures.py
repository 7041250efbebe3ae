"""Failure drills: Redis unavailable at start (a clear error, /readyz red), PostgreSQL restarted during an
assessment (the service recovers by itself). The restart drill runs only against the PostgreSQL server named by
ASSESSOR_TEST_DATABASE_URL, on the machine where this test can restart it (pg_ctlcluster)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assessor.domain import jobs
from assessor.domain.models import RUNNING, SCORED

from tests.backends import PG_ENV
from tests.ops.test_worker_processes import engine, kinds, queued_attempt, wait_for  # noqa: F401  (fixtures)


def test_a_worker_with_redis_unavailable_at_start_says_so_and_exits(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("ASSESSOR_")}
    env.update(ASSESSOR_INSTANCE=str(tmp_path / "instance"), ASSESSOR_SECRET_KEY="k",
               ASSESSOR_DATABASE_URL=f"sqlite:///{tmp_path / 'instance' / 'assessor.db'}",
               ASSESSOR_REDIS_URL="redis://:hunter2@127.0.0.1:1/0")
    result = subprocess.run([sys.executable, "-c", "from assessor.cli import main; main()", "worker"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: the job queue redis://***@127.0.0.1:1/0 is not reachable (ConnectionError")
    assert "a supervisor that restarts it (systemd's Restart=always" in error
    assert "hunter2" not in result.stderr


def _cluster() -> tuple[str, str] | None:
    if not os.environ.get(PG_ENV) or shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        return None
    versions = sorted(Path("/etc/postgresql").glob("*/main"), key=lambda p: [int(x) for x in p.parent.name.split(".")])
    return (versions[-1].parent.name, "main") if versions else None


@pytest.mark.slow
@pytest.mark.parametrize("deployment", ["scaled"], indirect=True)
def test_postgresql_restarted_during_an_assessment_is_recovered_from(app, engine, queued_attempt, client, deployment):
    cluster = _cluster()
    if cluster is None or not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("needs ASSESSOR_TEST_DATABASE_URL and a local cluster this user can restart (pg_ctlcluster)")
    attempt = queued_attempt()
    huey = jobs.make_huey(app.extensions["assessor.job_settings"])
    jobs.enqueue_attempt(huey, attempt.id)
    with jobs.ThreadConsumer(huey, workers=1, periodic=False):
        wait_for(engine, attempt.id, lambda a: a.status == RUNNING and a.stage == "testing", "reached testing")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"], check=True, timeout=120)
        done = wait_for(engine, attempt.id, lambda a: a.finished, "finished")
    assert done.status == SCORED, done.failure_reason
    assert kinds(engine, attempt.id)[-1] == "assessed"
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
