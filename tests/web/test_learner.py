"""The learner's journey, and the rules that keep one learner out of another's work."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from assessor.domain import accounts, reviews
from assessor.domain.db import init_db
from assessor.domain.models import FAILED, IN_REVIEW, QUEUED, Attempt, Event, SelfAssessment, Submission
from assessor.engine.rubric import find_rubric
from assessor.domain.submissions import store_report
from assessor.web import create_app
from assessor.web.extensions import huey as app_huey

from tests.web.conftest import PASSWORD, Auth, build_report


CAPSTONE = {"app/core.py": "def add(a, b):\n    return a + b\n", "docs/guide.md": "# Guide\n\n## Usage\n\nrun it\n"}


def count(db, model) -> int:
    return db.exec(select(func.count()).select_from(model)).one()


def submit(auth, **data):
    return auth.post("/learner/submit", {"rubric": "test-capstone", **data}, token_from="/learner/submit")


@pytest.mark.parametrize("source, message", [
    ("", "enter the URL of your git repository"),
    ("ext::sh -c touch% /tmp/pwned", "transport URLs are not accepted"),
    ("https://user:secret@git.example.org/me/repo.git", "must not contain a user name, password or token"),
    ("--upload-pack=touch /tmp/pwned", "must not start with"),
    ("/no/such/repository/anywhere", "only the sample repositories this server offers"),
    ("file:///etc", "only the sample repositories this server offers"),
    ("/etc", "only the sample repositories this server offers"),
    ("https://127.0.0.1:9/learner/capstone.git", "internal network address"),
    ("https://2130706433/learner/capstone.git", "internal network address"),
    ("https://[::ffff:169.254.169.254]/learner/capstone.git", "internal network address"),
    ("https://localhost/learner/capstone.git", "internal network address"),
    ("ssh://git@example.org/me/repo.git", "not accepted here"),
    ("https://exa mple.org/repo", "repository URL"),
])
def test_bad_urls_get_the_engines_message_and_nothing_is_stored(client, auth, make_user, db, source, message):
    auth.as_(make_user())
    response = submit(auth, source=source)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count(db, Attempt) == 0 and count(db, Submission) == 0 and count(db, Event) == 0


def test_bad_ref_is_refused(client, auth, make_user, make_repo, db):
    auth.as_(make_user())
    response = submit(auth, source=str(make_repo(CAPSTONE)), ref="../../etc")
    assert response.status_code == 400
    assert "not a valid branch, tag or commit" in response.get_data(as_text=True)
    assert count(db, Attempt) == 0


def test_unknown_rubric_is_a_form_error(client, auth, make_user, make_repo, db):
    auth.as_(make_user())
    response = auth.post("/learner/submit", {"rubric": "no-such", "source": str(make_repo(CAPSTONE))},
                         token_from="/learner/submit")
    assert response.status_code == 400
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert count(db, Attempt) == 0


def test_local_sources_refused_unless_allowed(app_config, make_repo):
    app = create_app({**app_config, "ALLOW_LOCAL_SOURCES": False})
    init_db(app.extensions["assessor.engine"])
    with Session(app.extensions["assessor.engine"]) as session:
        accounts.create_user(session, email="l@example.org", password=PASSWORD)
        session.commit()
    auth = Auth(app.test_client())
    auth.login("l@example.org")
    response = submit(auth, source=str(make_repo(CAPSTONE)))
    assert response.status_code == 400
    assert "local" in response.get_data(as_text=True)


def test_submit_queues_an_attempt_with_a_timeline(app, client, auth, make_user, make_repo, db):
    learner = make_user()
    auth.as_(learner)
    repo = make_repo(CAPSTONE)
    response = submit(auth, source=str(repo), ref="main")
    assert response.status_code == 302
    attempt = db.exec(select(Attempt)).one()
    assert response.location.endswith(f"/learner/attempts/{attempt.id}")
    assert attempt.status == QUEUED and attempt.user_id == learner.id and attempt.ref == "main"
    assert attempt.source_url.startswith("file://") and attempt.job_id
    assert attempt.rubric_version == "1.0.0" and len(attempt.rubric_sha256) == 64
    with app.app_context():
        assert app_huey().pending_count() == 1  # really on the queue

    page = client.get(f"/learner/attempts/{attempt.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Waiting for a worker" in html
    assert '<meta http-equiv="refresh" content="5">' in html and "status.js" in html
    for stage in ("queued", "cloning", "measuring", "installing", "testing", "scoring"):
        assert f'data-stage="{stage}"' in html
    assert "submitted" in html and learner.email in html  # timeline: who and when

    status = client.get(f"/learner/attempts/{attempt.id}/status.json")
    data = json.loads(status.get_data(as_text=True))
    assert data["status"] == "queued" and data["finished"] is False
    assert [stage["name"] for stage in data["stages"]] == ["cloning", "measuring", "installing", "testing", "scoring"]

    again = submit(auth, source=str(repo))
    assert again.status_code == 400
    assert "still being assessed" in again.get_data(as_text=True)
    assert count(db, Attempt) == 1


def test_running_status_shows_the_current_stage(client, auth, make_user, make_attempt, db):
    learner = make_user()
    attempt = make_attempt(learner, status="running")
    attempt.stage, attempt.stage_message = "testing", "running the capstone's tests in the sandbox"
    db.add(attempt)
    db.commit()
    auth.as_(learner)
    data = client.get(f"/learner/attempts/{attempt.id}/status.json").get_json()
    assert data["stage"] == "testing"
    assert [s["state"] for s in data["stages"]] == ["done", "done", "done", "current", "waiting"]
    assert "running the capstone&#39;s tests" in client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)


def test_failed_attempt_shows_the_reason(client, auth, make_user, make_attempt):
    learner = make_user()
    attempt = make_attempt(learner, status=FAILED, failure_reason="repository not found at https://x (check the URL)")
    auth.as_(learner)
    html = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert "Failed: repository not found at https://x (check the URL)" in html
    assert "Submit again" in html
    assert client.get(f"/learner/attempts/{attempt.id}/status.json").get_json()["failure_reason"].startswith("repository")


def test_report_page_shows_criteria_evidence_charts_and_documents(client, auth, make_user, make_attempt):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    html = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    for text in ("Tests pass", "level 2", "2 passed, 0 failed", "Usage guide", "Missing sections: Usage",
                 "found, incomplete", "Design judgement", "pending", "tests must pass", "handle"):
        assert text in html, text
    assert html.count("<svg") == 2  # coverage per file and complexity ranks
    assert "app/&lt;script&gt;evil.py" in html and "<script>evil" not in html  # labels escaped
    assert "<meta http-equiv" not in html  # finished: no refresh


def test_history_of_attempts_is_kept(client, auth, make_user, make_attempt):
    learner = make_user()
    first = make_attempt(learner)
    second = make_attempt(learner)
    auth.as_(learner)
    html = client.get("/learner/").get_data(as_text=True)
    assert f"/learner/attempts/{first.id}" in html and f"/learner/attempts/{second.id}" in html
    assert "Attempt 1</a>" in html and "Attempt 2</a>" in html and "measured" in html


def self_assessment_data(level: str = "2", text: str = "my tests show it"):
    criteria = ("tests", "coverage", "complexity", "docs", "design", "defense")
    data = {f"level-{cid}": level if cid not in ("coverage", "complexity") else "1" for cid in criteria}
    data.update({f"justification-{cid}": text for cid in criteria})
    return data


def test_self_assessment_saved_edited_and_locked_when_review_starts(client, auth, make_user, make_attempt, db):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    form = client.get(url).get_data(as_text=True)
    assert 'name="level-design"' in form and "convincing" in form

    incomplete = auth.post(url, {"level-tests": "2"}, token_from=url)
    assert incomplete.status_code == 400
    assert "choose the level you think you reached" in incomplete.get_data(as_text=True)
    assert count(db, SelfAssessment) == 0

    assert auth.post(url, self_assessment_data(), token_from=url).status_code == 302
    assert auth.post(url, self_assessment_data(level="1", text="on reflection"), token_from=url).status_code == 302
    rows = db.exec(select(SelfAssessment).where(SelfAssessment.attempt_id == attempt.id)).all()
    assert len(rows) == 6 and {row.level for row in rows} == {1}
    kinds = [e.kind for e in db.exec(select(Event).where(Event.attempt_id == attempt.id).order_by(Event.id))]
    assert kinds.count("self_assessed") == 2

    attempt = db.get(Attempt, attempt.id)
    attempt.review_state = IN_REVIEW  # a mentor started
    db.add(attempt)
    db.commit()
    locked = auth.post(url, self_assessment_data(level="0"), token_from=url)
    assert locked.status_code == 409
    assert "can no longer change" in locked.get_data(as_text=True)
    db.expire_all()
    assert {row.level for row in db.exec(select(SelfAssessment))} == {1}


@pytest.mark.parametrize("level, text, message", [
    ("abc", "x", "choose one of the levels"),
    ("7", "x", "choose one of the levels"),
    ("2", "", "say briefly why"),
    ("2", "x" * 5000, "keep it under 4,000 characters (it has 5,000)"),
])
def test_self_assessment_bad_input_is_a_message_not_500(client, auth, make_user, make_attempt, level, text, message):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    data = self_assessment_data()
    data.update({"level-design": level, "justification-design": text})
    response = auth.post(url, data, token_from=url)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


# ----------------------------------------------------------------------------------------------------------- rules

@pytest.mark.parametrize("path", ["/learner/attempts/{id}", "/learner/attempts/{id}/status.json",
                                  "/learner/attempts/{id}/self-assessment"])
def test_another_learners_attempt_is_404(client, auth, make_user, make_attempt, path):
    owner, other = make_user(), make_user()
    attempt = make_attempt(owner)
    auth.as_(other)
    assert client.get(path.format(id=attempt.id)).status_code == 404
    assert client.get(path.format(id=999999)).status_code == 404


def test_forged_self_assessment_on_someone_elses_attempt_changes_nothing(client, auth, make_user, make_attempt, db):
    owner, intruder = make_user(), make_user()
    attempt = make_attempt(owner)
    auth.as_(intruder)
    response = auth.post(f"/learner/attempts/{attempt.id}/self-assessment", self_assessment_data())
    assert response.status_code == 404
    assert count(db, SelfAssessment) == 0


def test_missing_csrf_token_is_refused(client, auth, make_user, make_attempt, make_repo, db):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    response = client.post("/learner/submit", data={"rubric": "test-capstone", "source": str(make_repo(CAPSTONE))})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    response = client.post(f"/learner/attempts/{attempt.id}/self-assessment", data=self_assessment_data())
    assert response.status_code == 400
    bad_token = client.post(f"/learner/attempts/{attempt.id}/self-assessment",
                            data={**self_assessment_data(), "csrf_token": "forged"})
    assert bad_token.status_code == 400
    assert count(db, Attempt) == 1 and count(db, SelfAssessment) == 0


def test_signed_out_visitors_are_sent_to_sign_in(client, make_user, make_attempt):
    attempt = make_attempt(make_user())
    for path in ("/learner/", "/learner/submit", f"/learner/attempts/{attempt.id}", "/learner/calibration"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.location


def test_failed_attempt_cannot_be_self_assessed(client, auth, make_user, make_attempt):
    learner = make_user()
    attempt = make_attempt(learner, status=FAILED, failure_reason="x")
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    assert auth.post(url, self_assessment_data(), token_from="/learner/").status_code == 409


def test_error_pages_are_friendly(client, auth, make_user):
    auth.as_(make_user())
    assert "There is nothing here" in client.get("/no/such/page").get_data(as_text=True)
    assert client.put("/learner/submit").status_code == 405
    huge = client.post("/learner/submit", data={"source": "x" * (600 * 1024)})
    assert huge.status_code == 413


def summary_of(client, attempt) -> tuple[str, str]:
    """The attempt page's first section: its next step and its text."""
    html = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    match = re.search(r'<section id="summary"[^>]*data-next="([a-z_]+)"(.*?)</section>', html, re.S)
    assert match, "no summary at the top of the attempt page"
    assert html.index('id="summary"') < html.index('id="progress"')  # the outcome comes first
    return match.group(1), re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2)))


