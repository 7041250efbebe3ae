"""What the penetration test found, each on SQLite and on PostgreSQL: revocable sessions, an atomic sign-in limit
per account and per address, bounded metrics labels, and a clear 4xx for odd input instead of a 500."""

import io
import threading

import pytest
from sqlmodel import Session, select

from assessor.domain.models import RateCounter, User
from tests.web.conftest import PASSWORD, csrf_token


def cookie_of(client) -> str:
    return client.get_cookie("assessor_session").value


def signed_in(client) -> bool:
    return client.get("/learner/").status_code == 200


@pytest.mark.parametrize("end", ["logout", "password change", "deactivation", "sign out everywhere"])
def test_a_copied_session_cookie_dies_with_the_session(app, client, auth, make_user, end):
    learner, admin = make_user(), make_user("admin")
    auth.as_(learner)
    copied = cookie_of(client)
    thief = app.test_client()
    thief.set_cookie("assessor_session", copied)
    assert signed_in(thief)
    engine = app.extensions["assessor.engine"]
    if end == "logout":
        auth.logout()
    else:
        operator = app.test_client()
        token = csrf_token(operator, "/login")
        operator.post("/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token})
        if end == "sign out everywhere":
            token = csrf_token(operator, f"/admin/users/{learner.id}")
            assert operator.post(f"/admin/users/{learner.id}/sign-out", data={"csrf_token": token}).status_code == 302
        else:
            token = csrf_token(operator, f"/admin/users/{learner.id}")
            form = {"email": learner.email, "name": "", "role": "learner", "csrf_token": token}
            if end == "password change":
                form.update(password="a brand new password", active="y")
            assert operator.post(f"/admin/users/{learner.id}", data=form).status_code == 302
    assert not signed_in(thief)  # the copy is worth nothing now
    with Session(engine) as session:
        assert session.get(User, learner.id).session_token  # a new one


def test_parallel_guesses_get_exactly_the_limit_of_password_checks(app, make_user):
    user = make_user()
    results: list[int] = []
    barrier = threading.Barrier(30)

    def guess() -> None:
        client = app.test_client()
        token = csrf_token(client, "/login")
        barrier.wait()
        response = client.post("/login", data={"email": user.email, "password": "a wrong password",
                                               "csrf_token": token})
        results.append(response.status_code)

    threads = [threading.Thread(target=guess) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results).count(400) == 5 and results.count(429) == 25  # five password checks, no more
    with Session(app.extensions["assessor.engine"]) as session:
        assert session.get(RateCounter, f"login:pair:{user.id}:127.0.0.1").count == 30
        assert session.get(RateCounter, f"login:account:{user.id}").count == 5  # only the tries allowed to check


def test_spraying_unknown_addresses_never_locks_a_real_account(app, make_user):
    app.config["LOGIN_MAX_PER_ADDRESS"] = 20
    user = make_user()
    sprayer = app.test_client()
    for number in range(25):
        token = csrf_token(sprayer, "/login")
        sprayer.post("/login", data={"email": f"nobody{number}@example.org", "password": "x" * 12,
                                     "csrf_token": token}, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    token = csrf_token(sprayer, "/login")
    refused = sprayer.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token},
                           environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert refused.status_code == 429  # the spraying address is slowed down...
    learner = app.test_client()
    token = csrf_token(learner, "/login")
    welcome = learner.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token},
                           environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert welcome.status_code == 302  # ...the account itself is not


def test_junk_methods_do_not_grow_the_metrics(app, client):
    app.config["METRICS_TOKEN"] = "s3cret"
    headers = {"Authorization": "Bearer s3cret"}
    for number in range(50):
        client.open("/login", method=f"JUNK{number}")
    before = len(client.get("/metrics", headers=headers).get_data())
    for number in range(50, 5000):
        client.open("/login", method=f"JUNK{number}")
    after = client.get("/metrics", headers=headers).get_data(as_text=True)
    assert len(after) - before < 2000 and "JUNK" not in after
    assert 'method="OTHER"' in after


def test_metrics_are_closed_unless_a_token_is_set_or_the_operator_opens_them(app, client):
    assert client.get("/metrics").status_code == 404
    app.config["METRICS_PUBLIC"] = True
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("number", [2**31, 2**63, 2**64 + 1, 10**30])
def test_ids_past_what_the_database_holds_are_not_found(app, client, auth, make_user, number):
    auth.as_(make_user("admin"))
    for path in (f"/learner/attempts/{number}", f"/learner/attempts/{number}/status.json",
                 f"/mentor/attempts/{number}", f"/mentor/learners/{number}", f"/admin/users/{number}",
                 f"/admin/jobs/{number}/requeue"):
        response = client.get(path) if "requeue" not in path else client.post(path)
        assert response.status_code in (404, 405, 400), (path, response.status_code)


