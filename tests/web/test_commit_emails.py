"""The addresses a learner commits with: named on the account page, confirmed by a link mailed to them (a real SMTP
server), then counted as the learner's in the authorship evidence the mentor sees; bad input changes nothing."""

import json

import pytest
from sqlmodel import select

from assessor.domain import integrity
from assessor.domain.models import CommitEmail, StoredReport

from tests.web.conftest import csrf_token
from tests.web.test_mail import PUBLIC, link_in
from tests.web.test_mentor import review_url


@pytest.fixture
def app_config(app_config, inbox):
    return {**app_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": inbox.port, "SMTP_SECURITY": "none",
            "MAIL_SENDER": "Capstone Assessor <assessor@example.org>", "PUBLIC_URL": PUBLIC}


def _add(client, address: str):
    return client.post("/account/commit-emails", data={"email": address, "csrf_token": csrf_token(client, "/account")})


def test_a_named_address_is_confirmed_by_its_link_and_then_counts_as_the_learners(
        app, client, auth, db, inbox, worker, make_user, make_attempt):
    learner = make_user(name="Lea Learner")
    auth.as_(learner)
    assert _add(client, "Lea.Laptop@Example.org").status_code == 302
    row = db.exec(select(CommitEmail).where(CommitEmail.user_id == learner.id)).one()
    assert row.email == "lea.laptop@example.org" and row.confirmed_at is None
    message = inbox.wait_for(1)[0]
    assert message["To"] == "lea.laptop@example.org" and "commit" in message["Subject"]
    text = message.get_content()
    # The reader may not be the account's owner: greeted by no chosen name, told which account asks.
    assert text.startswith("Hello,") and "Lea Learner" not in text and learner.email in text
    link = link_in(message)
    page = client.get(link).get_data(as_text=True)  # a GET (a mail scanner) uses nothing
    assert "confirm the address" in page and "<strong>lea.laptop@example.org</strong>" in page
    assert f"<strong>{learner.email}</strong> (Lea Learner)" in page
    db.expire_all()
    assert db.get(CommitEmail, row.id).confirmed_at is None
    assert client.post(link, data={"csrf_token": csrf_token(client, link)}).status_code == 302
    db.expire_all()
    assert db.get(CommitEmail, row.id).confirmed_at is not None
    again = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert again.status_code == 400 and "not valid any more" in again.get_data(as_text=True)

    attempt = make_attempt(learner)
    stored = db.get(StoredReport, attempt.report_id)
    authorship = {"commits": 4, "complete": True, "lines": 100, "files_read": 3, "files_total": 3,
                  "first_commit_at": "2024-01-01T00:00:00+00:00", "last_commit_at": "2024-03-01T00:00:00+00:00",
                  "notes": [], "authors": [
                      {"email": "lea.laptop@example.org", "name": "Lea", "commits": 3, "lines": 80,
                       "first_commit_at": "2024-01-01T00:00:00+00:00", "last_commit_at": "2024-03-01T00:00:00+00:00"},
                      {"email": "friend@example.org", "name": "Friend", "commits": 1, "lines": 20,
                       "first_commit_at": "2024-01-01T00:00:00+00:00", "last_commit_at": "2024-01-01T00:00:00+00:00"}]}
    stored.document = json.dumps({**json.loads(stored.document),
                                  "integrity": {"version": 1, "authorship": authorship, "similarity": None}})
    db.add(stored)
    db.commit()
    own = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)  # the learner sees the same figures
    assert "3 of them, and 80% of the 100 lines, were made with your confirmed addresses" in own
    auth.as_(make_user("mentor", courses=["test-capstone"]))
    page = client.get(review_url(attempt)).get_data(as_text=True)
    assert "Authorship: 80% of the lines and 3 of 4 commits by the learner's confirmed addresses" in page
    assert "Friend &lt;friend@example.org&gt;" in page


@pytest.mark.parametrize(("address", "message"), [
    ("not-an-address", "does not look like an e-mail address"),
    ("", "enter an e-mail address"),
    ("lea\u200b@example.org", "invisible"),
])
def test_a_bad_address_is_refused_and_nothing_is_stored(client, auth, db, make_user, address, message):
    learner = make_user()
    auth.as_(learner)
    response = _add(client, address)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.exec(select(CommitEmail).where(CommitEmail.user_id == learner.id)).all() == []


def test_the_account_address_and_a_repeat_are_refused_and_an_address_can_be_removed(client, auth, db, make_user):
    learner = make_user()
    auth.as_(learner)
    assert "your account&#39;s address already" in _add(client, learner.email).get_data(as_text=True)
    assert _add(client, "other@example.org").status_code == 302
    assert "on your list already" in _add(client, "OTHER@example.org").get_data(as_text=True)
    row = db.exec(select(CommitEmail).where(CommitEmail.user_id == learner.id)).one()
    stranger = make_user()
    auth.as_(stranger)  # someone else's address cannot be removed by id
    assert client.post(f"/account/commit-emails/{row.id}/delete",
                       data={"csrf_token": csrf_token(client, "/account")}).status_code == 404
    auth.as_(learner)
    assert client.post(f"/account/commit-emails/{row.id}/delete",
                       data={"csrf_token": csrf_token(client, "/account")}).status_code == 302
    assert db.exec(select(CommitEmail).where(CommitEmail.user_id == learner.id)).all() == []


def test_unconfirmed_addresses_are_shown_apart(db, make_user):
    learner = make_user()
    db.add(CommitEmail(user_id=learner.id, email="old@example.org"))
    db.commit()
    confirmed, unconfirmed = integrity.learner_emails(db, learner=learner)
    assert "old@example.org" in unconfirmed and "old@example.org" not in confirmed


def test_another_accounts_address_cannot_be_claimed_nor_confirmed(client, auth, db, inbox, worker, make_user):
    victim, attacker = make_user(name="Vera Victim"), make_user(name="Mallory")
    auth.as_(attacker)
    refused = _add(client, victim.email.upper())
    assert refused.status_code == 400 and "belongs to another account" in refused.get_data(as_text=True)
    assert db.exec(select(CommitEmail)).all() == []

    # An address one learner has confirmed is theirs: another's claim is refused, at naming and at confirming.
    owner, other = make_user(), make_user()
    auth.as_(owner)
    assert _add(client, "shared@example.org").status_code == 302
    auth.as_(other)
    assert _add(client, "shared@example.org").status_code == 302  # nobody has confirmed it yet
    messages = {owner.email if owner.email in message.get_content() else other.email: message
                for message in inbox.wait_for(2)}
    owner_link, other_link = link_in(messages[owner.email]), link_in(messages[other.email])
    assert client.post(owner_link, data={"csrf_token": csrf_token(client, owner_link)}).status_code == 302
    late = client.post(other_link, data={"csrf_token": csrf_token(client, other_link)})
    assert late.status_code == 400 and "belongs to another account" in late.get_data(as_text=True)
    confirmed = db.exec(select(CommitEmail).where(CommitEmail.confirmed_at.is_not(None))).all()
    assert [(row.user_id, row.email) for row in confirmed] == [(owner.id, "shared@example.org")]