@pytest.mark.parametrize(("status", "review_state", "passed", "next_step", "words"), [
    ("queued", "open", 2, "wait", "Being assessed"),
    ("failed", "open", 2, "resubmit", "could not finish"),
    ("scored", "open", 2, "self_assess", "your mentor scores the rest"),
    ("scored", "open", 0, "resubmit", "Cannot pass as it stands"),
    ("scored", "changes_requested", 2, "resubmit", "asked for changes"),
    ("scored", "superseded", 2, "latest", "Replaced by a later attempt"),
])
def test_the_attempt_page_opens_with_where_it_stands_and_the_next_step(client, auth, make_user, make_attempt,
                                                                      status, review_state, passed, next_step, words):
    learner = make_user()
    attempt = make_attempt(learner, status=status, review_state=review_state, passed=passed,
                           failure_reason="the repository could not be cloned" if status == "failed" else None)
    if review_state == "superseded":
        make_attempt(learner)  # the attempt that replaced it
    auth.as_(learner)
    step, text = summary_of(client, attempt)
    assert step == next_step and words in text, text


def test_after_self_assessing_the_next_step_is_the_review_and_after_approval_the_certificate(
        client, auth, db, app, make_user, make_attempt):
    from assessor.domain import issuing
    from tests.web.certificate_helpers import approve, settings

    learner = make_user(name="Ada")
    attempt = make_attempt(learner)
    auth.as_(learner)
    page = client.get(f"/learner/attempts/{attempt.id}/self-assessment").get_data(as_text=True)
    fields = {name: "1" for name in re.findall(r'name="(level-[\w-]+)"', page)}
    fields.update({name.replace("level-", "justification-"): "I did this carefully." for name in list(fields)})
    response = auth.post(f"/learner/attempts/{attempt.id}/self-assessment", fields,
                         token_from=f"/learner/attempts/{attempt.id}/self-assessment")
    assert response.status_code in (200, 302)
    assert summary_of(client, attempt)[0] == "await_review"
    approve(db, app, attempt, make_user("mentor", courses=["test-capstone"]))
    step, text = summary_of(client, attempt)
    assert step == "certificate_pending" and "Passed:" in text
    issuing.issue_certificate(db, attempt_id=attempt.id, settings=settings(app))
    step, text = summary_of(client, attempt)
    assert step == "download" and "pass mark" in text
    page = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert "still to be scored" not in page  # the automated report's open criteria are scored now
    assert "before the mentor's review" in page
    certificate = issuing.list_certificates(db)[0]
    issuing.revoke(db, certificate_id=certificate.public_id, admin=None, reason="the work was copied")
    step, text = summary_of(client, attempt)  # no "Passed ... download" above a revoked certificate
    assert step == "resubmit" and "Certificate revoked" in text and "the work was copied" in text
    assert "Passed" not in text and "Download the PDF" not in client.get(f"/learner/attempts/{attempt.id}").get_data(
        as_text=True)