@pytest.mark.parametrize("path", ["/login", "/signup", "/learner/submit"])
def test_a_file_sent_in_a_text_field_is_a_clear_400(app, client, auth, make_user, path):
    if path == "/learner/submit":
        auth.as_(make_user())
    token = csrf_token(client, path)
    response = client.post(path, data={"csrf_token": token, "email": (io.BytesIO(b"x"), "x.txt"),
                                       "source": (io.BytesIO(b"x"), "x.txt"), "password": "p" * 12},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "text only" in response.get_data(as_text=True)


def test_nul_characters_are_a_clear_400_everywhere(app, client, auth, make_user, make_attempt):
    learner = make_user()
    attempt = make_attempt(learner)
    token = csrf_token(client, "/signup")
    signup = client.post("/signup", data={"email": "a\x00@example.org", "password": PASSWORD, "confirm": PASSWORD,
                                          "csrf_token": token})
    assert signup.status_code == 400 and "NUL" in signup.get_data(as_text=True)
    auth.as_(learner)
    assert client.get("/learner/attempts/1%00").status_code in (400, 404)
    token = csrf_token(client, f"/learner/attempts/{attempt.id}/self-assessment")
    answer = client.post(f"/learner/attempts/{attempt.id}/self-assessment",
                         data={"csrf_token": token, "justification-design": "fine\x00"})
    assert answer.status_code == 400
    submit_token = csrf_token(client, "/learner/submit")
    submit = client.post("/learner/submit", data={"csrf_token": submit_token, "rubric": "test-capstone",
                                                  "source": "/tmp/repo\x00/x"})
    assert submit.status_code == 400
    with Session(app.extensions["assessor.engine"]) as session:
        assert [user.email for user in session.exec(select(User))] == [learner.email]  # no account was made


# ------------------------------------------------------------------------------------- look-alike e-mail addresses

def sign_up(client, address: str, name: str = ""):
    token = csrf_token(client, "/signup")
    return client.post("/signup", data={"email": address, "name": name, "password": PASSWORD, "confirm": PASSWORD,
                                        "csrf_token": token})


@pytest.mark.parametrize(("address", "message"), [
    ("ada\u200b@example.org", "invisible or control characters"),     # zero-width space
    ("\u202eada@example.org", "invisible or control characters"),     # right-to-left override
    ("ada\u2060@example.org", "invisible or control characters"),     # word joiner
    ("adq\u0307@example.org", "invisible or control characters"),     # a combining mark with no precomposed form
    ("\u0430da@example.org", "different alphabets"),                  # Cyrillic a among Latin letters
    ("ada@ex\u0430mple.org", "different alphabets"),
])
def test_look_alike_addresses_are_refused_at_sign_up(app, client, make_user, address, message):
    make_user(email="ada@example.org")
    response = sign_up(client, address)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    with Session(app.extensions["assessor.engine"]) as session:
        assert [user.email for user in session.exec(select(User))] == ["ada@example.org"]


def test_full_width_letters_are_the_same_address_as_their_ascii(app, client, make_user):
    make_user(email="ada@example.org")
    response = sign_up(client, "\uff21\uff24\uff21@example.org")  # ＡＤＡ: NFKC makes it ada
    assert response.status_code == 400 and "already exists" in response.get_data(as_text=True)


def test_mentors_tell_two_learners_of_the_same_name_apart(app, client, auth, make_user, make_attempt):
    mentor = make_user("mentor", courses=["test-capstone"])
    first, second = make_user(name="Ada Lovelace"), make_user(name="Ada Lovelace")
    make_attempt(first), make_attempt(second)
    auth.as_(mentor)
    page = client.get("/mentor/").get_data(as_text=True)
    assert f"account #{first.id}" in page and f"account #{second.id}" in page


# ------------------------------------------------------------------------------------- bounded sign-up and runs

def test_sign_up_is_limited_per_address_per_hour(app, client):
    app.config["SIGNUP_PER_HOUR"] = 2
    assert [sign_up(app.test_client(), f"new{n}@example.org").status_code for n in range(2)] == [302, 302]
    refused = sign_up(client, "third@example.org")
    assert refused.status_code == 429 and "too many accounts" in refused.get_data(as_text=True)
    with Session(app.extensions["assessor.engine"]) as session:
        assert sorted(user.email for user in session.exec(select(User))) == ["new0@example.org", "new1@example.org"]


def test_an_account_runs_a_bounded_number_of_assessments_at_once(app, client, auth, make_user, make_attempt,
                                                                 make_repo):
    from assessor.domain.models import Attempt, QUEUED

    app.config["MAX_RUNNING_PER_ACCOUNT"] = 1
    learner = make_user()
    make_attempt(learner, rubric_id="other-capstone", status=QUEUED)
    auth.as_(learner)
    repo = make_repo({"app.py": "x = 1\n"})
    token = csrf_token(client, "/learner/submit")
    response = client.post("/learner/submit", data={"rubric": "test-capstone", "source": str(repo),
                                                    "csrf_token": token})
    assert response.status_code == 400 and "already have 1 assessment queued or running" in response.get_data(
        as_text=True)
    with Session(app.extensions["assessor.engine"]) as session:
        assert len(session.exec(select(Attempt)).all()) == 1
