"""How fast does every page of the learner -> mentor -> employer journey render with 10,000 submissions?

    .venv/bin/python bench/pages.py [--attempts 10000] [--repeat 20] [--limit-ms 100]

Not part of the test suite. Seeds a temporary database with bench/dashboard.py's seeding (learners, attempts in
every state and review state across two courses, self-assessments, decided reviews), then adds one learner whose
attempt carries a real report (the passing sample assessed by the real pipeline, in the sandbox), takes it
through self-assessment, review (with line comments on a 5,000-line file in the code view), approval and
certificate issuing, and times each page of that journey through
the Flask test client: median and worst of --repeat renders. Pages over --limit-ms are flagged, and the exit status
is 1 when any GET page is over it. The two form posts that do deliberate cryptography (sign-in hashes the password
with Argon2id; the verify upload checks two signatures) are timed for information and flagged, not failed.
"""

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session, func, select  # noqa: E402

from assessor.domain import accounts, line_comments, reviews  # noqa: E402
from assessor.domain.db import init_db, utcnow  # noqa: E402
from assessor.engine.intake import SourcePolicy  # noqa: E402
from assessor.domain.models import SCORED, Attempt, CourseAssignment, CriterionRequest, Submission, User  # noqa: E402
from assessor.engine.pipeline import PipelineSettings, assess  # noqa: E402
from assessor.engine.rubric import find_rubric  # noqa: E402
from assessor.samples import create_sample_repo  # noqa: E402
from assessor.domain.source_store import store_sources  # noqa: E402
from assessor.engine.sources import SourceFile, SourceSnapshot  # noqa: E402
from assessor.domain.submissions import record_event, snapshot_rubric, store_report  # noqa: E402
from assessor.web import create_app  # noqa: E402
from dashboard import seed  # noqa: E402  (bench/dashboard.py)

RUBRIC_ID = "scalable-architectures-resilient-core"
PASSWORD = "benchmark password"


def real_report(tmp: Path, rubric):
    """The passing sample assessed for real (clone, sandboxed tests, coverage, radon)."""
    work = Path(tempfile.mkdtemp(prefix="bench-pages-work-", dir="/tmp"))
    work.chmod(0o711)
    repo = create_sample_repo("passing", tmp / "passing")
    settings = PipelineSettings(work_root=work, cache_dir=tmp / "cache", source_policy=SourcePolicy(allow_local=True),
                                keep_sources=True)
    started = time.perf_counter()
    report = assess(str(repo), rubric, settings=settings)
    print(f"assessed the passing sample in {time.perf_counter() - started:.1f} s ({report.outcome})")
    return report


def journey_attempt(session: Session, rubric, report, mentor: User) -> tuple[User, Attempt]:
    learner = accounts.create_user(session, email="journey@example.org", password=PASSWORD, name="Journey Learner")
    learner.email_verified_at = utcnow()  # certificates go only to confirmed addresses
    session.add(CourseAssignment(user_id=mentor.id, rubric_id=rubric.id))
    snapshot_rubric(session, rubric=rubric)
    stored, _ = store_report(session, report=report)
    submission = Submission(user_id=learner.id, rubric_id=rubric.id, course=rubric.course)
    session.add(submission)
    session.flush()
    attempt = None
    made = []
    for number in range(1, 6):  # a few earlier attempts, the last one scored with the real report
        attempt = Attempt(submission_id=submission.id, user_id=learner.id, number=number, rubric_id=rubric.id,
                          rubric_version=rubric.version, rubric_sha256=rubric.sha256, course=rubric.course,
                          source_url="https://git.example.org/journey/capstone.git", status=SCORED,
                          commit=report.commit if number == 5 else f"{number:040x}", report_id=stored.id)
        session.add(attempt)
        session.flush()
        record_event(session, attempt=attempt, kind="submitted", actor=learner, detail="bench")
        record_event(session, attempt=attempt, kind="assessed", detail="bench")
        made.append(attempt)
    session.commit()
    store_journey_sources(session, report, made)
    return learner, attempt


BIG_FILE = "src/inventory_service/generated_catalogue.py"