def test_replacing_an_attempt_that_waits_for_review_is_confirmed_and_can_be_undone(client, auth, db, make_user,
                                                                                make_attempt, make_repo):
    from assessor.domain.models import OPEN, SUPERSEDED
    from assessor.domain.submissions import _supersede_older

    learner = make_user()
    waiting = make_attempt(learner)
    auth.as_(learner)
    page = client.get("/learner/submit?rubric=test-capstone").get_data(as_text=True)
    assert 'id="replace-warning"' in page and f"Attempt {waiting.number} is waiting for a mentor" in page
    repo = make_repo(CAPSTONE)
    refused = submit(auth, source=str(repo))
    assert refused.status_code == 400 and "Tick the box to replace attempt" in refused.get_data(as_text=True)
    assert count(db, Attempt) == 1  # nothing queued without the learner's say-so
    accepted = submit(auth, source=str(repo), replace_pending="y")
    assert accepted.status_code == 302 and count(db, Attempt) == 2
    newer = db.exec(select(Attempt).order_by(Attempt.id.desc())).first()
    newer.status = "scored"
    db.add(newer)
    _supersede_older(db, attempt_id=newer.id)  # what finishing the new assessment does
    db.commit()

    db.refresh(waiting)
    assert waiting.review_state == SUPERSEDED
    page = client.get(f"/learner/attempts/{waiting.id}").get_data(as_text=True)
    assert "Replaced by a later attempt" in page and "A mentor has started the review" not in page
    assert f"Send attempt {waiting.number} to review instead" in page
    done = auth.post(f"/learner/attempts/{waiting.id}/choose-for-review", token_from=f"/learner/attempts/{waiting.id}")
    assert done.status_code == 302
    db.refresh(waiting)
    db.refresh(newer)
    assert (waiting.review_state, newer.review_state) == (OPEN, SUPERSEDED)
    page = client.get(f"/learner/attempts/{waiting.id}").get_data(as_text=True)
    assert f"Attempt {waiting.number} goes to review" in page
    # the other way round is refused once it is the one in the queue
    again = auth.post(f"/learner/attempts/{waiting.id}/choose-for-review", token_from=f"/learner/attempts/{waiting.id}")
    assert again.status_code == 302
    assert "only an attempt that a newer one replaced" in client.get(f"/learner/attempts/{waiting.id}").get_data(as_text=True)
    other = make_user()
    auth.logout()
    auth.as_(other)
    assert client.post(f"/learner/attempts/{newer.id}/choose-for-review").status_code in (400, 404)


