"""Integrity before a certificate: the same work from another learner is flagged on the review page, and cannot be
approved until the mentor acknowledges the flag with a reason."""

import pytest
from sqlmodel import select

from assessor.domain.models import APPROVED, Attempt, Event, Review, ReviewLevel, StoredReport

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
    assert refused.status_code == 400 and "give your reason for going on" in refused.get_data(as_text=True)
    blank = save(auth, copy, **{"level-design": "2", "level-defense": "1", "action": "acknowledge",
                                "integrity_reason": "  "})
    assert blank.status_code == 400 and "say why you go on" in blank.get_data(as_text=True)
    db.expire_all()
    assert db.get(Attempt, copy.id).review_state != APPROVED

    reason = "pair project: both learners list each other in the README, confirmed with the course lead"
    assert save(auth, copy, **{"level-design": "2", "level-defense": "1", "action": "acknowledge",
                               "integrity_reason": reason}).status_code == 302
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


def test_acknowledging_the_flag_keeps_every_level_and_comment_typed_on_the_page(
        client, auth, make_user, make_attempt, mentor, db):
    make_attempt(make_user(name="Original Author"), commit="9" * 40)
    copy = make_attempt(make_user(name="Second Learner"), commit="9" * 40)
    auth.as_(mentor)
    start(auth, copy)
    typed = {"level-design": "1", "comment-design": "the service layer leaks into the routes",
             "comment": "Good start; see the design comment."}

    # No reason yet: refused, nothing saved, and everything typed is still on the page
    refused = save(auth, copy, **typed, integrity_reason="  ", action="acknowledge")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "say why you go on" in html
    assert "the service layer leaks into the routes" in html and "Good start; see the design comment." in html
    assert 'name="level-design" value="1" data-key="1" checked' in html.replace("\n", "")
    db.expire_all()
    review = db.exec(select(Review).where(Review.attempt_id == copy.id)).one()
    assert review.integrity_acknowledged_at is None and review.comment == ""

    reason = "both learners forked the course's starter; the diff is the starter's code"
    assert save(auth, copy, **typed, integrity_reason=reason, action="acknowledge").status_code == 302
    db.expire_all()
    review = db.exec(select(Review).where(Review.attempt_id == copy.id)).one()
    assert review.integrity_reason == reason and review.comment == typed["comment"]
    levels = {row.criterion_id: row for row in db.exec(select(ReviewLevel).where(ReviewLevel.review_id == review.id))}
    assert levels["design"].level == 1 and levels["design"].comment == typed["comment-design"]
    assert db.get(Attempt, copy.id).review_state != APPROVED  # acknowledging decides nothing


def test_a_reason_typed_before_approving_goes_with_the_approval(client, auth, make_user, make_attempt, mentor, db):
    make_attempt(make_user(), commit="8" * 40)
    copy = make_attempt(make_user(), commit="8" * 40)
    auth.as_(mentor)
    start(auth, copy)
    reason = "pair project, declared at the start of the course"
    approved = save(auth, copy, **{"level-design": "2", "level-defense": "1", "action": "approve",
                                   "integrity_reason": reason})
    assert approved.status_code == 302
    db.expire_all()
    assert db.get(Attempt, copy.id).review_state == APPROVED
    assert db.exec(select(Review).where(Review.attempt_id == copy.id)).one().integrity_reason == reason


def test_the_review_forms_address_opened_again_answers_with_the_review_page(client, auth, make_user, make_attempt,
                                                                           mentor):
    attempt = make_attempt(make_user())
    auth.as_(mentor)
    answer = client.get(f"{review_url(attempt)}/review")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(review_url(attempt))


def test_the_queue_shows_integrity_flags_and_filters_by_them(client, auth, make_user, make_attempt, mentor):
    make_attempt(make_user(name="Flag One"), commit="7" * 40)
    make_attempt(make_user(name="Flag Two"), commit="7" * 40)
    make_attempt(make_user(name="Honest Three"), commit="6" * 40)
    auth.as_(mentor)
    page = client.get("/mentor/").get_data(as_text=True)
    rows = {name: page[page.index(name):page.index("</tr>", page.index(name))] for name in
            ("Flag One", "Flag Two", "Honest Three")}
    assert "same work as another learner" in rows["Flag One"] and "flagged" in rows["Flag Two"]
    assert "no flag" in rows["Honest Three"]
    flagged = client.get("/mentor/?flags=flagged").get_data(as_text=True)
    assert "Flag One" in flagged and "Flag Two" in flagged and "Honest Three" not in flagged
    clean = client.get("/mentor/?flags=clean").get_data(as_text=True)
    assert "Honest Three" in clean and "Flag One" not in clean
    assert client.get("/mentor/?flags=<b>").status_code == 200