def big_module(lines: int = 5000) -> str:
    """A long, ordinary Python module: functions with branches, strings, comments and numbers."""
    out = ['"""A generated catalogue of pricing rules."""', ""]
    number = 0
    while len(out) < lines:
        number += 1
        out += [f"def rule_{number}(order, *, region='eu', threshold={number * 3}):",
                f"    # rule {number}: discounts over the threshold, never below zero",
                "    total = sum(line['price'] * line['quantity'] for line in order['lines'])",
                "    if total > threshold and region in ('eu', 'uk'):",
                f"        return max(0.0, total - {number % 7 + 1}.5)",
                "    elif total > threshold:",
                f"        return total * 0.{number % 9 + 1}",
                "    return total", "", ""]
    return "\n".join(out[:lines]) + "\n"


def store_journey_sources(session: Session, report, attempts: list[Attempt]) -> None:
    """The assessed commit's files plus a 5,000-line module, and an earlier attempt's slightly different files."""
    files = [*report.sources.files, SourceFile(BIG_FILE, big_module())]
    store_sources(session, commit=report.commit, snapshot=SourceSnapshot(tuple(files)))
    earlier = [SourceFile(f.path, f.text.replace("return total\n", "return round(total, 2)\n", 40)) for f in files]
    store_sources(session, commit=attempts[-2].commit, snapshot=SourceSnapshot(tuple(earlier)))


def largest_sample_file(report) -> str:
    return max((f for f in report.sources.files if f.path.endswith(".py")), key=lambda f: len(f.text)).path


def top_level_entries(rubric) -> dict:
    return {c.id: (c.levels[-1].level, "Shown in the documents and the tests.") for c in rubric.criteria}


def review_entries(rubric, report) -> dict:
    entries = {}
    for criterion in rubric.criteria:
        score = report.criterion(criterion.id)
        level = score.level if criterion.automated and score is not None else criterion.levels[-1].level
        entries[criterion.id] = (level, "Clear.", "")
    return entries


