"""The mail journeys through a real SMTP server (aiosmtpd on loopback) and the real queue (SQLite huey and a
consumer beside the app): sign-up verification, password reset, the notifications and their switches, the
mentors' digest, and a mail server that fails without failing anything else."""

import re
import time
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from assessor.domain import accounts, jobs
from assessor.domain.db import as_utc, init_db, utcnow
from assessor.domain.models import Certificate, OutgoingMail, User
from assessor.web import create_app

from tests.web.conftest import PASSWORD, Auth, csrf_token
from tests.web.test_learner import self_assessment_data
from tests.web.test_mentor import save, start
from tests.web.test_queue import TINY_CAPSTONE, submit, wait_until_finished

PUBLIC = "https://assessor.example.org"
NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(re.escape(PUBLIC) + r"(/[^\s]+)")


def body(message) -> str:
    return message.get_content()


def link_in(message) -> str:
    match = LINK.search(body(message))
    assert match, body(message)
    return match.group(1)


@pytest.fixture
def app_config(app_config, inbox):
    return {**app_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": inbox.port, "SMTP_SECURITY": "none",
            "MAIL_SENDER": "Capstone Assessor <assessor@example.org>", "PUBLIC_URL": PUBLIC}


def sign_up(client, address: str, *, name: str = "Grace Hopper"):
    token = csrf_token(client, "/signup")
    return client.post("/signup", data={"email": address, "name": name, "password": PASSWORD, "confirm": PASSWORD,
                                        "csrf_token": token})


def eventually(read, db, seconds: float = 30):
    """The first true value of `read()` (fresh from the database each time), waiting for the worker."""
    deadline = time.monotonic() + seconds
    while True:
        db.expire_all()
        value = read()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def user_by_email(db, address: str) -> User:
    db.expire_all()
    return db.exec(select(User).where(User.email == address)).one()


# ------------------------------------------------------------------------------------------------ verification

def test_sign_up_mails_a_link_that_confirms_the_address_once(app, client, db, inbox, worker):
    assert sign_up(client, "grace@example.org").status_code == 302
    message = inbox.wait_for(1)[0]
    assert message["To"] == "grace@example.org" and message["From"] == "Capstone Assessor <assessor@example.org>"
    assert message["Subject"] == "Confirm your e-mail address" and "Hello Grace Hopper," in body(message)
    path = link_in(message)
    assert user_by_email(db, "grace@example.org").email_verified_at is None

    # Opening the link (as a mail scanner would) shows a button and uses nothing up.
    page = client.get(path)
    assert page.status_code == 200 and "Confirm" in page.get_data(as_text=True)
    assert user_by_email(db, "grace@example.org").email_verified_at is None
    confirmed = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert confirmed.status_code == 302
    assert user_by_email(db, "grace@example.org").email_verified_at is not None
    again = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert again.status_code == 400 and "this link is not valid any more" in again.get_data(as_text=True).lower()


def test_a_new_verification_link_replaces_the_old_one(app, client, db, inbox, worker):
    sign_up(client, "lin@example.org")
    first = link_in(inbox.wait_for(1)[0])
    token = csrf_token(client, "/account")
    assert client.post("/account/verify", data={"csrf_token": token}).status_code == 302
    second = link_in(inbox.wait_for(2)[1])
    assert first != second
    assert client.post(first, data={"csrf_token": csrf_token(client, first)}).status_code == 400
    assert client.post(second, data={"csrf_token": csrf_token(client, second)}).status_code == 302


