"""Administration of accounts, roles and course assignments."""

import pytest
from sqlmodel import select

from assessor.domain import accounts
from assessor.domain.models import User

from tests.web.conftest import PASSWORD, csrf_token


def test_admin_lists_creates_and_edits_accounts(client, auth, make_user, db):
    admin = make_user("admin")
    auth.as_(admin)
    assert admin.email in client.get("/admin/").get_data(as_text=True)
    response = auth.post("/admin/users/new", {"email": "mentor@example.org", "name": "M", "role": "mentor",
                                              "password": PASSWORD, "courses": ["test-capstone"], "active": "y"},
                         token_from="/admin/users/new")
    assert response.status_code == 302
    mentor = accounts.find_user(db, email="mentor@example.org")
    assert mentor.role == "mentor" and accounts.assigned_courses(db, user=mentor) == ["test-capstone"]
    edit = f"/admin/users/{mentor.id}"
    assert "test-capstone" in client.get(edit).get_data(as_text=True)
    response = auth.post(edit, {"email": "mentor@example.org", "role": "mentor", "courses": ["other-capstone"],
                                "active": "y"}, token_from=edit)
    assert response.status_code == 302
    db.expire_all()
    assert accounts.assigned_courses(db, user=mentor) == ["other-capstone"]


def test_admin_form_errors_are_messages(client, auth, make_user):
    admin = make_user("admin")
    taken = make_user()
    auth.as_(admin)
    cases = [
        ({"email": taken.email, "role": "learner", "password": PASSWORD}, "already exists"),
        ({"email": "not-an-address", "role": "learner"}, "e-mail"),
        ({"email": "new@example.org", "role": "wizard", "password": PASSWORD}, "Not a valid choice"),
        ({"email": "new@example.org", "role": "mentor", "password": PASSWORD, "courses": ["nope"]}, "not a valid choice"),
    ]
    for data, message in cases:
        response = auth.post("/admin/users/new", data, token_from="/admin/users/new")
        assert response.status_code == 400, data
        assert message.lower() in response.get_data(as_text=True).lower(), message
    own = f"/admin/users/{admin.id}"
    response = auth.post(own, {"email": admin.email, "role": "learner", "active": "y"}, token_from=own)
    assert response.status_code == 400 and "your own admin role" in response.get_data(as_text=True)
    assert client.get("/admin/users/999999").status_code == 404


def test_only_admins_administer(client, auth, make_user, db):
    for role in ("learner", "mentor"):
        user = make_user(role)
        auth.as_(user)
        assert client.get("/admin/").status_code == 403
        forged = auth.post("/admin/users/new", {"email": "x@example.org", "role": "admin", "password": PASSWORD})
        assert forged.status_code == 403
        forged = auth.post(f"/admin/users/{user.id}", {"email": user.email, "role": "admin", "active": "y"})
        assert forged.status_code == 403
        auth.logout()
    assert db.exec(select(User).where(User.role == "admin")).first() is None


def test_admin_post_without_csrf_is_refused(client, auth, make_user, db):
    auth.as_(make_user("admin"))
    response = client.post("/admin/users/new", data={"email": "x@example.org", "role": "admin", "password": PASSWORD})
    assert response.status_code == 400
    assert accounts.find_user(db, email="x@example.org") is None


def test_an_invited_person_chooses_their_own_password(client, auth, make_user, db):
    import re as regex

    from assessor.domain.models import OutgoingMail

    admin = make_user("admin", name="Ada Admin")
    auth.as_(admin)
    form = client.get("/admin/users/new").get_data(as_text=True)
    assert "leave empty to send an invitation" in form and "keep the current one" not in form
    sent = auth.post("/admin/users/new", {"email": "newcomer@example.org", "role": "mentor", "name": "Nia New",
                                          "active": "y"}, token_from="/admin/users/new")
    assert sent.status_code == 302
    invitation = db.exec(select(OutgoingMail).where(OutgoingMail.to_address == "newcomer@example.org")).one()
    assert "Ada Admin made you a mentor account" in invitation.body
    link = regex.search(r"(/welcome/\S+)", invitation.body).group(1)
    auth.logout()
    assert auth.login("newcomer@example.org", PASSWORD).status_code == 400  # no password opens it yet
    weak = client.post(link, data={"password": "short", "confirm": "short", "csrf_token": csrf_token(client, link)})
    assert weak.status_code == 400
    chosen = client.post(link, data={"password": "a passphrase of my own choosing", "csrf_token":
                                     csrf_token(client, link), "confirm": "a passphrase of my own choosing"})
    assert chosen.status_code == 302
    assert auth.login("newcomer@example.org", "a passphrase of my own choosing").status_code == 302
    assert client.get(link).status_code == 200 and client.post(link, data={
        "password": "another passphrase entirely", "confirm": "another passphrase entirely",
        "csrf_token": csrf_token(client, link)}).status_code == 400  # the link works once


def test_admins_find_accounts_and_mail_by_what_they_contain(client, auth, make_user, db):
    from assessor.domain import mail

    admin = make_user("admin")
    make_user(email="grace.hopper@example.org", name="Grace Hopper")
    make_user(email="percent_sign@example.org", name="Per Cent")
    mail.queue(db, to=make_user(email="linus@example.org"), kind="verify", subject="Confirm your address",
               body="Follow this link: https://assessor.example.org/verify/abc")
    db.commit()
    auth.as_(admin)
    found = client.get("/admin/?q=HOPPER").get_data(as_text=True)
    assert "grace.hopper@example.org" in found and "linus@example.org" not in found
    assert "percent_sign@example.org" in client.get("/admin/?q=t_s").get_data(as_text=True)
    assert "No account's address or name contains" in client.get("/admin/?q=%25").get_data(as_text=True)  # literal %
    messages = client.get("/admin/mail?q=verify/abc").get_data(as_text=True)
    assert "linus@example.org" in messages and "https://assessor.example.org/verify/abc" in messages  # the body
    assert "linus@example.org" not in client.get("/admin/mail?q=nothing-like-it").get_data(as_text=True)


def test_the_overview_counts_what_waits_what_failed_and_what_was_certified(client, auth, make_user, make_attempt, db):
    import re as regex

    admin = make_user("admin")
    learner = make_user()
    make_attempt(learner)
    make_attempt(learner, status="failed", failure_reason="clone failed")
    make_attempt(make_user(), review_state="held")
    auth.as_(admin)
    page = client.get("/admin/overview").get_data(as_text=True)
    text = " ".join(regex.sub(r"<[^>]+>", " ", page).split())
    for line in ("Waiting for a mentor 1", "Could not finish (30 days) 1",
                 "Not sent to review (cannot pass as they stand) 1", "Certificates 0 (0 in the last 30 days)"):
        assert line in text, line
    auth.as_(make_user("mentor"))
    assert client.get("/admin/overview").status_code == 403


@pytest.mark.parametrize(("address", "lands_on"), [
    ("/admin/certificates/00000000-0000-4000-8000-000000000000/revoke", "/admin/certificates"),
    ("/admin/users/1/sign-out", "/admin/users/1"),
    ("/admin/api-keys", "/admin/"),
    ("/learner/repositories/keys", "/learner/repositories/"),
])
def test_a_forms_address_opened_with_get_lands_on_the_page_the_form_is_on(client, auth, make_user, address, lands_on):
    auth.as_(make_user("admin"))
    answer = client.get(address)
    assert answer.status_code == 302 and answer.headers["Location"] == lands_on