@pytest.mark.parametrize(("value", "shown"), [
    ("2026-11-23T12:00:00+00:00", "23 Nov 2026, 12:00 UTC"),
    ("2026-11-23T13:30:00+01:30", "23 Nov 2026, 12:00 UTC"),
    ("2026-01-05T08:07:00Z", "5 Jan 2026, 08:07 UTC"),
    ("not a time", "not a time"),
])
def test_times_are_shown_as_readers_say_them(value, shown):
    from assessor.web.extensions import human_time

    assert human_time(value) == shown


def test_the_report_page_shows_the_assessment_time_in_words(client, auth, make_user, make_attempt):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    html = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert '<time datetime="2026-11-23T12:00:00+00:00">23 Nov 2026, 12:00 UTC</time>' in html


def test_a_draft_keeps_what_is_typed_and_only_a_submission_reaches_the_mentor(client, auth, make_user, make_attempt, db):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    draft = auth.post(url, {"level-design": "2", "justification-design": "layers, see docs/design.md",
                            "action": "draft"}, token_from=url)
    assert draft.status_code == 302 and draft.location.endswith(url)
    form = client.get(url).get_data(as_text=True)
    assert "layers, see docs/design.md" in form and re.search(r'name="level-design" value="2"\s+checked', form)
    db.expire_all()
    assert db.get(Attempt, attempt.id).self_assessed_at is None
    assert reviews.self_assessments(db, attempt=db.get(Attempt, attempt.id)) == {}  # a mentor sees nothing yet
    assert "self_assessed" not in [e.kind for e in db.exec(select(Event).where(Event.attempt_id == attempt.id))]
    assert "draft, not sent" in client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)

    missing = auth.post(url, {"level-design": "2", "justification-design": "layers", "action": "submit"}, token_from=url)
    html = missing.get_data(as_text=True)
    assert missing.status_code == 400 and 'href="#levels-defense"' in html  # the mentor-judged one is required
    assert "href=\"#levels-tests\"" not in html                              # measured ones are optional
    submitted = auth.post(url, {"level-design": "2", "justification-design": "layers", "level-defense": "1",
                                "justification-defense": "I presented it", "action": "submit"}, token_from=url)
    assert submitted.status_code == 302
    db.expire_all()
    attempt = db.get(Attempt, attempt.id)
    assert attempt.self_assessed_at is not None
    assert {cid: row.level for cid, row in reviews.self_assessments(db, attempt=attempt).items()} == {
        "design": 2, "defense": 1}


