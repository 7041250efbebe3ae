"""Web fixtures: an app on a temporary instance (SQLite files in tmp, CSRF on), a client, an `auth` helper, and
factories for users, attempts and stored reports (reports built with the engine's own scoring)."""

import itertools
import re
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from assessor.domain import accounts, jobs
from assessor.domain.db import init_db, utcnow
from assessor.domain.models import OPEN, SCORED, Attempt, Submission
from assessor.engine.report import Report, RubricRef
from assessor.engine.rubric import find_rubric
from assessor.engine.scoring import decide, score_measured, score_pending
from assessor.domain.submissions import record_event, snapshot_rubric, store_report
from assessor.web import create_app

from tests.jsonld_contexts import cache_dir as jsonld_cache_dir
from tests.web.rubrics import OTHER_RUBRIC, TEST_RUBRIC

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@pytest.fixture
def rubrics_dir(tmp_path) -> Path:
    directory = tmp_path / "rubrics"
    directory.mkdir()
    (directory / "test-capstone.toml").write_text(TEST_RUBRIC)
    (directory / "other-capstone.toml").write_text(OTHER_RUBRIC)
    return directory


@pytest.fixture
def app_config(tmp_path, rubrics_dir) -> dict:
    instance = tmp_path / "instance"
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": f"sqlite:///{instance / 'assessor.db'}",
        "QUEUE_URL": f"sqlite:///{instance / 'queue.db'}",
        "RUBRICS_DIR": str(rubrics_dir),
        "WORK_ROOT": str(tmp_path / "work"),
        "CACHE_DIR": str(tmp_path / "cache"),
        "JSONLD_CACHE_DIR": str(jsonld_cache_dir()),  # the published contexts, fetched once for every test
        "ALLOW_LOCAL_SOURCES": True,
        "LOCAL_SOURCE_ROOTS": str(tmp_path),  # where make_repo puts the test repositories
        "WTF_CSRF_ENABLED": True,  # on in every test: the rules are tested with it
        "PAGE_SIZE": 5,
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    init_db(app.extensions["assessor.engine"])
    yield app
    app.extensions["assessor.engine"].dispose()


@pytest.fixture
def worker(app):
    """A worker beside the web app, as `assessor worker` runs it: its own huey on the same queue, consumer threads."""
    huey = jobs.make_huey(app.extensions["assessor.job_settings"])
    consumer = jobs.ThreadConsumer(huey, workers=1, periodic=False).start()
    yield huey
    consumer.stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    with Session(app.extensions["assessor.engine"], expire_on_commit=False) as session:
        yield session


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    html = client.get(path).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no csrf_token on {path}"
    return match.group(1) or match.group(2)