def seed_conversation_and_flags(session: Session, mentor: User) -> tuple[int, int]:
    """Integrity flags and open requests at the scale the queue meets them: one scored attempt in 20 shares its
    commit with another learner's, and one decided attempt in 10 has an open question or regrade request."""
    scored = session.exec(select(Attempt.id, Attempt.commit).where(Attempt.status == SCORED)
                          .order_by(Attempt.id)).all()
    pairs = [(first, second) for (first, _), (second, _) in zip(scored[::40], scored[20::40])]
    for first, second in pairs:
        commit = session.get(Attempt, first).commit
        copy = session.get(Attempt, second)
        copy.commit = commit
        session.add(copy)
    decided = session.exec(select(Attempt).where(Attempt.review_state.in_(("approved", "changes_requested")))
                           .order_by(Attempt.id)).all()
    asked = decided[::10]
    session.execute(insert(CriterionRequest), [
        {"attempt_id": attempt.id, "criterion_id": "contract-tests", "kind": "regrade" if index % 2 else "question",
         "author_id": attempt.user_id, "body": "Why this level?", "created_at": utcnow()}
        for index, attempt in enumerate(asked)])
    session.commit()
    return len(pairs), len(asked)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--limit-ms", type=float, default=100.0)
    args = parser.parse_args()
    rubrics_dir = ROOT / "rubrics"
    rows: list[tuple[str, float, float, bool]] = []

    def timed(label: str, request, *, informational: bool = False, expect: int = 200, shows: str = "") -> None:
        response = request()
        assert response.status_code == expect, f"{label}: HTTP {response.status_code}"
        assert shows.encode() in response.get_data(), f"{label}: the page does not show {shows!r}"
        samples = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = request()
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == expect, f"{label}: HTTP {response.status_code}"
        rows.append((label, statistics.median(samples), max(samples), informational))

    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp_name:
        tmp = Path(tmp_name)
        app = create_app({"INSTANCE_PATH": str(tmp / "instance"), "SECRET_KEY": "bench",
                          "DATABASE_URL": f"sqlite:///{tmp}/bench.db", "QUEUE_URL": f"sqlite:///{tmp}/queue.db",
                          "RUBRICS_DIR": str(rubrics_dir), "KEYS_DIR": str(tmp / "keys"), "WTF_CSRF_ENABLED": False,
                          "PAGE_SIZE": 25, "LOGIN_MAX_FAILURES": 10**6})
        engine = app.extensions["assessor.engine"]
        init_db(engine)
        rubric = find_rubric(RUBRIC_ID, rubrics_dir)
        report = real_report(tmp, rubric)
        with Session(engine, expire_on_commit=False) as session:
            mentor = seed(session, rubrics_dir, args.attempts)
            learner, attempt = journey_attempt(session, rubric, report, mentor)
            flagged, asked = seed_conversation_and_flags(session, mentor)
            admin = accounts.create_user(session, email="operator@example.org", password=PASSWORD, role="admin")
            session.commit()
            total = session.exec(select(func.count()).select_from(Attempt)).one()
        print(f"{total} attempts in the database; {flagged} pairs share a commit, {asked} open requests")
        base = f"/learner/attempts/{attempt.id}"

        anonymous = app.test_client()
        timed("GET /healthz (baseline)", lambda: anonymous.get("/healthz"))
        timed("GET /login", lambda: anonymous.get("/login"))
        timed("GET /signup", lambda: anonymous.get("/signup"))
        timed("POST /login (Argon2id check)", lambda: app.test_client().post(
            "/login", data={"email": learner.email, "password": PASSWORD}), informational=True, expect=302)

        as_learner = app.test_client()
        as_learner.post("/login", data={"email": learner.email, "password": PASSWORD})
        timed("GET /learner/", lambda: as_learner.get("/learner/"))
        timed("GET /learner/submit", lambda: as_learner.get("/learner/submit"))
        timed("GET attempt (status + report)", lambda: as_learner.get(base), shows="Test coverage of the service code")
        timed("GET attempt status.json", lambda: as_learner.get(base + "/status.json"))
        timed("GET self-assessment form", lambda: as_learner.get(base + "/self-assessment"))
        with Session(engine, expire_on_commit=False) as session:
            reviews.save_self_assessment(session, user=session.get(User, learner.id),
                                         attempt=session.get(Attempt, attempt.id), rubric=rubric,
                                         entries=top_level_entries(rubric))

        as_mentor = app.test_client()
        with as_mentor.session_transaction() as flask_session:
            flask_session["_user_id"] = mentor.get_id()  # "id:session token", as login_user stores it
            flask_session["_fresh"] = True
        queue_total = as_mentor.get("/mentor/")  # warm
        assert queue_total.status_code == 200, (queue_total.status_code, queue_total.location)
        timed("GET /mentor/ (queue, first page)", lambda: as_mentor.get("/mentor/"), shows="Awaiting review")
        timed("GET /mentor/?page=150 (deep page)", lambda: as_mentor.get("/mentor/?page=150"))
        timed("GET /mentor/?flags=flagged (integrity filter)", lambda: as_mentor.get("/mentor/?flags=flagged"),
              shows="same work as another learner")
        timed("GET /mentor/?flags=clean", lambda: as_mentor.get("/mentor/?flags=clean"))
        with Session(engine, expire_on_commit=False) as session:
            reviews.start_review(session, mentor=session.get(User, mentor.id), attempt=session.get(Attempt, attempt.id))
            session.commit()
        timed("GET mentor review page (editing)", lambda: as_mentor.get(f"/mentor/attempts/{attempt.id}"),
              shows="Approve")
        timed("GET mentor learner page", lambda: as_mentor.get(f"/mentor/learners/{learner.id}"))
        with Session(engine, expire_on_commit=False) as session:
            for line in range(100, 5000, 250):
                line_comments.add_comment(session, attempt=session.get(Attempt, attempt.id),
                                          author=session.get(User, mentor.id), rubric=rubric, path=BIG_FILE,
                                          line_count=5000, start_line=line, end_line=line + 2, criterion_id="",
                                          body="Could this rule be data instead of code?")
        code = f"/attempts/{attempt.id}/code"
        timed("GET code view: file list", lambda: as_mentor.get(code), shows="generated_catalogue.py")
        timed("GET code view: 5,000-line file", lambda: as_mentor.get(f"{code}/{BIG_FILE}"),
              shows='id="L5000"')
        timed("GET code view: largest sample file", lambda: as_mentor.get(f"{code}/{largest_sample_file(report)}"))
        timed("GET changes since the last attempt", lambda: as_mentor.get(f"/attempts/{attempt.id}/changes"),
              shows="Changes since attempt 4")
        with Session(engine, expire_on_commit=False) as session:
            reviews.save_review(session, mentor=session.get(User, mentor.id), attempt=session.get(Attempt, attempt.id),
                                rubric=rubric, report=report, entries=review_entries(rubric, report),
                                comment="Approved.", decision="approved")
            session.commit()
        timed("GET mentor review page (decided)", lambda: as_mentor.get(f"/mentor/attempts/{attempt.id}"))

        certificate = None
        try:
            from assessor.domain import issuing

            with Session(engine, expire_on_commit=False) as session:
                certificate = issuing.issue_certificate(session, attempt_id=attempt.id,
                                                        settings=issuing.settings_from_config(app.config))
        except Exception as error:  # the certificate engine is optional for the page figures
            print(f"no certificate: {type(error).__name__}: {error}")
        timed("GET attempt (approved, result)", lambda: as_learner.get(base), shows="Final score")
        with Session(engine, expire_on_commit=False) as session:
            from assessor.domain import conversation

            conversation.open_request(session, learner=session.get(User, learner.id),
                                      attempt=session.get(Attempt, attempt.id), rubric=rubric,
                                      criterion_id=rubric.criteria[-1].id, kind="regrade",
                                      body="The design memo covers it in section 3.", base_url="http://localhost/")
        timed("GET attempt with a regrade request", lambda: as_learner.get(base), shows="regrade request, open")
        timed("GET mentor review page (open request)", lambda: as_mentor.get(f"/mentor/attempts/{attempt.id}"),
              shows="Send the answer")

        as_admin = app.test_client()
        with as_admin.session_transaction() as flask_session:
            flask_session["_user_id"] = admin.get_id()
            flask_session["_fresh"] = True
        timed("GET /admin/overview", lambda: as_admin.get("/admin/overview"), shows="Waiting for a mentor")
        timed("GET /admin/?q=learner12 (account search)", lambda: as_admin.get("/admin/?q=learner12"))
        timed("GET /admin/mail?q=regrade (mail search)", lambda: as_admin.get("/admin/mail?q=regrade"))
        timed("GET /admin/modules (results browser)", lambda: as_admin.get("/admin/modules"))
        timed("GET /learner/calibration", lambda: as_learner.get("/learner/calibration"))
        if certificate is not None:
            pid = certificate.public_id
            pdf = certificate.pdf
            timed("GET certificate PDF download", lambda: as_learner.get(f"/learner/certificates/{pid}.pdf"))
            timed("GET /verify/<id> (public page)", lambda: anonymous.get(f"/verify/{pid}"), shows="Journey Learner")
            timed("GET /verify (upload form)", lambda: anonymous.get("/verify"))
            from io import BytesIO

            form = anonymous.get("/verify").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # the page checks it itself
            timed("POST /verify (PDF: seal + credential)", lambda: anonymous.post(
                "/verify", data={"pdf": (BytesIO(pdf), "certificate.pdf"), "csrf_token": token},
                content_type="multipart/form-data"), informational=True, shows='data-verdict="valid"')
        engine.dispose()

    over = [row for row in rows if row[1] > args.limit_ms]
    baseline = next(median for label, median, _, _ in rows if label.startswith("GET /healthz"))
    print(f"\n{'page':<46} {'median':>9} {'worst':>9} {'x healthz':>10}")
    for label, median, worst, informational in rows:
        flag = ""
        if median > args.limit_ms:
            flag = f"  OVER {args.limit_ms:g} ms" + (" (deliberate cryptography; informational)" if informational else "")
        print(f"{label:<46} {median:7.1f}ms {worst:7.1f}ms {median / baseline:9.1f}x{flag}")
    failing = [row for row in over if not row[3]]
    print(f"\n{len(rows)} timed, {len(failing)} page(s) over {args.limit_ms:g} ms (median of {args.repeat})")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
