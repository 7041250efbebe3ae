"""Administration of accounts, roles and course assignments."""

from sqlmodel import select

from assessor import accounts
from assessor.models import User

from tests.web.conftest import PASSWORD


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
        ({"email": "new@example.org", "role": "learner"}, "set a first password"),
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
