"""The mentor's journey: queue, review, overrides, decisions, calibration, and the rules around them."""

from pathlib import Path

import pytest
from sqlmodel import func, select

from assessor.domain.models import APPROVED, CHANGES_REQUESTED, IN_REVIEW, OPEN, Attempt, Event, Review, ReviewLevel
from assessor.domain.reviews import final_score, get_review, review_levels
from assessor.engine.rubric import find_rubric
from assessor.engine.scoring import decide, score_given
from assessor.domain.submissions import load_report

from tests.web.test_learner import self_assessment_data


def count(db, model) -> int:
    return db.exec(select(func.count()).select_from(model)).one()


@pytest.fixture
def mentor(make_user):
    return make_user("mentor", courses=["test-capstone"], name="Mona Mentor")


def review_data(**overrides):
    data = {"level-tests": "2", "level-coverage": "1", "level-complexity": "1", "level-docs": "1",
            "level-design": "2", "level-defense": "1", "comment-design": "clear layering", "comment": "",
            "action": "save", "confirmed": "yes"}
    data.update(overrides)
    return data


def review_url(attempt) -> str:
    return f"/mentor/attempts/{attempt.id}"


def start(auth, attempt):
    return auth.post(f"{review_url(attempt)}/start", token_from=review_url(attempt))


def save(auth, attempt, **overrides):
    return auth.post(f"{review_url(attempt)}/review", review_data(**overrides), token_from=review_url(attempt))


def queue_table(html: str) -> str:
    start = html.index('<table class="queue')
    return html[start:html.index("</table>", start)]


def test_dashboard_queue_is_oldest_first_paginated_and_filtered(client, auth, make_user, make_attempt, mentor):
    learners = [make_user() for _ in range(7)]
    attempts = [make_attempt(learner) for learner in learners]
    make_attempt(make_user(), rubric_id="other-capstone")  # not this mentor's course
    make_attempt(make_user(), status="running")            # not scored yet
    auth.as_(mentor)
    first = client.get("/mentor/").get_data(as_text=True)
    ids = [a.id for a in attempts]
    assert f"/mentor/attempts/{ids[0]}" in first and f"/mentor/attempts/{ids[4]}" in first
    assert f"/mentor/attempts/{ids[5]}" not in first  # page size 5
    assert first.index(f"/mentor/attempts/{ids[0]}\"") < first.index(f"/mentor/attempts/{ids[1]}\"")
    assert "page 1 of 2 (7 in all)" in first and "Other capstone" not in first
    second = client.get("/mentor/?page=2").get_data(as_text=True)
    assert f"/mentor/attempts/{ids[5]}" in second and f"/mentor/attempts/{ids[6]}" in second
    assert client.get("/mentor/?page=abc&course=<script>&state=nonsense").status_code == 200
    start(auth, attempts[0])
    in_review = queue_table(client.get("/mentor/?state=in_review").get_data(as_text=True))
    assert f"/mentor/attempts/{ids[0]}\"" in in_review and f"/mentor/attempts/{ids[1]}\"" not in in_review
    not_started = queue_table(client.get("/mentor/?state=open&course=test-capstone").get_data(as_text=True))
    assert f"/mentor/attempts/{ids[0]}\"" not in not_started and f"/mentor/attempts/{ids[1]}\"" in not_started


def test_learners_cannot_open_the_dashboard(client, auth, make_user, make_attempt):
    learner = make_user()
    attempt = make_attempt(make_user())
    auth.as_(learner)
    assert client.get("/mentor/").status_code == 403
    assert client.get(review_url(attempt)).status_code == 403
    assert auth.post(f"{review_url(attempt)}/review", review_data()).status_code == 403


def test_review_page_shows_evidence_beside_the_self_assessment(client, auth, make_user, make_attempt, mentor):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    auth.post(url, self_assessment_data(text="I wrote property tests"), token_from=url)
    auth.logout()
    auth.as_(mentor)
    html = client.get(review_url(attempt)).get_data(as_text=True)
    assert "Automated evidence" in html and "2 passed, 0 failed" in html
    assert "I wrote property tests" in html and "Start review" in html
    assert learner.email in html


