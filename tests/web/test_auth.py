"""Accounts: sign up, sign in, sign out, rate limiting, password hashing, cookies and headers."""

import pytest
from sqlmodel import select

from assessor.domain import accounts
from assessor.domain.models import RateCounter, User

from tests.web.conftest import _CSRF, PASSWORD, csrf_token


def test_signup_creates_a_learner_and_signs_in(client, db):
    token = csrf_token(client, "/signup")
    response = client.post("/signup", data={"email": "New@Example.org ", "name": "Ada", "password": PASSWORD,
                                            "confirm": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.location.endswith("/learner/")
    user = db.exec(select(User).where(User.email == "new@example.org")).one()
    assert user.role == "learner"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert client.get("/learner/").status_code == 200


def test_signup_form_errors_are_shown_not_500(client, make_user):
    make_user(email="taken@example.org")
    cases = [
        {"email": "taken@example.org", "password": PASSWORD, "confirm": PASSWORD},
        {"email": "not-an-email", "password": PASSWORD, "confirm": PASSWORD},
        {"email": "a@example.org", "password": "short", "confirm": "short"},
        {"email": "a@example.org", "password": PASSWORD, "confirm": PASSWORD + "x"},
        {"email": "x" * 5000 + "@example.org", "password": PASSWORD, "confirm": PASSWORD},
        {},
        {"email": "b@example.org", "password": "password12", "confirm": "password12"},
        {"email": "c@example.org", "password": "1234567890", "confirm": "1234567890"},
        {"email": "ada.lovelace@example.org", "password": "adalovelace1", "confirm": "adalovelace1"},
    ]
    messages = ["already exists", "does not look like", "10 to 256", "differ", "254", "enter your e-mail",
                "harder to guess (this is a very common password)", "harder to guess", "harder to guess"]
    for data, message in zip(cases, messages):
        token = csrf_token(client, "/signup")
        response = client.post("/signup", data={**data, "csrf_token": token})
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True), (data, message)


def test_signup_says_everything_wrong_at_once_and_keeps_what_was_typed(client, db):
    token = csrf_token(client, "/signup")
    response = client.post("/signup", data={"email": "ada.example.org", "name": "Ada Lovelace", "password": "short",
                                            "confirm": "other", "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    for message in ("does not look like an e-mail address", "10 to 256", "the two passwords differ"):
        assert message in html
    assert 'value="ada.example.org"' in html and 'value="Ada Lovelace"' in html
    assert 'value="short"' not in html  # a password is never sent back
    assert db.exec(select(User)).all() == []


def test_login_and_logout(client, auth, make_user):
    user = make_user()
    response = auth.login(user.email)
    assert response.status_code == 302
    assert client.get("/learner/").status_code == 200
    assert auth.logout().status_code == 302
    assert client.get("/learner/").status_code == 302  # back to the sign-in page


def test_wrong_password_gives_one_message(client, auth, make_user):
    user = make_user()
    wrong = auth.login(user.email, "not the password at all")
    unknown = auth.login("nobody@example.org", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert "wrong e-mail address or password" in response.get_data(as_text=True)


def test_login_is_rate_limited_per_account_and_ip(client, auth, make_user, db):
    user = make_user()
    for _ in range(5):
        assert auth.login(user.email, "wrong password!!").status_code == 400
    blocked = auth.login(user.email)  # even the right password is refused now
    assert blocked.status_code == 429
    assert "too many failed sign-ins" in blocked.get_data(as_text=True)
    counter = db.exec(select(RateCounter).where(RateCounter.key.startswith(f"login:pair:{user.id}:"))).one()
    assert counter.count == 6  # five failures and the refused attempt


def test_next_parameter_cannot_redirect_off_site(client, make_user):
    user = make_user()
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        token = csrf_token(client, "/login")
        response = client.post(f"/login?next={target}", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302
        assert "evil" not in response.location
        client.post("/logout", data={"csrf_token": csrf_token(client, "/learner/")})


def test_login_without_csrf_token_is_refused(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/learner/").status_code == 302


def test_logout_needs_post_with_csrf(client, auth, make_user):
    auth.as_(make_user())
    reopened = client.get("/logout")  # the form's address opened: the site's first page, never a sign-out
    assert reopened.status_code == 302 and reopened.headers["Location"] == "/"
    client.post("/logout", data={})  # forged: no token
    assert client.get("/learner/").status_code == 200  # still signed in


def test_session_cookie_flags_and_security_headers(client, make_user, auth):
    user = make_user()
    response = auth.login(user.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/learner/")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "same-origin"


def test_session_cookie_is_secure_over_https(app, make_user):
    user = make_user()
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost")
    token = csrf_token_from(page)
    response = client.post("/login", base_url="https://localhost",
                           data={"email": user.email, "password": PASSWORD, "csrf_token": token},
                           headers={"Referer": "https://localhost/login"})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers


def csrf_token_from(response) -> str:
    match = _CSRF.search(response.get_data(as_text=True))
    return match.group(1) or match.group(2)


def test_password_hash_and_rehash_helpers():
    digest = accounts.hash_password(PASSWORD)
    assert accounts.verify_password(digest, PASSWORD)
    assert not accounts.verify_password(digest, PASSWORD + "!")
    assert not accounts.verify_password("garbage", PASSWORD)


def test_inactive_user_cannot_sign_in(client, auth, make_user, db):
    user = make_user()
    user.active = False
    db.add(user)
    db.commit()
    assert auth.login(user.email).status_code == 400


def test_the_front_page_says_what_the_product_is_to_each_visitor_and_signed_in_users_go_home(client, auth, make_user):
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for heading in ("Learners", "Mentors", "Employers", "Course operators"):
        assert f">{heading}</h2>" in html
    assert 'href="/verify"' in html and 'href="/signup"' in html
    auth.as_(make_user())
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(("role", "present", "absent"), [
    ("learner", ["My submissions", "Submit", "Calibration"], ["Reviews", "Accounts"]),
    ("mentor", ["Reviews", "Calibration"], ["My submissions", "Submit", "Accounts"]),
    ("admin", ["Reviews", "Accounts", "Jobs", "Certificates", "Modules", "Mail"], ["My submissions", "Submit"]),
])
def test_each_role_gets_its_own_navigation(client, auth, make_user, role, present, absent):
    import re as regex

    auth.as_(make_user(role))
    html = client.get("/account").get_data(as_text=True)
    nav = regex.search(r'<nav aria-label="Main">(.*?)</nav>', html, regex.S).group(1)
    links = regex.findall(r">([^<]+)</a>", nav)
    assert all(name in links for name in present), links
    assert not any(name in links for name in absent), links
    calibration = regex.search(r'href="([^"]+)">Calibration</a>', nav)
    if calibration:  # a mentor's calibration is the cohort's, a learner's their own
        assert calibration.group(1) == ("/learner/calibration" if role == "learner" else "/mentor/calibration")


@pytest.mark.parametrize("password, accepted", [
    ("password12", False), ("1234567890", False), ("qwertyuiop", False), ("aaaaaaaaaaaa", False),
    ("grace.hopper1", False),                        # the person's own name and address
    ("correct horse battery", True), ("j8Kq2vLm9xPz", True), ("Tr0ub4dor&3x" * 20, True),
])
def test_guessable_passwords_are_refused_with_the_reason(password, accepted):
    from assessor.domain.accounts import AccountError, check_password, personal_words

    hints = personal_words("grace.hopper@example.org", "Grace Hopper")
    if accepted:
        assert check_password(password, hints=hints) == password
    else:
        with pytest.raises(AccountError, match="harder to guess"):
            check_password(password, hints=hints)


def test_guessing_from_elsewhere_never_locks_the_owner_out_of_their_own_address(app, make_user):
    user = make_user()
    guesser, owner = app.test_client(), app.test_client()

    def sign_in(client, password: str, address: str):
        return client.post("/login", data={"email": user.email, "password": password,
                                           "csrf_token": csrf_token(client, "/login")},
                           environ_base={"REMOTE_ADDR": address})

    answers = [sign_in(guesser, "not the password!", "198.51.100.9").status_code for _ in range(8)]
    assert answers == [400] * 5 + [429] * 3
    refused = sign_in(guesser, PASSWORD, "198.51.100.9")
    assert refused.status_code == 429 and "from your network" in refused.get_data(as_text=True)  # still throttled
    assert sign_in(owner, PASSWORD, "203.0.113.5").status_code == 302  # the owner gets in from their own


def test_spread_guesses_are_slowed_by_a_delay_that_doubles_up_to_its_bound(db, make_user):
    from datetime import timedelta

    from assessor.domain import accounts
    from assessor.domain.db import utcnow

    user = make_user()
    limits = accounts.LoginLimits(max_failures=3, max_delay=timedelta(seconds=8))
    start = utcnow()

    def guess(address: str, after: float) -> str:
        try:
            accounts.authenticate(db, email=user.email, password="not the password!", ip=address, limits=limits,
                                  now=start + timedelta(seconds=after))
        except accounts.LoginThrottled as error:
            return str(error)
        except accounts.AccountError:
            return "checked"
        return "signed in"

    assert [guess(f"198.51.100.{n}", 0) for n in range(3)] == ["checked"] * 3
    # From the fourth failure on, an address waits between tries: 2, 4, 8 seconds as failures grow, never more.
    assert guess("198.51.100.50", 1) == "checked"
    assert "wait 4 seconds between tries" in guess("198.51.100.50", 2)
    for n in range(10):
        guess(f"198.51.100.{100 + n}", 3)
    assert "wait 8 seconds" in guess("198.51.100.100", 4)
    assert guess("198.51.100.100", 12) == "checked"
    owner = accounts.authenticate(db, email=user.email, password=PASSWORD, ip="203.0.113.5", limits=limits,
                                  now=start + timedelta(seconds=13))
    assert owner.id == user.id