def test_approval_of_an_unconfirmed_learner_waits_for_the_address_then_issues_and_mails(
        app, client, auth, db, inbox, worker, make_user, make_attempt):
    learner = make_user(email="una@example.org", name="Una Unverified", verified=False)
    mentor = make_user("mentor", courses=["test-capstone"], name="Mona Mentor")
    attempt = make_attempt(learner)
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    auth.post(url, self_assessment_data(), token_from=url)
    auth.logout()
    auth.as_(mentor)
    start(auth, attempt)
    levels = {"level-tests": "2", "level-coverage": "1", "level-complexity": "1", "level-docs": "1",
              "level-design": "2", "level-defense": "2"}
    assert save(auth, attempt, **levels, action="approve").status_code == 302
    decided = inbox.wait_for(1)[0]
    assert decided["To"] == "una@example.org" and decided["Subject"] == "Your capstone passed"
    time.sleep(1)  # the certificate task ran (or is running) and must find the address unconfirmed
    db.expire_all()
    assert db.exec(select(Certificate)).all() == []

    raw = accounts.issue_token(db, user=learner, purpose="verify")  # as the sign-up mail carried
    db.commit()
    auth.logout()
    path = f"/verify-email/{raw}"
    assert client.post(path, data={"csrf_token": csrf_token(client, path)}).status_code == 302
    issued = [m for m in inbox.wait_for(2, seconds=90) if m["Subject"].startswith("Your certificate")]
    assert issued and issued[0]["To"] == "una@example.org"
    certificate = db.exec(select(Certificate)).one()
    assert f"/verify/{certificate.public_id}" in body(issued[0])


# ------------------------------------------------------------------------------------------------ password reset

def ask_for_reset(client, email: str, *, address: str = "127.0.0.1"):
    token = csrf_token(client, "/forgot-password")
    return client.post("/forgot-password", data={"email": email, "csrf_token": token}, follow_redirects=True,
                       environ_base={"REMOTE_ADDR": address})


def test_password_reset_link_works_once_and_signs_out_every_device(app, client, db, inbox, worker, make_user):
    user = make_user(email="reset.me@example.org")
    elsewhere = app.test_client()
    Auth(elsewhere).as_(user)
    assert elsewhere.get("/learner/").status_code == 200

    answer_known = ask_for_reset(client, "reset.me@example.org").get_data(as_text=True)
    answer_unknown = ask_for_reset(client, "nobody.here@example.org").get_data(as_text=True)
    assert "If an account uses that address" in answer_known
    assert _flash(answer_known) == _flash(answer_unknown)  # nothing tells whether the address has an account
    message = inbox.wait_for(1)[0]
    assert [m.to_address for m in db.exec(select(OutgoingMail))] == ["reset.me@example.org"]
    assert message["Subject"] == "Reset your password"
    path = link_in(message)

    token = csrf_token(client, path)
    short = client.post(path, data={"password": "short", "confirm": "short", "csrf_token": token})
    assert short.status_code == 400  # a refused password does not use the link up
    changed = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                      "csrf_token": csrf_token(client, path)})
    assert changed.status_code == 302
    assert elsewhere.get("/learner/").status_code == 302  # the other device is signed out
    reused = client.post(path, data={"password": "another new passphrase", "confirm": "another new passphrase",
                                     "csrf_token": csrf_token(client, path)})
    assert reused.status_code == 400 and "this link is not valid any more" in reused.get_data(as_text=True).lower()
    auth = Auth(client)
    assert auth.login(user.email).status_code == 400
    assert auth.login(user.email, NEW_PASSWORD).status_code == 302


def _flash(html: str) -> str:
    return re.search(r'class="flash[^"]*"[^>]*>(.*?)<', html, re.S).group(1).strip()


def test_a_reset_link_expires_after_an_hour(app, client, db, make_user):
    user = make_user(email="late@example.org")
    raw = accounts.issue_token(db, user=user, purpose="reset", now=utcnow() - timedelta(minutes=61))
    db.commit()
    path = f"/reset-password/{raw}"
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                       "csrf_token": csrf_token(client, path)})
    assert response.status_code == 400 and "this link is not valid any more" in response.get_data(as_text=True).lower()
    assert accounts.verify_password(user_by_email(db, "late@example.org").password_hash, PASSWORD)