@pytest.mark.parametrize("data, message", [
    ({"level-design": "abc"}, "choose one of the levels"),
    ({"level-design": "2", "justification-design": "x" * 5000}, "keep it under 4,000 characters (it has 5,000)"),
])
def test_a_draft_still_refuses_bad_input(client, auth, make_user, make_attempt, db, data, message):
    learner = make_user()
    attempt = make_attempt(learner)
    auth.as_(learner)
    url = f"/learner/attempts/{attempt.id}/self-assessment"
    response = auth.post(url, {**data, "action": "draft"}, token_from=url)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert count(db, SelfAssessment) == 0


def test_the_next_attempt_starts_from_the_last_answers(client, auth, make_user, make_attempt, db):
    learner = make_user()
    first = make_attempt(learner)
    auth.as_(learner)
    url = f"/learner/attempts/{first.id}/self-assessment"
    assert auth.post(url, self_assessment_data(text="what attempt one said"), token_from=url).status_code == 302
    second = make_attempt(learner)
    form = client.get(f"/learner/attempts/{second.id}/self-assessment").get_data(as_text=True)
    assert "Started from your answers on attempt 1" in form and "what attempt one said" in form
    assert count(db, SelfAssessment) == 6  # nothing saved for attempt 2 until the learner saves it


