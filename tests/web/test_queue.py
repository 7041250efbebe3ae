"""The queue end to end: a real SqliteHuey in tmp, a real consumer (threads), the real pipeline (clone, radon,
uv, pytest in bubblewrap) on a local git repository, driven through the web app. Seconds each: kept to three."""

import time

import pytest
from sqlmodel import Session, func, select

from assessor.domain.models import FAILED, SCORED, Attempt, Event, StoredReport

from tests.conftest import git
from tests.web.conftest import csrf_token

pytestmark = pytest.mark.slow

TINY_CAPSTONE = {
    "pyproject.toml": """\
        [project]
        name = "tiny-capstone"
        version = "0.1.0"
        requires-python = ">=3.11"
        dependencies = []

        [tool.pytest.ini_options]
        pythonpath = ["."]
        testpaths = ["tests"]
        """,
    "calc.py": """\
        def add(a, b):
            return a + b


        def clamp(value, low, high):
            if value < low:
                return low
            if value > high:
                return high
            return value
        """,
    "tests/test_calc.py": """\
        from calc import add, clamp


        def test_add():
            assert add(2, 3) == 5


        def test_clamp():
            assert [clamp(v, 0, 10) for v in (-1, 5, 11)] == [0, 5, 10]
        """,
    "docs/guide.md": """\
        # Usage guide

        ## Usage

        Import `calc` and call `add(a, b)` or `clamp(value, low, high)`.
        """,
}
WAIT_SECONDS = 240


def submit(client, source: str, *, replace: bool = False) -> int:
    """`replace`: the learner confirms that this attempt replaces the one waiting for review."""
    token = csrf_token(client, "/learner/submit")
    data = {"rubric": "test-capstone", "source": source, "csrf_token": token, **({"replace_pending": "y"} if replace else {})}
    response = client.post("/learner/submit", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.location.rsplit("/", 1)[1])


def wait_until_finished(client, attempt_id: int) -> tuple[dict, list[str]]:
    """Poll the JSON status as the page's script does; returns the last status and every stage seen."""
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        data = client.get(f"/learner/attempts/{attempt_id}/status.json").get_json()
        label = data["stage"] if data["status"] == "running" else data["status"]
        if label and (not seen or seen[-1] != label):
            seen.append(label)
        if data["finished"]:
            return data, seen
        time.sleep(0.1)
    pytest.fail(f"attempt {attempt_id} did not finish in {WAIT_SECONDS}s; stages seen {seen}")


def test_submission_is_assessed_by_the_worker_and_the_same_commit_reuses_the_report(
        app, client, auth, make_user, make_repo, worker):
    auth.as_(make_user())
    repo = make_repo(TINY_CAPSTONE)
    first = submit(client, str(repo))
    status, seen = wait_until_finished(client, first)
    assert status["status"] == SCORED, status
    assert seen[-1] == SCORED and len(seen) >= 2  # it was seen on its way, not only at the end

    with Session(app.extensions["assessor.engine"]) as session:
        attempt = session.get(Attempt, first)
        assert attempt.commit and attempt.report_id and not attempt.reused_report
        stored = session.get(StoredReport, attempt.report_id)
        assert stored.commit == attempt.commit
    html = client.get(f"/learner/attempts/{first}").get_data(as_text=True)
    assert "2 passed, 0 failed" in html and "Automated report" in html and "<svg" in html

    second = submit(client, str(repo), replace=True)  # resubmitting the same commit: a new attempt, no new assessment
    status, _ = wait_until_finished(client, second)
    assert status["status"] == SCORED
    with Session(app.extensions["assessor.engine"]) as session:
        again = session.get(Attempt, second)
        assert again.reused_report and again.report_id == stored.id and again.commit == stored.commit
        assert session.exec(select(func.count()).select_from(StoredReport)).one() == 1
        kinds = [e.kind for e in session.exec(select(Event).where(Event.attempt_id == second).order_by(Event.id))]
        assert kinds == ["submitted", "assessment_started", "report_reused"]
        assert again.number == 2
    assert "stored report reused" in client.get(f"/learner/attempts/{second}").get_data(as_text=True)


def test_a_failed_clone_ends_failed_with_the_reason_on_the_status_page(app, client, auth, make_user, tmp_path, worker):
    auth.as_(make_user())
    empty_repository = tmp_path / "no-commits-yet"
    empty_repository.mkdir()
    git(empty_repository, "init", "-q")  # a repository with nothing to check out
    attempt_id = submit(client, str(empty_repository))
    status, _ = wait_until_finished(client, attempt_id)
    assert status["status"] == FAILED and status["failure_reason"]
    assert "internal error" not in status["failure_reason"]  # the engine's own reason, not a crash
    assert [stage["state"] for stage in status["stages"]][:2] == ["failed", "waiting"]  # it failed while cloning
    html = client.get(f"/learner/attempts/{attempt_id}").get_data(as_text=True)
    assert f"Failed: {status['failure_reason']}" in html.replace("&#39;", "'")
    with Session(app.extensions["assessor.engine"]) as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt.finished_at and attempt.report_id is None
        assert session.exec(select(Event.kind).where(Event.attempt_id == attempt_id).order_by(Event.id.desc())).first() \
            == "assessment_failed"