def test_reset_requests_are_limited_per_address_with_the_same_answer(app, client, db, inbox, worker, make_user):
    make_user(email="spammed@example.org")
    answers = {_flash(ask_for_reset(client, "spammed@example.org").get_data(as_text=True)) for _ in range(6)}
    assert len(answers) == 1
    limit = accounts.RequestLimits().per_email
    assert len(db.exec(select(OutgoingMail).where(OutgoingMail.kind == "reset")).all()) == limit
    inbox.wait_for(limit)
    assert eventually(lambda: all(m.sent_at for m in db.exec(select(OutgoingMail))), db)
    assert len(inbox.to("spammed@example.org")) == limit  # each queued message sent once, by one of the workers


# ------------------------------------------------------------------------------------------------ notifications

@pytest.mark.slow
def test_a_finished_assessment_is_mailed_with_its_outcome_unless_switched_off(
        app, client, auth, db, inbox, worker, make_user, make_repo):
    learner = make_user(email="runner@example.org", name="Rita")
    auth.as_(learner)
    repo = make_repo(TINY_CAPSTONE)
    first = submit(client, str(repo))
    status, _ = wait_until_finished(client, first)
    assert status["status"] == "scored"
    message = inbox.wait_for(1)[0]
    assert message["To"] == "runner@example.org" and "Attempt 1 of your capstone" in body(message)
    assert f"{PUBLIC}/learner/attempts/{first}" in body(message)
    assert "is scored" in message["Subject"] or "meets" in message["Subject"] or "falls short" in message["Subject"]

    page = client.get("/account").get_data(as_text=True)
    assert 'name="notify_assessment"' in page
    token = csrf_token(client, "/account")
    # Unchecked boxes are not sent at all: switching assessment mail off keeps the others on.
    client.post("/account", data={"notify_review": "y", "notify_certificate": "y", "csrf_token": token})
    refreshed = user_by_email(db, "runner@example.org")
    assert (refreshed.notify_assessment, refreshed.notify_review, refreshed.notify_certificate) == (False, True, True)
    second = submit(client, str(repo), replace=True)
    wait_until_finished(client, second)
    time.sleep(1)  # the worker mails just after it records the outcome: give it the time it would need
    assert len(db.exec(select(OutgoingMail).where(OutgoingMail.kind == "assessment")).all()) == 1
    assert len(inbox.to("runner@example.org")) == 1


def test_asking_for_changes_is_mailed_and_the_switch_stops_it(app, client, auth, db, inbox, worker, make_user,
                                                              make_attempt):
    learner = make_user(email="changes@example.org")
    mentor = make_user("mentor", courses=["test-capstone"])
    first, second = make_attempt(learner), make_attempt(learner)
    auth.as_(mentor)
    start(auth, first)
    assert save(auth, first, action="request_changes", comment="add tests for the edge cases").status_code == 302
    message = inbox.wait_for(1)[0]
    assert message["Subject"] == "Your mentor asked for changes"
    assert f"/learner/attempts/{first.id}" in body(message)

    learner_row = user_by_email(db, "changes@example.org")
    learner_row.notify_review = False
    db.commit()
    start(auth, second)
    assert save(auth, second, action="request_changes", comment="still missing").status_code == 302
    assert len(db.exec(select(OutgoingMail)).all()) == 1  # queued with the decision, or not at all


def test_the_mentor_digest_lists_what_waits_in_their_courses(app, db, inbox, worker, make_user, make_attempt):
    busy = make_user("mentor", email="busy.mentor@example.org", courses=["test-capstone"])
    make_user("mentor", email="idle.mentor@example.org", courses=["other-capstone"])
    quiet = make_user("mentor", email="quiet.mentor@example.org", courses=["test-capstone"])
    quiet.notify_digest = False
    db.commit()
    waiting = [make_attempt(make_user(name=f"Learner {n}")) for n in range(3)]
    worker.assessor_digest_task()
    message = inbox.wait_for(1)[0]
    assert [m.to_address for m in db.exec(select(OutgoingMail))] == [busy.email]  # nothing waits for idle; quiet switched it off
    assert message["Subject"] == "3 capstones waiting for review"
    for n, attempt in enumerate(waiting):
        assert f"Learner {n} (account #{attempt.user_id}), attempt 1" in body(message)
        assert f"{PUBLIC}/mentor/attempts/{attempt.id}" in body(message)