def test_tests_an_absent_server_kept_from_running_are_shown_apart_to_learner_and_mentor(client, auth, db, app,
                                                                                        make_user, make_attempt):
    learner, mentor = make_user(), make_user("mentor", courses=["test-capstone"])
    attempt = make_attempt(learner)
    rubric = find_rubric("test-capstone", Path(app.config["RUBRICS_DIR"]))
    note = ("11 need MongoDB (not available here): counted apart, not as failures; tests and coverage are scored on "
            "the 20 tests that could run")
    report = replace(build_report(rubric, commit="d" * 40, passed=20),
                     tests={"passed": 20, "failed": 0, "errors": 0, "skipped": 0, "total": 20, "unavailable": 11,
                            "needs": {"MongoDB": 11}}, notes=(note,))
    stored, _ = store_report(db, report=report)
    attempt.report_id = stored.id
    db.add(attempt)
    db.commit()
    for user, url in ((learner, f"/learner/attempts/{attempt.id}"), (mentor, f"/mentor/attempts/{attempt.id}")):
        auth.as_(user)
        html = client.get(url).get_data(as_text=True)
        assert "11 could not run: they need MongoDB, not available here" in html, url
        assert note in html, url


def test_test_strength_is_shown_to_both_and_process_evidence_to_the_mentor_only(client, auth, db, app, make_user,
                                                                                 make_attempt):
    learner, mentor = make_user(), make_user("mentor", courses=["test-capstone"])
    attempt = make_attempt(learner)
    rubric = find_rubric("test-capstone", Path(app.config["RUBRICS_DIR"]))
    survivor = {"file": "shop/cart.py", "line": 9, "operator": "swap_op", "change": "count == 0 → count != 0",
                "tests": 2, "verdict": "survived", "detail": ""}
    noticed = {**survivor, "line": 3, "change": "a > 1 → a >= 1", "verdict": "noticed"}
    strength = {"tool": "mutmut's operators", "seed": "d" * 40, "sampled": 2, "judged": 2, "noticed": 1,
                "noticed_percent": 50.0, "survived": 1, "timed_out": 0, "not_run": 0, "seconds": 3.2,
                "summary": "your tests noticed 1 of 2 changes", "mutants": [survivor, noticed], "notes": []}
    evidence = [{"kind": "report_hook", "file": "tests/conftest.py", "line": 4,
                 "detail": "pytest_runtest_makereport implemented by keep_reports (a wrapper)"}]
    report = replace(build_report(rubric, commit="d" * 40, passed=20), strength=strength,
                     integrity={"version": 1, "authorship": None, "similarity": None, "evidence": evidence})
    stored, _ = store_report(db, report=report)
    attempt.report_id = stored.id
    db.add(attempt)
    db.commit()
    pages = {}
    for user, url in ((learner, f"/learner/attempts/{attempt.id}"), (mentor, f"/mentor/attempts/{attempt.id}")):
        auth.as_(user)
        pages[user.role] = html = client.get(url).get_data(as_text=True)
        assert "your tests noticed 1 of 2 changes (50%)" in html, url
        assert "shop/cart.py:9" in html and "count == 0 → count != 0" in html and "a &gt; 1 → a &gt;= 1" not in html
    assert "pytest_runtest_makereport implemented by keep_reports" in pages["mentor"]
    assert "tests/conftest.py:4" in pages["mentor"]
    assert "keep_reports" not in pages["learner"]


