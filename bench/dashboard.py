"""How fast is the mentor dashboard with 10,000 submissions? Seeds a temporary database and prints timings (ms).

    .venv/bin/python bench/dashboard.py [--attempts 10000] [--repeat 20]

Not part of the test suite. Seeds learners, attempts across two courses in every review state, self-assessments
for some, then times the queue query (first page, a deep page, filtered by course and by state), the
reviewed-before query, and the whole dashboard page through the Flask test client. Also prints SQLite's query
plan for the queue, to show it is served by the (status, review_state, rubric_id, id) index.
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text, update  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from assessor.domain import accounts  # noqa: E402
from assessor.domain.db import init_db, utcnow  # noqa: E402
from assessor.domain.models import (  # noqa: E402
    APPROVED, CHANGES_REQUESTED, IN_REVIEW, OPEN, SCORED, SUPERSEDED, Attempt, CourseAssignment, Review,
    SelfAssessment, StoredReport, Submission, User,
)
from assessor.domain.reviews import review_queue, reviewed_by  # noqa: E402
from assessor.engine.rubric import find_rubric  # noqa: E402
from assessor.domain.submissions import snapshot_rubric  # noqa: E402
from assessor.web import create_app  # noqa: E402

RUBRICS = ("senior-backend-capstone", "background-jobs-capstone")


def timed(label: str, function, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    print(f"{label:<48} median {median:7.2f} ms   max {max(samples):7.2f} ms")
    return median


def seed(session: Session, rubrics_dir: Path, attempts: int) -> tuple[User, User]:
    random.seed(7)
    password_hash = accounts.hash_password("benchmark password")
    now = utcnow()
    mentor = User(email="mentor@example.org", password_hash=password_hash, role="mentor")
    session.add(mentor)
    session.flush()
    rubrics = [find_rubric(rubric_id, rubrics_dir) for rubric_id in RUBRICS]
    for rubric in rubrics:
        snapshot_rubric(session, rubric=rubric)
        session.add(CourseAssignment(user_id=mentor.id, rubric_id=rubric.id))
    report = StoredReport(key="bench", commit="0" * 40, rubric_id=rubrics[0].id, rubric_version=rubrics[0].version,
                          rubric_sha256=rubrics[0].sha256, outcome="pending", percent=50.0, document="{}")
    session.add(report)
    session.flush()
    learners = attempts // 5
    session.execute(insert(User), [{"email": f"learner{i}@example.org", "name": "", "password_hash": password_hash,
                                    "role": "learner", "active": True, "created_at": now} for i in range(learners)])
    learner_ids = list(session.exec(select(User.id).where(User.role == "learner")))
    submission_rows = [{"user_id": uid, "rubric_id": rubric.id, "course": rubric.course, "created_at": now}
                       for uid in learner_ids for rubric in rubrics]
    session.execute(insert(Submission), submission_rows)
    submissions = list(session.exec(select(Submission)))
    states = [OPEN] * 5 + [IN_REVIEW, APPROVED, CHANGES_REQUESTED, SUPERSEDED]
    rubric_by_id = {rubric.id: rubric for rubric in rubrics}
    rows = []
    for index in range(attempts):
        submission = submissions[index % len(submissions)]
        rubric = rubric_by_id[submission.rubric_id]
        status = SCORED if index % 10 else random.choice(["queued", "running", "failed"])
        rows.append({
            "submission_id": submission.id, "user_id": submission.user_id, "number": index // len(submissions) + 1,
            "rubric_id": rubric.id, "rubric_version": rubric.version, "rubric_sha256": rubric.sha256,
            "course": rubric.course, "source_url": f"https://git.example.org/l{submission.user_id}/capstone.git",
            "commit": f"{index:040x}", "status": status, "review_state": random.choice(states),
            "report_id": report.id if status == SCORED else None, "reused_report": False,
            "created_at": now - timedelta(minutes=attempts - index),
        })
    session.execute(insert(Attempt), rows)
    attempt_ids = list(session.exec(select(Attempt.id)))
    session.execute(insert(SelfAssessment), [
        {"attempt_id": attempt_id, "criterion_id": "coverage", "level": 2, "justification": "bench", "updated_at": now}
        for attempt_id in attempt_ids[::3]])
    session.execute(update(Attempt).where(Attempt.id.in_(attempt_ids[::3])).values(self_assessed_at=now))
    decided = session.exec(select(Attempt.id).where(Attempt.review_state.in_((APPROVED, CHANGES_REQUESTED)))).all()
    session.execute(insert(Review), [
        {"attempt_id": attempt_id, "mentor_id": mentor.id, "started_at": now, "decided_at": now - timedelta(seconds=i),
         "decision": APPROVED, "comment": "", "final_percent": 75.0, "final_outcome": "pass"}
        for i, attempt_id in enumerate(decided)])
    session.commit()
    print(f"seeded {attempts} attempts, {learners} learners, {len(decided)} decided reviews")
    return mentor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rubrics_dir = Path(__file__).resolve().parent.parent / "rubrics"
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        app = create_app({"INSTANCE_PATH": tmp, "SECRET_KEY": "bench", "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                          "QUEUE_URL": f"sqlite:///{tmp}/queue.db", "RUBRICS_DIR": str(rubrics_dir),
                          "WTF_CSRF_ENABLED": False, "PAGE_SIZE": 25})
        engine = app.extensions["assessor.engine"]
        init_db(engine)
        with Session(engine, expire_on_commit=False) as session:
            mentor = seed(session, rubrics_dir, args.attempts)
            with engine.connect() as connection:
                plan = connection.execute(text(
                    "EXPLAIN QUERY PLAN SELECT id FROM attempts WHERE status = 'scored' AND review_state IN "
                    "('open', 'in_review') AND user_id != 1 AND rubric_id IN ('a', 'b') ORDER BY id LIMIT 25 OFFSET 0"
                )).all()
            print("query plan:", "; ".join(row[-1] for row in plan))
            total = review_queue(session, mentor=mentor).total
            print(f"awaiting review for this mentor: {total}")
            timed("queue, first page", lambda: review_queue(session, mentor=mentor), args.repeat)
            deep = max(1, total // 25)
            timed(f"queue, last page ({deep})", lambda: review_queue(session, mentor=mentor, page=deep), args.repeat)
            timed("queue, filtered by course", lambda: review_queue(session, mentor=mentor, rubric_id=RUBRICS[1]),
                  args.repeat)
            timed("queue, filtered by state in_review", lambda: review_queue(session, mentor=mentor, state=IN_REVIEW),
                  args.repeat)
            timed("reviewed before, first page", lambda: reviewed_by(session, mentor=mentor), args.repeat)
        client = app.test_client()
        with client.session_transaction() as flask_session:
            flask_session["_user_id"] = str(mentor.id)
            flask_session["_fresh"] = True
        assert client.get("/mentor/").status_code == 200
        timed("GET /mentor/ (whole page)", lambda: client.get("/mentor/"), args.repeat)
        timed(f"GET /mentor/?page={deep}", lambda: client.get(f"/mentor/?page={deep}"), args.repeat)
        engine.dispose()


if __name__ == "__main__":
    main()