def test_start_review_locks_the_self_assessment(client, auth, make_user, make_attempt, mentor, db):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(mentor)
    assert start(auth, attempt).status_code == 302
    db.expire_all()
    assert db.get(Attempt, attempt.id).review_state == IN_REVIEW
    auth.logout()
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    assert auth.post(url, self_assessment_data()).status_code == 409
    assert "self-assessment is locked" in client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)


def test_override_needs_a_reason_and_keeps_both_levels(client, auth, make_user, make_attempt, mentor, db):
    attempt = make_attempt(make_user(), passed=2)
    auth.as_(mentor)
    start(auth, attempt)
    refused = save(auth, attempt, **{"level-tests": "1"})
    assert refused.status_code == 400
    assert "an override needs a written reason" in refused.get_data(as_text=True)
    assert count(db, ReviewLevel) == 0

    ok = save(auth, attempt, **{"level-tests": "1", "reason-tests": "two trivial tests only assert True"})
    assert ok.status_code == 302
    row = db.exec(select(ReviewLevel).where(ReviewLevel.criterion_id == "tests")).one()
    assert (row.automated_level, row.level, row.override_reason) == (2, 1, "two trivial tests only assert True")
    event = db.exec(select(Event).where(Event.kind == "overridden")).one()
    assert event.actor_id == mentor.id and "level 2 -> level 1" in event.detail


def test_approve_needs_every_manual_level(client, auth, make_user, make_attempt, mentor, db):
    attempt = make_attempt(make_user())
    auth.as_(mentor)
    response = save(auth, attempt, **{"level-defense": "", "action": "approve"})
    assert response.status_code == 400
    assert "set a level before approving" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Attempt, attempt.id).review_state == IN_REVIEW  # the review started, nothing decided


def test_approval_computes_the_final_score_with_the_engines_scoring(client, auth, make_user, make_attempt, mentor, db, app):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    auth.post(url, self_assessment_data(), token_from=url)  # design 2, defense 2, docs 2 ...
    auth.logout()
    auth.as_(mentor)
    start(auth, attempt)
    response = save(auth, attempt, **{"level-docs": "2", "reason-docs": "the section is there, under another name",
                                      "comment": "Well done.", "action": "approve"})
    assert response.status_code == 302
    db.expire_all()
    attempt = db.get(Attempt, attempt.id)
    review = db.exec(select(Review)).one()
    assert attempt.review_state == APPROVED and review.decision == APPROVED and review.decided_at

    rubric = find_rubric("test-capstone", Path(app.config["RUBRICS_DIR"]))
    report = load_report(db, attempt=attempt)
    expected_scores = [
        report.criterion("tests"), report.criterion("coverage"), report.criterion("complexity"),
        score_given(rubric.criterion("docs"), 2, assessed_by="mentor"),
        score_given(rubric.criterion("design"), 2, assessed_by="mentor"),
        score_given(rubric.criterion("defense"), 1, assessed_by="mentor"),
    ]
    _, expected = decide(rubric, expected_scores)
    result = final_score(rubric, report, review_levels(db, review=get_review(db, attempt=attempt)))
    assert result.score.total == pytest.approx(expected.total)
    assert review.final_percent == pytest.approx(expected.percent)
    assert result.outcome == expected.outcome == "pass"
    kinds = [e.kind for e in db.exec(select(Event).where(Event.attempt_id == attempt.id).order_by(Event.id))]
    assert kinds[-4:] == ["review_started", "overridden", "reviewed", "approved"]

    # the learner sees the decision, the comment, the final score and per-criterion calibration
    auth.logout()
    auth.as_(learner)
    html = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert "Well done." in html and "Final score" in html and f"{expected.percent:.1f}%" in html
    assert "Calibration" in html and "clear layering" in html and "overridden" in html
    calibration = client.get("/learner/calibration").get_data(as_text=True)
    assert "Criteria compared" in calibration and "well calibrated" in calibration and "+0.17" in calibration


