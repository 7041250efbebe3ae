"""No 500 for any form input, and every page answers every role without a server error."""

import re

import pytest

from tests.web.conftest import csrf_token

JUNK = [
    {},
    {"rubric": "\x00\x01", "source": "\ud7ff" * 10, "ref": "\u202e" * 300},
    {"email": ["a@example.org", "b@example.org"], "password": ["x", "y"]},
    {"level-tests": "-1", "level-design": "1e309", "justification-design": "\x00", "comment": "\u2028" * 100},
    {"action": "approve", "level-tests": "", "reason-tests": "r" * 10, "courses": ["x", "y"], "role": "root"},
    {"page": "-5", "id": "1 OR 1=1", "source": "https://" + "a" * 2000},
]


@pytest.fixture
def world(make_user, make_attempt):
    learner = make_user()
    mentor = make_user("mentor", courses=["test-capstone"])
    admin = make_user("admin")
    attempt = make_attempt(learner)
    return {"learner": learner, "mentor": mentor, "admin": admin, "attempt": attempt}


def paths(app, world) -> list[tuple[str, str]]:
    values = {"attempt_id": world["attempt"].id, "learner_id": world["learner"].id, "user_id": world["learner"].id,
              "filename": "style.css", "public_id": "00000000-0000-4000-8000-000000000000", "number": 1,
              "token": "t" * 43, "message_id": 1, "kind": "png", "rubric_id": "test-capstone", "thumb": "k" * 43, "token_id": 1,
              "path": "app/core.py", "comment_id": 1, "email_id": 1, "match_id": 1, "version": "1.0.0",
              "key_id": 1, "link_id": 1, "launch_id": "lti1p3-launch-x", "platform_id": 1,
              "request_id": 1, "action": "reply"}
    found = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name in rule.arguments:  # <name>, <int:name>, <any(png, svg):name> ...
            path = re.sub(rf"<(?:[^<>]*:)?{name}>", str(values[name]), path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


@pytest.mark.parametrize("role", [None, "learner", "mentor", "admin"])
def test_every_route_answers_every_role_without_a_server_error(app, client, auth, world, role):
    if role:
        auth.as_(world[role])
    routes = paths(app, world)
    assert len(routes) >= 18
    for method, path in routes:
        if method == "GET":
            response = client.get(path)
        else:
            token = csrf_token(client, "/login" if role is None else "/learner/")
            for data in JUNK:
                response = client.open(path, method=method, data={**data, "csrf_token": token})
                assert response.status_code < 500, (role, method, path, data)
            response = client.open(path, method=method, data={"junk": "x"})  # no token at all
            # the machine APIs answer programs: no key is a 401, a form instead of JSON a 415
            expected = (302, 400, 403, 404, 405) + ((401, 415) if path.startswith("/api/") else ())
            if path != "/logout" or role is None:
                assert response.status_code in expected, (role, method, path)
        assert response.status_code < 500, (role, method, path)
        if path == "/logout" and method == "POST" and role:
            auth.as_(world[role])
