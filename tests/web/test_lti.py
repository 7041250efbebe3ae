"""LTI 1.3 through the whole journey against a test LMS on loopback (tests/lti_platform.py): the launch signs the
learner in, they submit, a mentor launched from the same course reviews, and the score arrives at the LMS's line
item; deep linking places a capstone; launches that are replayed, expired, for an unknown deployment, signed with
another key or from an unknown platform are refused with a clear page and change nothing."""

import re
import socket
import threading
from urllib.parse import urljoin

import pytest
import requests
from sqlmodel import func, select

from assessor.domain import lti
from assessor.domain.models import Attempt, LtiAccount, LtiGradeSend, User

from tests.lti_platform import INSTRUCTOR, LEARNER, PlatformUser, TestPlatform

CAPSTONE = {"app/core.py": "def add(a, b):\n    return a + b\n", "README.md": "# Capstone\n"}


@pytest.fixture
def port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def app_config(app_config, port):
    return {**app_config, "QUEUE_IMMEDIATE": True, "PUBLIC_URL": f"http://127.0.0.1:{port}"}


@pytest.fixture
def tool(app, port):
    """The app on a real HTTP server at its public address (the LMS and the browser reach it over loopback)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app.config["PUBLIC_URL"]
    server.shutdown()


@pytest.fixture
def platform(db, tool):
    lms = TestPlatform(tool_url=tool)
    lms.users = {"ada": PlatformUser("lms-user-ada", "Ada Lovelace", "ada@lms.example.edu", (LEARNER,)),
                 "mona": PlatformUser("lms-user-mona", "Mona Mentor", "mona@lms.example.edu", (INSTRUCTOR,))}
    lti.register_platform(db, **lms.registration())
    yield lms
    lms.stop()


def launch(platform: TestPlatform, browser: requests.Session, who: str, hint: str) -> requests.Response:
    """What the LMS page makes the browser do: start the login, follow to the LMS, post the id token back."""
    started = browser.get(platform.login_initiation(who, hint), allow_redirects=False)
    assert started.status_code == 302, started.text
    form = browser.get(started.headers["Location"], allow_redirects=False).text
    action = re.search(r'action="([^"]+)"', form).group(1)
    fields = dict(re.findall(r'name="(id_token|state)" value="([^"]+)"', form))
    return browser.post(action, data=fields, allow_redirects=False)


def csrf(browser: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', browser.get(url).text).group(1)


def test_launch_submit_review_and_the_grade_reaches_the_lms(app, db, tool, platform, make_repo):
    learner = requests.Session()
    answer = launch(platform, learner, "ada", "resource:other-capstone")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/learner/submit?rubric=other-capstone")
    account = db.exec(select(User).where(User.email == "ada@lms.example.edu")).one()
    assert account.role == "learner" and account.email_verified_at is not None
    # straight to the capstone's page, signed in
    page = learner.get(urljoin(tool, answer.headers["Location"]))
    assert "Submit your capstone" in page.text and '<option selected value="other-capstone">' in page.text

    repo = make_repo(CAPSTONE)
    token = csrf(learner, f"{tool}/learner/submit")
    submitted = learner.post(f"{tool}/learner/submit", data={"csrf_token": token, "rubric": "other-capstone",
                                                             "source": str(repo)}, allow_redirects=False)
    assert submitted.status_code == 302, submitted.text
    attempt = db.exec(select(Attempt).where(Attempt.user_id == account.id)).one()
    assert attempt.status == "scored", attempt.failure_reason

    mentor = requests.Session()
    answer = launch(platform, mentor, "mona", "resource:other-capstone")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/mentor/")
    review_url = f"{tool}/mentor/attempts/{attempt.id}"
    decided = mentor.post(f"{review_url}/review", data={
        "csrf_token": csrf(mentor, review_url), "level-talk": "1", "comment-talk": "Clear.",
        "comment": "Well done.", "action": "approve", "confirmed": "yes"}, allow_redirects=False)
    assert decided.status_code == 302, decided.text

    [score] = platform.scores
    assert score["userId"] == "lms-user-ada" and score["scoreMaximum"] == 100
    assert score["scoreGiven"] > 0 and score["activityProgress"] == "Completed"
    assert score["gradingProgress"] == "FullyGraded"
    assert platform.token_requests[0]["grant_type"] == "client_credentials"
    send = db.exec(select(LtiGradeSend)).one()
    db.refresh(send)
    assert send.status == "sent" and send.tries == 1

    # the admin sees each score's delivery
    admin = requests.Session()
    from tests.web.conftest import PASSWORD
    from assessor.domain import accounts

    accounts.create_user(db, email="root@example.org", password=PASSWORD, role="admin")
    db.commit()
    admin.post(f"{tool}/login", data={"csrf_token": csrf(admin, f"{tool}/login"), "email": "root@example.org",
                                      "password": PASSWORD})
    page = admin.get(f"{tool}/admin/lti").text
    assert 'data-status="sent"' in page and f"{tool}/lti/login" in page


def test_deep_linking_places_a_capstone_in_the_course(db, tool, platform):
    instructor = requests.Session()
    answer = launch(platform, instructor, "mona", "deep-link")
    assert answer.status_code == 200 and "Place a capstone" in answer.text
    action = re.search(r'action="(/lti/deep-link/[^"]+)"', answer.text).group(1)
    placed = instructor.post(f"{tool}{action}", data={"rubric": "other-capstone"})
    assert placed.status_code == 200
    assert "form-action 'self' " + platform.url in placed.headers["Content-Security-Policy"]
    back = re.search(r'<form id="deep-link-return" method="post" action="([^"]+)">', placed.text).group(1)
    jwt_value = re.search(r'name="JWT" value="([^"]+)"', placed.text).group(1)
    assert requests.post(back, data={"JWT": jwt_value}).status_code == 200
    [answer_claims] = platform.deep_link_answers  # verified by the LMS against the tool's key set
    [item] = answer_claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["url"] == f"{tool}/lti/launch" and item["custom"] == {"rubric": "other-capstone"}
    assert item["lineItem"]["scoreMaximum"] == 100


@pytest.mark.parametrize("spoil, words", [
    ("expired", "the launch expired before it arrived"),
    ("deployment", "deployment is not registered here"),
    ("signature", "not signed by the registered LMS"),
])
def test_bad_launches_are_refused_and_change_nothing(db, tool, platform, spoil, words):
    before = (db.exec(select(func.count()).select_from(User)).one(),
              db.exec(select(func.count()).select_from(LtiAccount)).one())
    platform.spoil = spoil
    answer = launch(platform, requests.Session(), "ada", "resource:other-capstone")
    assert answer.status_code == 400 and "could not be accepted" in answer.text and words in answer.text
    db.expire_all()
    assert (db.exec(select(func.count()).select_from(User)).one(),
            db.exec(select(func.count()).select_from(LtiAccount)).one()) == before


def test_a_replayed_launch_and_an_unknown_platform_are_refused(db, tool, platform):
    browser = requests.Session()
    started = browser.get(platform.login_initiation("ada", "resource:other-capstone"), allow_redirects=False)
    form = browser.get(started.headers["Location"]).text
    fields = dict(re.findall(r'name="(id_token|state)" value="([^"]+)"', form))
    assert browser.post(f"{tool}/lti/launch", data=fields, allow_redirects=False).status_code == 302
    replay = browser.post(f"{tool}/lti/launch", data=fields, allow_redirects=False)
    assert replay.status_code == 400 and "this launch was already used" in replay.text
    stranger = requests.get(f"{tool}/lti/login", params={"iss": "https://unknown-lms.example", "login_hint": "x",
                                                           "target_link_uri": f"{tool}/lti/launch",
                                                           "client_id": "nobody"}, allow_redirects=False)
    assert stranger.status_code == 400 and "could not be accepted" in stranger.text
    elsewhere = requests.get(platform.login_initiation("ada", "x").replace("%2Flti%2Flaunch", "%2Fadmin%2F"),
                             allow_redirects=False)
    assert elsewhere.status_code == 400 and "another address" in elsewhere.text


@pytest.mark.parametrize("field, value, problem", [
    ("auth_login_url", "javascript:alert(1)", "authentication"),
    ("key_set_url", "", "key set"),
    ("issuer", "has spaces in it", "issuer"),
])
def test_a_bad_registration_is_refused(db, field, value, problem):
    values = {"name": "LMS", "issuer": "https://lms.example.edu", "client_id": "c1",
              "auth_login_url": "https://lms.example.edu/auth", "auth_token_url": "https://lms.example.edu/token",
              "key_set_url": "https://lms.example.edu/jwks", "deployment_ids": ["d1"], field: value}
    with pytest.raises(lti.LtiError, match=problem):
        lti.register_platform(db, **values)
    assert lti.platforms(db) == []