def test_request_changes_needs_a_comment_the_learner_sees(client, auth, make_user, make_attempt, mentor, db):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(mentor)
    refused = save(auth, attempt, action="request_changes")
    assert refused.status_code == 400 and "tell the learner what to change" in refused.get_data(as_text=True)
    assert save(auth, attempt, action="request_changes", comment="Add the Usage section.").status_code == 302
    db.expire_all()
    assert db.get(Attempt, attempt.id).review_state == CHANGES_REQUESTED
    finished = save(auth, attempt, action="approve")
    assert finished.status_code == 409 and "can no longer change" in finished.get_data(as_text=True)
    auth.logout()
    auth.as_(learner)
    assert "Add the Usage section." in client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)


def test_reviewed_before_list_and_learner_calibration(client, auth, make_user, make_attempt, mentor):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(mentor)
    save(auth, attempt, action="approve")
    html = client.get("/mentor/").get_data(as_text=True)
    assert "Reviewed by you" in html and f"/mentor/attempts/{attempt.id}\"" in html and "approved" in html
    assert client.get(f"/mentor/learners/{learner.id}").status_code == 200


def test_bad_review_input_is_a_message_not_500(client, auth, make_user, make_attempt, mentor):
    attempt = make_attempt(make_user())
    auth.as_(mentor)
    for overrides in ({"level-design": "nine"}, {"level-design": "99"}, {"comment": "x" * 5000},
                      {"action": "drop-table"}, {"comment-design": "y" * 4001}):
        response = save(auth, attempt, **overrides)
        assert response.status_code in (302, 400), overrides


# ----------------------------------------------------------------------------------------------------------- rules

def test_mentor_sees_only_assigned_courses(client, auth, make_user, make_attempt, mentor, db):
    other = make_attempt(make_user(), rubric_id="other-capstone")
    auth.as_(mentor)
    assert client.get(review_url(other)).status_code == 404
    forged = save(auth, other, **{"level-talk": "1", "action": "approve"})
    assert forged.status_code == 404
    assert start(auth, other).status_code == 404
    assert count(db, Review) == 0
    assert client.get(f"/mentor/learners/{other.user_id}").status_code == 404


def test_mentor_never_reviews_their_own_submission(client, auth, make_attempt, mentor, db):
    own = make_attempt(mentor)  # the mentor took the course themselves
    auth.as_(mentor)
    assert f"/mentor/attempts/{own.id}\"" not in client.get("/mentor/").get_data(as_text=True)
    assert client.get(review_url(own)).status_code == 404
    assert save(auth, own, action="approve").status_code == 404
    assert start(auth, own).status_code == 404
    assert count(db, Review) == 0


def test_admin_reviews_any_course_but_not_their_own(client, auth, make_user, make_attempt, db):
    admin = make_user("admin")
    other = make_attempt(make_user(), rubric_id="other-capstone")
    own = make_attempt(admin)
    auth.as_(admin)
    assert client.get(review_url(other)).status_code == 200
    assert client.get(review_url(own)).status_code == 404


def test_second_mentor_cannot_take_over_a_review(client, auth, make_user, make_attempt, mentor, db):
    attempt = make_attempt(make_user())
    auth.as_(mentor)
    start(auth, attempt)
    auth.logout()
    second = make_user("mentor", courses=["test-capstone"])
    auth.as_(second)
    response = save(auth, attempt, action="approve")
    assert response.status_code == 409 and "another mentor" in response.get_data(as_text=True)
    assert count(db, ReviewLevel) == 0


def test_review_posts_without_csrf_are_refused(client, auth, make_user, make_attempt, mentor, db):
    attempt = make_attempt(make_user())
    auth.as_(mentor)
    assert client.post(f"{review_url(attempt)}/start").status_code == 400
    assert client.post(f"{review_url(attempt)}/review", data=review_data(action="approve")).status_code == 400
    assert count(db, Review) == 0
    db.expire_all()
    assert db.get(Attempt, attempt.id).review_state == OPEN