class Auth:
    def __init__(self, client):
        self.client = client
        self.signed_in = False

    def login(self, email: str, password: str = PASSWORD):
        token = csrf_token(self.client, "/login")
        return self.client.post("/login", data={"email": email, "password": password, "csrf_token": token})

    def as_(self, user):
        """Signed in as `user` (signing out whoever was first)."""
        if self.signed_in:
            self.logout()
        response = self.login(user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        self.signed_in = True
        return self

    def logout(self):
        self.signed_in = False
        match = _CSRF.search(self.client.get("/learner/").get_data(as_text=True))
        if match is None:  # signed out already (the sign-in page has no token before its own visit)
            return None
        return self.client.post("/logout", data={"csrf_token": match.group(1) or match.group(2)})

    def post(self, path: str, data: dict | None = None, *, token_from: str | None = None):
        """A form post with a valid CSRF token of this session."""
        return self.client.post(path, data={**(data or {}), "csrf_token": csrf_token(self.client, token_from or "/learner/")})


@pytest.fixture
def auth(client):
    return Auth(client)


_emails = itertools.count(1)


@pytest.fixture
def make_user(db):
    def factory(role: str = "learner", *, email: str | None = None, courses=(), name: str = "", verified: bool = True):
        user = accounts.create_user(db, email=email or f"{role}{next(_emails)}@example.org", password=PASSWORD,
                                    role=role, name=name, courses=courses)
        if verified:
            user.email_verified_at = utcnow()
        db.commit()
        return user
    return factory


def build_report(rubric, *, commit: str = "c" * 40, source: str = "https://git.example.org/l/capstone.git",
                 passed: int = 2, line: float = 90.0) -> Report:
    """A report for `rubric` as the pipeline would make it, from facts, through the engine's scoring."""
    facts = {
        "tests": ({"passed": passed, "failed": 0, "errors": 0, "skipped": 0, "total": passed, "all_pass": passed > 0},
                  [f"{passed} passed, 0 failed"]),
        "coverage": ({"line_percent": line, "branch_percent": 100.0}, [f"line {line:.1f}%"]),
        "complexity": ({"average": 2.0, "worst": 4, "share_c_or_worse": 0.0, "maintainability": 70.0},
                       ["average complexity 2.00"]),
        "artifact": ({"found": 1, "complete": 0}, ["Usage guide: incomplete (missing section Usage)"]),
    }
    scores = []
    for criterion in rubric.criteria:
        if criterion.kind == "manual":
            scores.append(score_pending(criterion))
        else:
            measured, evidence = facts[criterion.kind]
            scores.append(score_measured(criterion, measured, evidence))
    gates, score = decide(rubric, scores)
    return Report(
        source=source, ref=None, commit=commit, rubric=RubricRef.of(rubric), assessed_at="2026-11-23T12:00:00+00:00",
        criteria=tuple(scores), gates=tuple(gates), score=score,
        complexity={"average": 2.0, "rank_counts": {"A": 5, "B": 2, "C": 1},
                    "worst": [{"name": "handle", "path": "app/core.py", "line": 3, "complexity": 4, "rank": "A"}]},
        artifacts=({"criterion": "docs", "id": "guide", "title": "Usage guide", "status": "incomplete",
                    "path": "docs/guide.md", "missing_sections": ["Usage"], "missing_fields": [], "words": 12,
                    "problems": []},),
        tests={"passed": passed, "failed": 0, "errors": 0, "skipped": 0, "total": passed},
        coverage={"line_percent": line, "branch_percent": 100.0, "excluded_lines": 0,
                  "files": [{"path": "app/core.py", "line_percent": line},
                            {"path": "app/<script>evil.py", "line_percent": 40.0}]},
    )


_commits = itertools.count(1)


@pytest.fixture
def make_attempt(db, app):
    """Factory: an attempt of `user` for a rubric; scored ones get a stored report built like the pipeline's."""
    def factory(user, *, rubric_id: str = "test-capstone", status: str = SCORED, review_state: str = OPEN,
                commit: str | None = None, passed: int = 2, failure_reason: str | None = None):
        rubric = find_rubric(rubric_id, Path(app.config["RUBRICS_DIR"]))
        snapshot_rubric(db, rubric=rubric)
        submission = db.exec(select(Submission).where(Submission.user_id == user.id,
                                                      Submission.rubric_id == rubric_id)).first()
        if submission is None:
            submission = Submission(user_id=user.id, rubric_id=rubric_id, course=rubric.course)
            db.add(submission)
            db.flush()
        number = db.exec(select(func.count()).select_from(Attempt).where(Attempt.submission_id == submission.id)).one() + 1
        attempt = Attempt(submission_id=submission.id, user_id=user.id, number=number, rubric_id=rubric.id,
                          rubric_version=rubric.version, rubric_sha256=rubric.sha256, course=rubric.course,
                          source_url="https://git.example.org/l/capstone.git", status=status,
                          review_state=review_state, failure_reason=failure_reason)
        db.add(attempt)
        db.flush()
        record_event(db, attempt=attempt, kind="submitted", actor=user, detail="test")
        if status == SCORED:
            commit = commit or f"{next(_commits):040x}"
            stored, _ = store_report(db, report=build_report(rubric, commit=commit, passed=passed))
            attempt.commit, attempt.report_id = commit, stored.id
            record_event(db, attempt=attempt, kind="assessed", detail="test")
        db.add(attempt)
        db.commit()
        return attempt
    return factory
