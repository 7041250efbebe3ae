"""Near copies end to end: the real worker assesses real repositories, fingerprints each submission once, flags a
disguised copy by another author (both ways), shows the fragments side by side, and gates the approval; an honest
capstone of the same assignment is not flagged; a partial copy is found by its module, in TypeScript too."""

import json
import textwrap
from dataclasses import replace

import pytest
from sqlmodel import select

from assessor.domain import integrity, jobs
from assessor.domain.models import SCORED, Attempt, FingerprintRow, SimilarityMatch, StoredReport, User
from assessor.engine.rubric import IntegrityRules
from assessor.samples import NODE_PASSING_TREE
from assessor.engine.similarity import ENGINE
from assessor.domain.source_store import store_sources
from assessor.engine.sources import snapshot
from assessor.domain.submissions import attempt_rubric, load_report

from tests.copies import disguise
from tests.integrity_capstones import PY_HONEST, PY_ORIGINAL, TS_HONEST, TS_ORIGINAL
from tests.test_authorship import commit
from tests.test_similarity import PYTHON_RENAMES, TYPESCRIPT_RENAMES
from tests.web.test_mentor import review_url, save, start
from tests.web.test_queue import submit, wait_until_finished


@pytest.fixture
def mentor(make_user):
    return make_user("mentor", courses=["test-capstone"], name="Mona Mentor")


@pytest.fixture
def repo_by(tmp_path):
    """Factory: a real repository of `files` committed by `email`."""
    def factory(name: str, files: dict[str, str], *, email: str):
        repo = tmp_path / name
        repo.mkdir()
        commit(repo, {path: textwrap.dedent(text) for path, text in files.items()}, email=email,
               when="2024-06-01T12:00:00Z")
        return repo
    return factory


def _assessed(client, auth, learner, repo) -> int:
    auth.as_(learner)
    attempt_id = submit(client, str(repo))
    assert wait_until_finished(client, attempt_id)[0]["status"] == SCORED
    # These small capstones cannot pass as they stand: their learners send them to a mentor.
    url = f"/learner/attempts/{attempt_id}"
    assert auth.post(f"{url}/ask-feedback", token_from=url).status_code == 302
    assert "Ask your mentor for feedback" not in client.get(url).get_data(as_text=True)  # in the queue now
    return attempt_id


@pytest.mark.slow
def test_a_disguised_copy_is_flagged_both_ways_shown_side_by_side_and_gates_the_approval(
        app, client, auth, db, make_user, mentor, repo_by, worker):
    author, copier, twin = make_user(name="Ada Author"), make_user(name="Carl Copier"), make_user(name="Tom Twin")
    original_repo = repo_by("original", PY_ORIGINAL, email=author.email)
    original = _assessed(client, auth, author, original_repo)
    copy_files = disguise({path: textwrap.dedent(text) for path, text in PY_ORIGINAL.items()}, PYTHON_RENAMES)
    copy = _assessed(client, auth, copier, repo_by("copy", copy_files, email="carl@elsewhere.example"))

    db.expire_all()
    copy_attempt, original_attempt = db.get(Attempt, copy), db.get(Attempt, original)
    report = load_report(db, attempt=copy_attempt)
    found = report.integrity["similarity"]
    assert found["engine"] == ENGINE and found["threshold_percent"] == 50 and found["compared_with"] >= 1
    [match] = [item for item in found["matches"] if item["commit"] == original_attempt.commit]
    assert match["percent"] >= 80 and match["fragments"]
    assert [author["email"] for author in report.integrity["authorship"]["authors"]] == ["carl@elsewhere.example"]
    # Each submission is fingerprinted once, when it is stored.
    assert len(db.exec(select(FingerprintRow).where(FingerprintRow.report_id.in_(
        [copy_attempt.report_id, original_attempt.report_id]))).all()) == 2

    auth.as_(mentor)
    page = client.get(review_url(copy_attempt)).get_data(as_text=True)
    assert "Integrity: a near copy" in page and f"{match['percent']:g}%</strong> of this submission's code" in page
    assert "Ada Author, Test Course, attempt 1" in page
    side = client.get(f"/attempts/{copy}/similar/{_match_id(db, copy_attempt)}").get_data(as_text=True)
    assert "Near copy, side by side" in side and "borrowings/domain.py" in side and "loans/domain.py" in side
    assert "not available" not in side and '"n">borrowing<' in side and '"n">loan<' in side  # both sides' code
    # The original is flagged too, the other way round: its mentor sees who submitted it later.
    assert "submitted later" in client.get(review_url(original_attempt)).get_data(as_text=True)

    start(auth, copy_attempt)
    refused = save(auth, copy_attempt, **{"level-design": "2", "level-defense": "1", "action": "approve"})
    assert refused.status_code == 400 and "give your reason for going on" in refused.get_data(as_text=True)
    # (the form's levels differ from what was measured for this small capstone: each override gives its reason)
    overrides = {f"reason-{criterion}": "set for the test" for criterion in ("tests", "coverage", "complexity", "docs")}
    assert save(auth, copy_attempt, **{"level-design": "2", "level-defense": "1", "action": "acknowledge",
                                       "integrity_reason": "the learner explained it", **overrides}).status_code == 302
    # Acknowledged, the flag no longer stands in the way (the approval itself is tested in test_integrity).
    again = save(auth, copy_attempt, **{"level-design": "2", "level-defense": "1", "action": "approve"})
    assert "give your reason for going on" not in again.get_data(as_text=True)
    assert "integrity flag acknowledged" in client.get(review_url(copy_attempt)).get_data(as_text=True)

    # The same commit from a third learner: its stored report is reused, and the review page says so.
    same = _assessed(client, auth, twin, original_repo)
    auth.as_(mentor)
    twin_page = client.get(review_url(db.get(Attempt, same))).get_data(as_text=True)
    assert "The same commit" in twin_page and "Ada Author, Test Course, attempt 1" in twin_page

    auth.as_(copier)  # a learner never sees the comparison
    assert client.get(f"/attempts/{copy}/similar/{_match_id(db, copy_attempt)}").status_code == 404
    auth.as_(make_user("admin"))
    listed = client.get("/admin/integrity?course=test-capstone").get_data(as_text=True)
    assert "Ada Author" in listed and "Carl Copier" in listed and "Tom Twin" in listed
    assert f"a near copy ({match['percent']:g}%)" in listed and "the same work; a near copy" in listed