def test_unscored_attempts_are_not_reviewable(client, auth, make_user, make_attempt, mentor):
    queued = make_attempt(make_user(), status="queued")
    auth.as_(mentor)
    assert client.get(review_url(queued)).status_code == 404


def test_approving_asks_once_more_and_changes_nothing_until_confirmed(client, auth, make_user, make_attempt, mentor, db):
    attempt = make_attempt(make_user(name="Lee Learner"))
    auth.as_(mentor)
    start(auth, attempt)
    asked = save(auth, attempt, action="approve", confirmed="", comment="Nice.")
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Approve?" in html and "issues a signed certificate to Lee Learner" in html
    assert 'name="confirmed" value="yes"' in html and "Nice." in html  # what was typed is kept
    db.expire_all()
    assert db.get(Attempt, attempt.id).review_state == IN_REVIEW and count(db, ReviewLevel) == 0
    assert save(auth, attempt, action="approve", comment="Nice.").status_code == 302  # confirmed
    db.expire_all()
    assert db.get(Attempt, attempt.id).review_state == APPROVED


@pytest.mark.parametrize("levels, outcome", [
    ({"level-design": "2", "level-defense": "1"}, "pass"),
    ({"level-design": "0", "level-defense": "0"}, "fail"),
    ({"level-design": "", "level-defense": "9"}, "pending"),   # not set, and not one of the levels
])
def test_the_decision_bar_score_is_the_engines_final_score(client, auth, make_user, make_attempt, mentor, app, db,
                                                           levels, outcome):
    attempt = make_attempt(make_user())
    auth.as_(mentor)
    preview = client.get(f"{review_url(attempt)}/preview.json", query_string=levels).get_json()
    rubric = find_rubric("test-capstone", Path(app.config["RUBRICS_DIR"]))
    chosen = {key.removeprefix("level-"): value for key, value in levels.items()}
    expected = final_score(rubric, load_report(db, attempt=attempt),
                           {cid: ReviewLevel(criterion_id=cid, level=int(value))
                            for cid, value in chosen.items() if value in ("0", "1", "2")})
    assert (preview["outcome"], preview["percent"]) == (outcome, round(expected.score.percent, 1))
    assert expected.outcome == outcome


