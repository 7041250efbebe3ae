"""After a decision, learner and mentor talk: questions and regrade requests per criterion, answered on the review
page (a level may change, and the final score and certificate follow), and replies under line comments."""

import html

import pytest
from sqlmodel import select

from assessor.domain.models import (
    APPROVED, CHANGES_REQUESTED, Certificate, CriterionRequest, Event, LineComment, OutgoingMail, Review,
)

from tests.web.certificate_helpers import PASSING_LEVELS, approve


@pytest.fixture
def app_config(app_config):
    return {**app_config, "QUEUE_IMMEDIATE": True}  # certificates are issued as the request ends


@pytest.fixture
def mentor(make_user):
    return make_user("mentor", courses=["test-capstone"], name="Mona Mentor")


@pytest.fixture
def learner(make_user):
    return make_user(name="Lea Learner")


def ask(auth, attempt, **fields):
    url = f"/learner/attempts/{attempt.id}"
    return auth.post(f"{url}/requests", {"criterion": "design", "kind": "regrade",
                                         "body": "The layering is in docs/design.md, section 2.", **fields},
                     token_from=url)


def answer(auth, attempt, request_id, **fields):
    url = f"/mentor/attempts/{attempt.id}"
    return auth.post(f"{url}/requests/{request_id}/answer", {"answer": "You are right, it is there.", **fields},
                     token_from=url)


def test_a_learner_asks_only_after_the_decision(client, auth, make_attempt, learner):
    attempt = make_attempt(learner)
    auth.as_(learner)
    page = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert 'id="ask"' not in page and "Ask about this" not in page
    assert ask(auth, attempt).status_code == 409


def test_a_regrade_request_answered_with_a_new_level_changes_the_score_and_is_kept(
        client, auth, db, app, make_attempt, learner, mentor):
    attempt = make_attempt(learner)
    approve(db, app, attempt, mentor, levels={**PASSING_LEVELS, "design": 1}, decision=CHANGES_REQUESTED)
    before = db.exec(select(Review).where(Review.attempt_id == attempt.id)).one().final_percent
    auth.as_(learner)
    page = client.get(f"/learner/attempts/{attempt.id}?ask=design").get_data(as_text=True)
    assert '<option value="design" selected>' in page and "Ask about this" in page

    # bad requests change nothing and keep what was typed
    for fields, message in (({"body": "  "}, "say what you want to know"),
                            ({"criterion": "nope"}, "choose one of the rubric"),
                            ({"kind": "complaint"}, "choose a question or a regrade")):
        refused = ask(auth, attempt, **fields)
        assert refused.status_code == 400 and message in refused.get_data(as_text=True)
    assert "The layering is in docs/design.md" in ask(auth, attempt, kind="x").get_data(as_text=True)
    assert db.exec(select(CriterionRequest)).all() == []

    sent = ask(auth, attempt)
    assert sent.status_code == 302 and sent.headers["Location"].endswith("#requests")
    duplicate = ask(auth, attempt, body="again")
    assert duplicate.status_code == 400 and "wait for the mentor's answer" in html.unescape(duplicate.get_data(as_text=True))
    assert "regrade request, open" in client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    told = db.exec(select(OutgoingMail).where(OutgoingMail.to_address == mentor.email)).all()
    asked_mail = next(mail for mail in told if "regrade" in mail.subject)
    # the mentor's mail carries the request and the address that answers it
    assert "docs/design.md" in asked_mail.body and f"/mentor/attempts/{attempt.id}#requests" in asked_mail.body
    request = db.exec(select(CriterionRequest)).one()

    auth.as_(mentor)
    dashboard = client.get("/mentor/").get_data(as_text=True)
    assert "1 open" in dashboard and f"#request-{request.id}" in dashboard and "Design" in dashboard
    review_page = client.get(f"/mentor/attempts/{attempt.id}").get_data(as_text=True)
    assert "The layering is in docs/design.md" in review_page and "Change to level 2" in review_page
    blank = answer(auth, attempt, request.id, answer=" ", level="2")
    assert blank.status_code == 400 and "write your answer" in blank.get_data(as_text=True)
    assert answer(auth, attempt, request.id, level="7").status_code == 400
    done = answer(auth, attempt, request.id, level="2")
    assert done.status_code == 302 and done.headers["Location"].endswith(f"#request-{request.id}")
    db.expire_all()
    review = db.exec(select(Review).where(Review.attempt_id == attempt.id)).one()
    assert review.final_percent > before
    kept = db.get(CriterionRequest, request.id)
    assert (kept.level_before, kept.level_after, kept.answered_by) == (1, 2, mentor.id)
    event = db.exec(select(Event).where(Event.attempt_id == attempt.id, Event.kind == "regraded")).one()
    assert event.detail.startswith("design: level 1 -> level 2")
    assert answer(auth, attempt, request.id).status_code == 409  # answered once

    auth.as_(learner)
    page = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert "level 1 → level 2" in page and "You are right, it is there." in page
    answered_mail = next(mail for mail in db.exec(select(OutgoingMail).where(OutgoingMail.to_address == learner.email))
                         if "changed the level of Design" in mail.subject)
    assert "You are right" in answered_mail.body and f"/learner/attempts/{attempt.id}#requests" in answered_mail.body