def _match_id(db, attempt) -> int:
    return db.exec(select(SimilarityMatch.id).where(SimilarityMatch.report_id == attempt.report_id)).first()


@pytest.mark.slow
def test_an_honest_capstone_is_not_flagged_and_a_partial_copy_is_found_by_its_module(
        app, client, auth, db, make_user, mentor, repo_by, worker):
    author, honest, partial = make_user(name="Ada Author"), make_user(name="Hana Honest"), make_user(name="Pat Part")
    _assessed(client, auth, author, repo_by("original", PY_ORIGINAL, email=author.email))
    honest_attempt = _assessed(client, auth, honest, repo_by("honest", PY_HONEST, email=honest.email))
    db.expire_all()
    auth.as_(mentor)
    honest_page = client.get(review_url(db.get(Attempt, honest_attempt))).get_data(as_text=True)
    assert "Integrity:" not in honest_page and "Authorship:" in honest_page
    assert load_report(db, attempt=db.get(Attempt, honest_attempt)).integrity["similarity"]["matches"] == []

    # One module of the original, inside the learner's own work (the honest capstone, shared with its author).
    module = disguise({"loans/domain.py": textwrap.dedent(PY_ORIGINAL["loans/domain.py"])}, PYTHON_RENAMES)
    partial_attempt = _assessed(client, auth, partial,
                                repo_by("partial", {**PY_HONEST, **module}, email=partial.email))
    db.expire_all()
    auth.as_(mentor)
    partial_page = client.get(review_url(db.get(Attempt, partial_attempt))).get_data(as_text=True)
    assert "Integrity: a near copy" in partial_page and "<code>borrowings/domain.py</code>" in partial_page


def _compare(db, app, attempt, repo, *, threshold_rubric=None, samples=True):
    """The worker's own steps after scoring, on an attempt made by the factory: compare, then store."""
    report = load_report(db, attempt=attempt)
    rubric = threshold_rubric or attempt_rubric(db, attempt=attempt)
    files = snapshot(repo)
    store_sources(db, commit=attempt.commit, snapshot=files)
    report, pending = integrity.find_near_copies(db, report=report, rubric=rubric, learner_id=attempt.user_id,
                                                 sources=files, samples=samples)
    integrity.record_near_copies(db, report_id=attempt.report_id, pending=pending)
    stored = db.get(StoredReport, attempt.report_id)
    stored.document = json.dumps({**json.loads(stored.document), "integrity": report.integrity})
    db.add(stored)
    db.commit()
    return report.integrity["similarity"]


