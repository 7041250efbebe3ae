"""Near copies on every database backend: fingerprints stored and streamed back, matches found both ways, the
operator's list with what was found (its subqueries are the part most likely to differ between SQL dialects)."""

import textwrap

from assessor.domain import integrity, reviews
from assessor.engine.sources import snapshot
from assessor.domain.submissions import attempt_rubric, load_report

from tests.copies import disguise
from tests.integrity_capstones import PY_ORIGINAL
from tests.test_similarity import PYTHON_RENAMES


def _fingerprint(db, attempt, repo) -> dict:
    report, pending = integrity.find_near_copies(db, report=load_report(db, attempt=attempt),
                                                 rubric=attempt_rubric(db, attempt=attempt),
                                                 learner_id=attempt.user_id, sources=snapshot(repo))
    integrity.record_near_copies(db, report_id=attempt.report_id, pending=pending)
    return report.integrity["similarity"]


def test_near_copies_are_stored_found_and_listed(db, make_user, make_attempt, make_repo):
    original = make_attempt(make_user(name="Ada Author"))
    assert _fingerprint(db, original, make_repo(PY_ORIGINAL))["matches"] == []
    copy = make_attempt(make_user(name="Carl Copier"))
    disguised = disguise({path: textwrap.dedent(text) for path, text in PY_ORIGINAL.items()}, PYTHON_RENAMES)
    [match] = _fingerprint(db, copy, make_repo(disguised))["matches"]
    assert match["commit"] == original.commit and match["percent"] >= 80

    admin = make_user("admin")
    [seen_from_copy] = integrity.near_copies(db, attempt=copy, viewer=admin)
    [seen_from_original] = integrity.near_copies(db, attempt=original, viewer=admin)
    assert seen_from_copy.this_side_copies and not seen_from_original.this_side_copies
    assert seen_from_copy.other.learner_name == "Ada Author" and seen_from_original.other.learner_name == "Carl Copier"
    assert integrity.flagged(db, attempt=copy) and integrity.flagged(db, attempt=original)

    listed = {row.learner.name: row for row in integrity.flagged_attempts(db, rubric_id="test-capstone")}
    assert set(listed) == {"Ada Author", "Carl Copier"}
    assert all(not row.same_work and row.near_copy_percent >= 80 for row in listed.values())
    # the mentor's queue filtered by the flags, on this backend too
    flagged = reviews.review_queue(db, mentor=admin, flagged=True)
    assert {row.attempt.id for row in flagged.items} >= {copy.id, original.id} and flagged.total == len(flagged.items)
    clean = reviews.review_queue(db, mentor=admin, flagged=False)
    assert not {row.attempt.id for row in clean.items} & {copy.id, original.id}