# ------------------------------------------------------------------------------------------------ failures

def test_a_failing_mail_server_fails_nothing_and_the_admin_sees_and_resends(app, client, db, inbox, worker,
                                                                           make_user):
    inbox.refuse = True
    assert sign_up(client, "patient@example.org").status_code == 302  # the account exists all the same
    assert user_by_email(db, "patient@example.org").id
    waiting = eventually(lambda: (row := db.exec(select(OutgoingMail)).one()).attempts and row, db)
    assert waiting.sent_at is None and "451" in waiting.last_error
    assert as_utc(waiting.next_try_at) > utcnow() + timedelta(seconds=30)  # retried in a minute, not now

    admin = make_user("admin")
    admin_client = app.test_client()
    Auth(admin_client).as_(admin)
    page = admin_client.get("/admin/mail").get_data(as_text=True)
    assert "patient@example.org" in page and "451 try again later" in page
    inbox.refuse = False
    token = csrf_token(admin_client, "/admin/mail")
    assert admin_client.post(f"/admin/mail/{waiting.id}/retry", data={"csrf_token": token}).status_code == 302
    message = inbox.wait_for(1)[0]
    assert message["To"] == "patient@example.org" and message["Subject"] == "Confirm your e-mail address"
    assert eventually(lambda: db.get(OutgoingMail, waiting.id).sent_at, db)  # recorded just after the SMTP answer
    assert "sent" in admin_client.get("/admin/mail").get_data(as_text=True)


def test_without_a_mail_server_messages_are_kept_not_lost(app_config, tmp_path):
    app = create_app({**app_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": 1})  # nothing listens on port 1
    init_db(app.extensions["assessor.engine"])
    client = app.test_client()
    assert sign_up(client, "offline@example.org").status_code == 302
    huey = jobs.make_huey(app.extensions["assessor.job_settings"])
    huey.assessor_mail_task.call_local()
    with Session(app.extensions["assessor.engine"]) as session:
        kept = session.exec(select(OutgoingMail)).one()
    assert kept.sent_at is None and kept.attempts == 1 and "ConnectionRefusedError" in kept.last_error
    app.extensions["assessor.engine"].dispose()


def test_an_address_an_admin_sets_is_confirmed_by_its_owner(app, client, auth, db, inbox, worker, make_user):
    learner = make_user(email="old.address@example.org")
    auth.as_(make_user("admin"))
    created = auth.post("/admin/users/new", {"email": "made.by.admin@example.org", "role": "learner",
                                             "password": PASSWORD, "active": "y"}, token_from="/admin/users/new")
    assert created.status_code == 302
    assert inbox.wait_for(1)[0]["To"] == "made.by.admin@example.org"
    assert user_by_email(db, "made.by.admin@example.org").email_verified_at is None

    edit = f"/admin/users/{learner.id}"
    assert auth.post(edit, {"email": "new.address@example.org", "role": "learner", "active": "y"},
                     token_from=edit).status_code == 302
    message = inbox.wait_for(2)[1]
    assert message["To"] == "new.address@example.org" and message["Subject"] == "Confirm your e-mail address"
    assert user_by_email(db, "new.address@example.org").email_verified_at is None


def test_a_strangers_reset_requests_do_not_use_up_the_owners(app, client, db, make_user):
    make_user(email="owner@example.org")
    limit = accounts.RequestLimits().per_email
    for _ in range(limit + 3):
        ask_for_reset(client, "owner@example.org", address="198.51.100.9")  # someone else's network
    assert len(db.exec(select(OutgoingMail).where(OutgoingMail.kind == "reset")).all()) == limit
    ask_for_reset(app.test_client(), "owner@example.org", address="203.0.113.5")  # the owner's own
    assert len(db.exec(select(OutgoingMail).where(OutgoingMail.kind == "reset")).all()) == limit + 1