def test_typescript_copies_and_the_shipped_sample_are_found(app, db, make_user, make_attempt, repo_by, client,
                                                            auth, mentor):
    module = "src/limiter.ts"
    original = make_attempt(make_user(name="Ada Author"))
    _compare(db, app, original, repo_by("original", TS_ORIGINAL, email="ada@example.org"))
    copy = make_attempt(make_user(name="Carl Copier"))
    disguised = disguise({path: textwrap.dedent(text) for path, text in TS_ORIGINAL.items()}, TYPESCRIPT_RENAMES,
                         language="typescript")
    found = _compare(db, app, copy, repo_by("copy", disguised, email="carl@example.org"))
    assert [match["percent"] >= 80 for match in found["matches"]] == [True]
    honest = make_attempt(make_user(name="Hana Honest"))
    assert _compare(db, app, honest, repo_by("honest", TS_HONEST, email="hana@example.org"))["matches"] == []
    partial = make_attempt(make_user(name="Pat Part"))
    module_copy = disguise({module: textwrap.dedent(TS_ORIGINAL[module])}, TYPESCRIPT_RENAMES, language="typescript")
    matches = _compare(db, app, partial, repo_by("partial", {**TS_HONEST, **module_copy},
                                                 email="pat@example.org"))["matches"]
    # It is the honest learner's work (shared, so found too) with one module of the original's.
    by_commit = {match["commit"]: match for match in matches}
    assert set(by_commit) == {original.commit, copy.commit, honest.commit}
    match = by_commit[original.commit]
    assert match["module"] == "src/throttle.ts" and match["module_percent"] >= 70 and match["percent"] < 70
    # The learner's own earlier attempt is never a copy.
    again = make_attempt(db.get(User, copy.user_id))
    assert all(item["commit"] != copy.commit for item in
               _compare(db, app, again, repo_by("again", disguised, email="carl@example.org"))["matches"])

    sample_copy = make_attempt(make_user(name="Sam Sample"))
    [sample_match] = _compare(db, app, sample_copy, NODE_PASSING_TREE)["matches"]
    assert sample_match["sample"] == "node-passing" and sample_match["percent"] >= 95
    auth.as_(mentor)
    page = client.get(review_url(sample_copy)).get_data(as_text=True)
    assert "the shipped sample capstone “node-passing”" in page
    side = client.get(f"/attempts/{sample_copy.id}/similar/{_match_id(db, sample_copy)}").get_data(as_text=True)
    assert "not available" not in side and "src/stock.ts" in side
    # An installation that leaves the samples out (the demo, whose learners submit them) does not flag them
    # (in a course of its own here: this course already holds a learner's copy of the sample).
    demo_copy = make_attempt(make_user(name="Demo Learner"), rubric_id="other-capstone")
    assert _compare(db, app, demo_copy, NODE_PASSING_TREE, samples=False)["matches"] == []
    assert jobs.settings_from_config({**app.config, "INTEGRITY_SAMPLES": False}).compare_with_samples is False
    assert jobs.settings_from_config(app.config).compare_with_samples is True


def test_a_courses_threshold_is_its_own(app, db, make_user, make_attempt, repo_by):
    original = make_attempt(make_user())
    _compare(db, app, original, repo_by("original", PY_ORIGINAL, email="ada@example.org"))
    partial = make_attempt(make_user())
    module = disguise({"loans/domain.py": textwrap.dedent(PY_ORIGINAL["loans/domain.py"])}, PYTHON_RENAMES)
    strict = replace(attempt_rubric(db, attempt=partial), integrity=IntegrityRules(similarity_percent=95))
    found = _compare(db, app, partial, repo_by("partial", {**PY_HONEST, **module}, email="pat@example.org"),
                     threshold_rubric=strict)
    assert found["threshold_percent"] == 95 and found["matches"] == []


def test_submissions_stored_before_the_index_are_fingerprinted_from_their_kept_files(app, db, make_user,
                                                                                     make_attempt, repo_by):
    older = make_attempt(make_user(name="Assessed Before"))  # kept its files, but was never fingerprinted
    store_sources(db, commit=older.commit, snapshot=snapshot(repo_by("older", PY_ORIGINAL, email="o@example.org")))
    no_files = make_attempt(make_user())
    db.commit()
    copy_files = disguise({path: textwrap.dedent(text) for path, text in PY_ORIGINAL.items()}, PYTHON_RENAMES)
    first = make_attempt(make_user())
    assert _compare(db, app, first, repo_by("copy", copy_files, email="c@example.org"))["matches"] == []

    assert integrity.index_stored_submissions(db) == (1, 1)  # the one without kept files cannot be compared
    assert integrity.index_stored_submissions(db) == (0, 1)  # safe to run again
    second = make_attempt(make_user())
    matches = _compare(db, app, second, repo_by("copy-again", copy_files, email="c@example.org"))["matches"]
    assert {match["commit"] for match in matches} == {older.commit, first.commit}
    assert db.exec(select(FingerprintRow).where(FingerprintRow.report_id == no_files.report_id)).first() is None
