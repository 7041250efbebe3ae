"""Integrity before a certificate: the same work from another learner is flagged on the review page, and cannot be
approved until the mentor acknowledges the flag with a reason."""

import pytest
from sqlmodel import select

from assessor.models import APPROVED, Attempt, Event, Review, StoredReport

from tests.web.test_mentor import review_url, save, start


@pytest.fixture
def mentor(make_user):
    return make_user("mentor", courses=["test-capstone"], name="Mona Mentor")


def test_the_same_commit_from_another_learner_is_flagged_and_gates_the_approval(
        client, auth, make_user, make_attempt, mentor, db):
    first = make_attempt(make_user(name="Original Author"), commit="a" * 40)
    copy = make_attempt(make_user(name="Second Learner"), commit="a" * 40)
    auth.as_(mentor)
    start(auth, copy)
    html = client.get(review_url(copy)).get_data(as_text=True)
    assert "Integrity: the same work was submitted by another learner" in html
    assert f'href="/mentor/attempts/{first.id}">Original Author' in html and "The same commit" in html

    refused = save(auth, copy, **{"level-design": "2", "level-defense": "1", "action": "approve"})
    assert refused.status_code == 400 and "acknowledge the flag" in refused.get_data(as_text=True)
    blank = auth.post(f"{review_url(copy)}/acknowledge", {"integrity_reason": "  "}, token_from=review_url(copy))
    assert blank.status_code == 400 and "say why you go on" in blank.get_data(as_text=True)
    db.expire_all()
    assert db.get(Attempt, copy.id).review_state != APPROVED

    reason = "pair project: both learners list each other in the README, confirmed with the course lead"
    assert auth.post(f"{review_url(copy)}/acknowledge", {"integrity_reason": reason},
                     token_from=review_url(copy)).status_code == 302
    assert save(auth, copy, **{"level-design": "2", "level-defense": "1", "action": "approve"}).status_code == 302
    db.expire_all()
    assert db.get(Attempt, copy.id).review_state == APPROVED
    assert db.exec(select(Review).where(Review.attempt_id == copy.id)).one().integrity_reason == reason
    event = db.exec(select(Event).where(Event.attempt_id == copy.id, Event.kind == "integrity_acknowledged")).one()
    assert event.actor_id == mentor.id and event.detail == reason
    assert "integrity flag acknowledged" in client.get(review_url(copy)).get_data(as_text=True)


def test_the_same_files_under_another_commit_are_flagged_too(client, auth, make_user, make_attempt, mentor, db):
    first, copy = make_attempt(make_user(name="First")), make_attempt(make_user(name="Re-committed"))
    for attempt in (first, copy):  # the same tree (see test_intake), under two commits by two authors
        stored = db.get(StoredReport, attempt.report_id)
        stored.tree = "7" * 40
        db.add(stored)
    db.commit()
    auth.as_(mentor)
    html = client.get(review_url(copy)).get_data(as_text=True)
    assert "The same files under another commit" in html and ">First, Test Course, attempt 1<" in html.replace("\n", "")


def test_another_courses_learner_is_not_named_to_this_courses_mentor(client, auth, make_user, make_attempt, mentor):
    make_attempt(make_user(name="Elsewhere Person"), rubric_id="other-capstone", commit="b" * 40)
    copy = make_attempt(make_user(), commit="b" * 40)
    auth.as_(mentor)
    html = client.get(review_url(copy)).get_data(as_text=True)
    assert "a learner of another course (Other Course)" in html
    assert "Elsewhere Person" not in html
    auth.as_(make_user("admin"))
    assert "Elsewhere Person" in client.get(review_url(copy)).get_data(as_text=True)


def test_an_honest_attempt_shows_no_flag_and_approves_directly(client, auth, make_user, make_attempt, mentor):
    make_attempt(make_user(), commit="c" * 40)
    own = make_attempt(make_user(), commit="d" * 40)
    auth.as_(mentor)
    start(auth, own)
    assert "Integrity:" not in client.get(review_url(own)).get_data(as_text=True)
    assert save(auth, own, **{"level-design": "2", "level-defense": "1", "action": "approve"}).status_code == 302


def test_admins_list_flagged_attempts_per_course(client, auth, make_user, make_attempt):
    flagged = [make_attempt(make_user(name=f"Copy {n}"), commit="e" * 40) for n in (1, 2)]
    make_attempt(make_user(name="Other Course Copy"), rubric_id="other-capstone", commit="e" * 40)
    make_attempt(make_user(name="Honest Learner"), commit="f" * 40)
    auth.as_(make_user("admin"))
    page = client.get("/admin/integrity?course=test-capstone").get_data(as_text=True)
    assert "Copy 1" in page and "Copy 2" in page and "Other Course Copy" not in page and "Honest Learner" not in page
    assert f'/mentor/attempts/{flagged[0].id}"' in page
    everything = client.get("/admin/integrity").get_data(as_text=True)
    assert "Other Course Copy" in everything and "Honest Learner" not in everything
    assert client.get("/admin/integrity?course=<nope>").status_code == 200
    auth.as_(make_user("mentor", courses=["test-capstone"]))
    assert client.get("/admin/integrity").status_code == 403