def test_an_attempt_that_cannot_pass_leads_with_what_gains_the_most_points(client, auth, make_user, make_attempt):
    learner = make_user()
    attempt = make_attempt(learner, passed=0)
    auth.as_(learner)
    step, text = summary_of(client, attempt)
    assert step == "resubmit" and "Required to pass: the tests must pass" in text
    assert "gate '" not in text and "criterions" not in text
    assert "What gains you the most points" in text, text
    gains = text[text.index("What gains you the most points"):]
    assert gains.startswith("What gains you the most points needed to pass Tests pass : reach level 2 (+20 points)")


def _scored_now(db, app, attempt, *, passed: int, commit: str | None = None):
    """The worker's last step for `attempt`: its report stored and the attempt scored."""
    from tests.web.conftest import build_report
    from assessor.engine.rubric import find_rubric
    from assessor.domain.submissions import finish_scored, store_report

    rubric = find_rubric(attempt.rubric_id, Path(app.config["RUBRICS_DIR"]))
    stored, reused = store_report(db, report=build_report(rubric, commit=commit or "f" * 40, passed=passed))
    attempt.status = "running"
    db.add(attempt)
    db.commit()
    assert finish_scored(db, attempt_id=attempt.id, stored=stored, reused=reused)
    db.refresh(attempt)
    return attempt


def test_an_attempt_that_cannot_pass_reaches_a_mentor_only_when_its_learner_asks(client, auth, db, app, make_user,
                                                                              make_attempt):
    from assessor.domain.models import HELD, OPEN

    learner = make_user()
    attempt = _scored_now(db, app, make_attempt(learner, status="queued"), passed=0)
    assert attempt.review_state == HELD
    mentor = make_user("mentor", courses=["test-capstone"])
    auth.as_(mentor)
    assert f"/mentor/attempts/{attempt.id}\"" not in client.get("/mentor/").get_data(as_text=True)
    auth.as_(learner)
    page = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert "not sent to review" in page and "Ask your mentor for feedback" in page
    url = f"/learner/attempts/{attempt.id}"
    assert auth.post(f"{url}/ask-feedback", token_from=url).status_code == 302
    db.refresh(attempt)
    assert attempt.review_state == OPEN
    again = auth.post(f"{url}/ask-feedback", token_from=url)  # only once
    assert again.status_code == 302 and "can be sent for feedback" in client.get(url).get_data(as_text=True)
    auth.as_(mentor)
    assert f"/mentor/attempts/{attempt.id}\"" in client.get("/mentor/").get_data(as_text=True)


def test_the_commit_a_mentor_asked_changes_to_is_not_sent_to_review_again(client, auth, db, app, make_user,
                                                                         make_attempt):
    from assessor.domain.models import HELD
    from tests.web.certificate_helpers import approve
    from assessor.domain.models import CHANGES_REQUESTED

    learner = make_user()
    first = make_attempt(learner, commit="a" * 40)
    approve(db, app, first, make_user("mentor", courses=["test-capstone"]), decision=CHANGES_REQUESTED)
    again = _scored_now(db, app, make_attempt(learner, status="queued"), passed=2, commit="a" * 40)
    assert again.review_state == HELD
    auth.as_(learner)
    step, text = summary_of(client, again)
    assert step == "resubmit" and f"Unchanged since attempt {first.number}" in text
    assert "Push the changes your mentor asked for" in text
    different = _scored_now(db, app, make_attempt(learner, status="queued"), passed=2, commit="b" * 40)
    assert different.review_state == "open"


def test_submit_suggests_the_learners_capstone_shows_its_rubric_and_submit_again_brings_the_repository(
        client, auth, make_user, make_attempt):
    learner = make_user()
    auth.as_(learner)
    fresh = client.get("/learner/submit").get_data(as_text=True)
    assert '<details class="rubric-preview" data-rubric="other-capstone" hidden>' in fresh  # nothing chosen yet
    make_attempt(learner, rubric_id="other-capstone")
    page = client.get("/learner/submit").get_data(as_text=True)
    assert '<option selected value="other-capstone">' in page or 'value="other-capstone" selected' in page
    assert '<details class="rubric-preview" data-rubric="other-capstone">' in page
    again = client.get("/learner/submit?rubric=test-capstone&source=https://git.example.org/l/capstone.git&ref=v2")
    html_text = again.get_data(as_text=True)
    assert 'value="https://git.example.org/l/capstone.git"' in html_text and 'value="v2"' in html_text