def test_a_regrade_that_turns_a_fail_into_a_pass_issues_the_certificate_and_one_that_would_fail_a_standing_one_is_refused(
        client, auth, db, app, make_attempt, learner, mentor):
    attempt = make_attempt(learner)
    approve(db, app, attempt, mentor, levels={**PASSING_LEVELS, "design": 0, "defense": 0})
    assert db.exec(select(Review)).one().final_outcome == "fail"
    auth.as_(learner)
    ask(auth, attempt, criterion="defense", body="I defended it live on 3 May.")
    ask(auth, attempt, criterion="design")
    first, second = db.exec(select(CriterionRequest).order_by(CriterionRequest.id)).all()
    auth.as_(mentor)
    assert answer(auth, attempt, first.id, level="2", answer="Yes, I was there.").status_code == 302
    assert answer(auth, attempt, second.id, level="2").status_code == 302
    db.expire_all()
    assert db.exec(select(Review)).one().final_outcome == "pass"
    assert db.exec(select(Certificate).where(Certificate.attempt_id == attempt.id)).one().revoked_at is None

    auth.as_(learner)
    ask(auth, attempt, criterion="tests", kind="question", body="Do my tests count as passing?")
    third = db.exec(select(CriterionRequest).order_by(CriterionRequest.id.desc())).first()
    auth.as_(mentor)
    refused = answer(auth, attempt, third.id, level="0")  # below the tests gate: the attempt would fail
    assert refused.status_code == 400 and "revoke the certificate first" in refused.get_data(as_text=True)
    db.expire_all()
    assert db.exec(select(Review)).one().final_outcome == "pass" and db.get(CriterionRequest, third.id).answered_at is None
    assert answer(auth, attempt, third.id, answer="Yes, all of them pass.").status_code == 302


def test_another_courses_mentor_cannot_answer(client, auth, db, app, make_user, make_attempt, learner, mentor):
    attempt = make_attempt(learner)
    approve(db, app, attempt, mentor)
    auth.as_(learner)
    ask(auth, attempt, kind="question")
    request = db.exec(select(CriterionRequest)).one()
    auth.as_(make_user("mentor", courses=["other-capstone"]))
    assert answer(auth, attempt, request.id).status_code == 404
    reopened = client.get(f"/mentor/attempts/{attempt.id}/requests/{request.id}/answer")
    assert reopened.status_code == 302 and client.get(reopened.headers["Location"]).status_code == 404


def test_learner_and_mentor_reply_under_a_line_comment_and_edit_their_own(
        client, auth, db, app, make_attempt, learner, mentor):
    from assessor.domain import line_comments
    from assessor.domain.reviews import start_review

    attempt = make_attempt(learner)
    start_review(db, mentor=mentor, attempt=attempt)
    comment = LineComment(attempt_id=attempt.id, author_id=mentor.id, path="calc.py", start_line=3, end_line=3,
                          body="Why a global here?")
    db.add(comment)
    db.commit()
    with pytest.raises(line_comments.ReviewError):  # before the decision the learner does not see it yet
        line_comments.reply(db, attempt=attempt, author=learner, comment_id=comment.id, body="early")
    db.rollback()
    approve(db, app, attempt, mentor)
    with pytest.raises(line_comments.ReviewError) as blank:
        line_comments.reply(db, attempt=attempt, author=learner, comment_id=comment.id, body=" ")
    assert blank.value.errors == {"body": "write the reply"}
    answer_row = line_comments.reply(db, attempt=attempt, author=learner, comment_id=comment.id,
                                     body="It is read once at start.")
    nested = line_comments.reply(db, attempt=attempt, author=mentor, comment_id=answer_row.id, body="Fine then.")
    assert nested.parent_id == comment.id  # a reply to a reply stays under the comment
    with pytest.raises(line_comments.ReviewError):
        line_comments.edit(db, attempt=attempt, user=mentor, comment_id=answer_row.id, body="not mine")
    line_comments.edit(db, attempt=attempt, user=learner, comment_id=answer_row.id, body="It is read once, at start.")
    [shown] = line_comments.comments_for(db, attempt=attempt)
    assert [reply.body for reply in shown.replies] == ["It is read once, at start.", "Fine then."]
    assert shown.replies[0].edited and not shown.replies[1].edited
    assert db.exec(select(Event).where(Event.kind == "line_comment_reply")).all()