def test_review_page_links_each_error_and_offers_descriptors_and_the_previous_attempt(
        client, auth, make_user, make_attempt, mentor):
    learner = make_user()
    first = make_attempt(learner)
    auth.as_(mentor)
    start(auth, first)
    assert save(auth, first, **{"level-design": "1", "comment-design": "split the service layer",
                                "comment": "Split it.", "action": "request_changes"}).status_code == 302
    second = make_attempt(learner)
    start(auth, second)
    refused = save(auth, second, **{"level-tests": "1", "level-defense": "", "action": "approve"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert '<a href="#reason-tests">Tests pass, reason for the override: an override needs a written reason</a>' in html
    assert '<a href="#level-defense">' in html
    # each level a one-click choice with its whole descriptor, the measured one marked
    tests_picker = html[html.index('id="level-tests"'):html.index('</fieldset>', html.index('id="level-tests"'))]
    assert "<strong>Level 2</strong> · 2 of 2 pts <span class=\"badge\">measured</span><br><small>two tests, all " \
           "passing</small>" in tests_picker
    assert 'value="1" data-key="1" checked' in tests_picker  # what the mentor chose stays chosen
    assert "Attempt 1" in html and "split the service layer" in html and "Split it." in html
    assert f'href="/attempts/{second.id}/changes"' in html


def test_each_queue_row_shows_what_triage_needs(client, auth, make_user, make_attempt, mentor, db):
    from datetime import timedelta

    from assessor.domain.db import utcnow

    waiting, failing = make_attempt(make_user(name="Wai Ting")), make_attempt(make_user(name="Fay Ling"), passed=0)
    waiting.finished_at = utcnow() - timedelta(hours=5)
    db.add(waiting)
    db.commit()
    auth.as_(mentor)
    html = client.get("/mentor/").get_data(as_text=True)
    rows = {name: html[html.index(name):html.index("</tr>", html.index(name))] for name in ("Wai Ting", "Fay Ling")}
    report = load_report(db, attempt=waiting)
    assert f"{report.score.percent:.1f}%" in rows["Wai Ting"] and ">5 h<" in rows["Wai Ting"]
    assert "none" in rows["Wai Ting"] and "not yet" in rows["Wai Ting"]
    assert "the tests must pass" in rows["Fay Ling"] and 'gate-failed">1<' in rows["Fay Ling"]
    assert f">Attempt {failing.number}</a>" in html and "(attempt " not in html  # the numbering learners see


def test_cohort_calibration_compares_self_and_final_levels_per_criterion(client, auth, make_user, make_attempt,
                                                                          mentor, db):
    for own in ("2", "1"):
        learner = make_user()
        attempt = make_attempt(learner)
        auth.as_(learner)
        url = f"/learner/attempts/{attempt.id}/self-assessment"
        assert auth.post(url, self_assessment_data(level=own), token_from=url).status_code == 302
        auth.as_(mentor)
        start(auth, attempt)
        assert save(auth, attempt, **{"level-design": "1", "level-defense": "1", "level-tests": "2", "level-docs": "1",
                                      "reason-tests": "", "action": "approve"}).status_code == 302
    html = client.get("/mentor/calibration").get_data(as_text=True)
    design = html[html.index('data-label="Criterion">Design'):]
    design = design[:design.index("</tr>")]
    assert ">2</td>" in design                     # two learners compared
    assert "1.50 / " in design and "1.00 / " in design and "+0.50" in design and "1 / 0" in design
    assert "<svg" in html and "<title>self: 1.50 of" in html
    assert client.get("/mentor/calibration?course=other-capstone").status_code == 200  # not theirs: their own shown
    auth.as_(make_user())
    assert client.get("/mentor/calibration").status_code == 403


def test_save_and_next_ungraded_moves_to_the_oldest_attempt_nobody_else_is_reviewing(
        client, auth, make_user, make_attempt, mentor, db):
    first, taken, third = (make_attempt(make_user()) for _ in range(3))
    auth.as_(make_user("mentor", courses=["test-capstone"]))
    start(auth, taken)  # another mentor has this one
    auth.as_(mentor)
    start(auth, first)
    assert f'href="{review_url(first)}">Review the next ungraded attempt' in client.get("/mentor/").get_data(as_text=True)
    moved = save(auth, first, action="save_next", **{"comment-design": "kept while moving on"})
    assert moved.status_code == 302 and moved.headers["Location"].endswith(review_url(third))
    assert get_review(db, attempt=first).decided_at is None  # a draft, saved
    assert review_levels(db, review=get_review(db, attempt=first))["design"].comment == "kept while moving on"
    start(auth, third)
    last = save(auth, third, action="save_next")
    assert last.status_code == 302 and last.headers["Location"].endswith(review_url(first))  # still mine, undecided
    assert save(auth, first, action="approve").status_code == 302
    assert "Next ungraded: Test Course, attempt" in client.get(review_url(first)).get_data(as_text=True)
    nothing_left = save(auth, third, action="save_next")
    assert nothing_left.status_code == 302 and nothing_left.headers["Location"].endswith("/mentor/")
    assert "Nothing else is waiting for a review." in client.get("/mentor/").get_data(as_text=True)


def test_a_mentors_earlier_comments_on_a_criterion_are_offered_again(client, auth, make_user, make_attempt, mentor):
    first, second = make_attempt(make_user()), make_attempt(make_user())
    auth.as_(mentor)
    start(auth, first)
    assert save(auth, first, **{"comment-design": "Name the layers after the domain."}).status_code == 302
    start(auth, second)
    page = client.get(review_url(second)).get_data(as_text=True)
    bank = page[page.index('id="comment-design"'):]
    bank = bank[:bank.index("</details>")]
    assert "Your comments used before (1)" in bank
    assert 'data-insert="comment-design" data-text="Name the layers after the domain."' in bank
    defense = page[page.index('id="comment-defense"'):]
    assert "Your comments used before" not in defense[:defense.index("</section>")]  # none on that criterion yet
