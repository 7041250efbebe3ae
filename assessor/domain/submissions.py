"""Learners' submissions and attempts: creating them, reading them back, the timeline. No web, no queue."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from assessor.domain.db import utcnow
from assessor.errors import AssessorError, IntakeError, ReportError, RubricError
from assessor.engine.intake import SourcePolicy, check_source, pin_host
from assessor.domain.models import (
    APPROVED, CHANGES_REQUESTED, FAILED, HELD, OPEN, QUEUED, RUNNING, SCORED, SUPERSEDED, Attempt, Event, Review,
    RubricSnapshot, StoredReport, Submission, User,
)
from assessor.engine.report import Report, report_from_json, report_to_json
from assessor.engine.rubric import Rubric, load_rubrics, parse_rubric

MAX_REF_LENGTH = 255
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")

# Event kinds: the state changes a submission's timeline shows.
EVENT_LABELS = {
    "submitted": "submitted",
    "assessment_started": "assessment started",
    "assessed": "assessed",
    "report_reused": "assessed (stored report reused)",
    "assessment_failed": "assessment failed",
    "assessment_requeued": "assessment queued again (retry)",
    "requeued_by_admin": "queued again by an administrator",
    "superseded": "superseded by a newer attempt",
    "chosen_for_review": "sent to review instead of the newer attempt",
    "self_assessed": "self-assessed",
    "review_started": "review started",
    "reviewed": "reviewed",
    "overridden": "automated level overridden",
    "approved": "approved",
    "changes_requested": "changes requested",
    "line_comment": "commented on the code",
    "integrity_acknowledged": "integrity flag acknowledged",
}


class SubmissionError(AssessorError):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------------------------------------------------
# Rubrics
# ---------------------------------------------------------------------------------------------------------------

def available_rubrics(directory: Path) -> list[Rubric]:
    return load_rubrics(Path(directory))


def find_available(rubrics: list[Rubric], rubric_id: str) -> Rubric | None:
    return next((rubric for rubric in rubrics if rubric.id == rubric_id), None)


def snapshot_rubric(session: Session, *, rubric: Rubric) -> RubricSnapshot:
    """Keep the exact bytes of the rubric an attempt is assessed against (keyed by their SHA-256)."""
    existing = session.get(RubricSnapshot, rubric.sha256)
    if existing is not None:
        return existing
    try:
        data = Path(rubric.path).read_bytes()
    except OSError as error:
        raise RubricError(f"rubric file {rubric.path} cannot be read: {error.strerror}") from None
    if hashlib.sha256(data).hexdigest() != rubric.sha256:
        raise RubricError(f"rubric file {rubric.path} changed while it was being used; try again")
    # Insert-or-get: many first submissions against a new version arrive together at a deadline, and the loser
    # of a plain INSERT would answer 500. Both databases skip a duplicate key with ON CONFLICT DO NOTHING.
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(RubricSnapshot).values(
        sha256=rubric.sha256, rubric_id=rubric.id, version=rubric.version, source=data.decode("utf-8"),
        created_at=utcnow()).on_conflict_do_nothing(index_elements=["sha256"]))
    return session.get(RubricSnapshot, rubric.sha256)


def attempt_rubric(session: Session, *, attempt: Attempt) -> Rubric:
    """The rubric exactly as it was when the attempt was submitted."""
    snapshot = session.get(RubricSnapshot, attempt.rubric_sha256)
    if snapshot is None:
        raise RubricError(f"the rubric {attempt.rubric_id} v{attempt.rubric_version} of this attempt is not stored")
    return parse_rubric(snapshot.source.encode("utf-8"), source=f"{snapshot.rubric_id} v{snapshot.version}")


# ---------------------------------------------------------------------------------------------------------------
# Submitting
# ---------------------------------------------------------------------------------------------------------------

def check_ref(ref: str | None) -> str | None:
    """An optional branch, tag or commit; git's own naming rules (the engine checks again when cloning)."""
    if ref is None:
        return None
    ref = ref.strip()
    if not ref:
        return None
    components = ref.split("/")
    if (len(ref) > MAX_REF_LENGTH or ref.startswith("-") or ref == "@" or _REF_FORBIDDEN.search(ref)
            or ".." in ref or "@{" in ref or ref.endswith(".")
            or any(not part or part.startswith(".") or part.endswith(".lock") for part in components)):
        raise SubmissionError("that is not a valid branch, tag or commit name", field="ref")
    return ref


def create_attempt(session: Session, *, user: User, rubric: Rubric, source: str, ref: str | None,
                   policy: SourcePolicy, max_running: int = 2, pushed_by: str | None = None) -> Attempt:
    """Validate the source with the engine's own rules and record a queued attempt. Nothing is stored when
    the source or ref is refused (SubmissionError with the engine's message). A push (`pushed_by`) may queue
    beside a running attempt of the same capstone: it waits for it (see jobs)."""
    try:
        url = check_source(source, policy)
        pin_host(url, policy)  # an internal address is refused here, before any job exists
    except IntakeError as error:
        raise SubmissionError(str(error), field="source") from None
    ref = check_ref(ref)
    running = session.exec(select(func.count()).select_from(Attempt).where(
        Attempt.user_id == user.id, Attempt.status.in_((QUEUED, RUNNING)))).one()
    if running >= max_running:
        raise SubmissionError(f"you already have {running} assessment{'s' if running != 1 else ''} queued or running; "
                              f"wait for one to finish before submitting another", field="source")
    submission = session.exec(select(Submission).where(
        Submission.user_id == user.id, Submission.rubric_id == rubric.id)).first()
    if submission is not None and pushed_by is None:
        busy = session.exec(select(Attempt.id).where(
            Attempt.submission_id == submission.id, Attempt.status.in_((QUEUED, RUNNING)))).first()
        if busy is not None:
            raise SubmissionError("an earlier attempt for this course is still being assessed; "
                                  "wait for it to finish before submitting again", field="source")
    snapshot_rubric(session, rubric=rubric)
    if submission is None:
        submission = Submission(user_id=user.id, rubric_id=rubric.id, course=rubric.course)
        session.add(submission)
        session.flush()
    number = session.exec(select(func.count()).select_from(Attempt).where(
        Attempt.submission_id == submission.id)).one() + 1
    attempt = Attempt(
        submission_id=submission.id, user_id=user.id, number=number, rubric_id=rubric.id,
        rubric_version=rubric.version, rubric_sha256=rubric.sha256, course=rubric.course,
        source_url=url, ref=ref, origin="push" if pushed_by is not None else "form", pushed_by=pushed_by,
    )
    session.add(attempt)
    session.flush()
    how = f"pushed by {pushed_by}: " if pushed_by is not None else ""
    record_event(session, attempt=attempt, kind="submitted", actor=user,
                 detail=how + f"{url}" + (f" at {ref}" if ref else "") + f" against {rubric.id} v{rubric.version}")
    return attempt


def usual_rubric(session: Session, *, user: User, offered: list[str]) -> str | None:
    """The capstone a learner most likely submits: the one they last submitted, else the course their module
    results name (both only when still offered)."""
    from assessor.domain.models import ModuleResult

    last = session.exec(select(Attempt.rubric_id).where(Attempt.user_id == user.id, Attempt.rubric_id.in_(offered))
                        .order_by(Attempt.id.desc())).first()
    if last is not None:
        return last
    return session.exec(select(ModuleResult.course).where(ModuleResult.email == user.email.lower(),
                                                          ModuleResult.course.in_(offered))).first()


def awaiting_review(session: Session, *, user: User, rubric_id: str) -> Attempt | None:
    """The learner's attempt for this rubric that a new submission would replace in the mentor's queue."""
    return session.exec(select(Attempt).where(Attempt.user_id == user.id, Attempt.rubric_id == rubric_id,
                                              Attempt.status == SCORED, Attempt.review_state == OPEN)
                        .order_by(Attempt.id.desc())).first()


def choose_for_review(session: Session, *, attempt: Attempt, user: User) -> Attempt:
    """Send a superseded attempt to review again in place of the one that replaced it (while no mentor has
    started on either); returns the attempt that now leaves the queue."""
    if attempt.review_state != SUPERSEDED or attempt.status != SCORED:
        raise SubmissionError("only an attempt that a newer one replaced can be sent to review instead")
    current = session.exec(select(Attempt).where(Attempt.submission_id == attempt.submission_id,
                                                 Attempt.id != attempt.id, Attempt.review_state == OPEN,
                                                 Attempt.status == SCORED)).first()
    if current is None:
        raise SubmissionError("the newer attempt is already being reviewed (or decided): this one cannot replace it")
    current.review_state, attempt.review_state = SUPERSEDED, OPEN
    session.add_all([current, attempt])
    record_event(session, attempt=attempt, kind="chosen_for_review", actor=user,
                 detail=f"attempt {attempt.number} goes to review; attempt {current.number} leaves the queue")
    record_event(session, attempt=current, kind="superseded", actor=user,
                 detail=f"the learner sent attempt {attempt.number} to review instead")
    return current


def set_job_id(session: Session, *, attempt: Attempt, job_id: str | None) -> None:
    attempt.job_id = job_id
    session.add(attempt)


def fail_unqueued(session: Session, *, attempt: Attempt, reason: str) -> None:
    """The queue refused the job: the attempt ends failed at once instead of waiting forever."""
    finish_failed(session, attempt_id=attempt.id, reason=reason, from_statuses=(QUEUED,))


# ---------------------------------------------------------------------------------------------------------------
# State changes made by the job (conditional, so a reaped attempt is never revived)
# ---------------------------------------------------------------------------------------------------------------

def _running(attempt_id: int, try_number: int | None):
    """The attempt, while running; with `try_number`, only while it is still that try (a worker the reaper gave
    up on and whose attempt was handed to another worker can no longer change it)."""
    conditions = [Attempt.id == attempt_id, Attempt.status == RUNNING]
    if try_number is not None:
        conditions.append(Attempt.tries == try_number)
    return conditions


def mark_running(session: Session, *, attempt_id: int) -> int:
    """Claim a queued attempt for this worker: one conditional UPDATE, so of two workers (or two copies of
    one job) exactly one wins. Returns the try number that was claimed (1, 2, ...), or 0 if not claimed."""
    now = utcnow()
    changed = session.exec(update(Attempt).where(Attempt.id == attempt_id, Attempt.status == QUEUED).values(
        status=RUNNING, started_at=now, heartbeat_at=now, stage=None, stage_message="starting",
        tries=Attempt.tries + 1)).rowcount
    tries = 0
    if changed:
        tries = session.exec(select(Attempt.tries).where(Attempt.id == attempt_id)).one()
        record_event(session, attempt_id=attempt_id, kind="assessment_started", detail=f"try {tries}")
    session.commit()
    return tries


def set_stage(session: Session, *, attempt_id: int, stage: str, message: str, try_number: int | None = None) -> None:
    session.exec(update(Attempt).where(*_running(attempt_id, try_number)).values(
        stage=stage[:16], stage_message=(message or "")[:500], heartbeat_at=utcnow()))
    session.commit()


def heartbeat(session: Session, *, attempt_id: int, try_number: int | None = None) -> None:
    session.exec(update(Attempt).where(*_running(attempt_id, try_number)).values(heartbeat_at=utcnow()))
    session.commit()


def finish_failed(session: Session, *, attempt_id: int, reason: str, from_statuses=(RUNNING,),
                  dead_letter: bool = False, try_number: int | None = None) -> bool:
    """End the attempt failed. `dead_letter`: the failure was the service's (retries used up, workers crashing),
    not the learner's; such attempts are listed for the admins, who can queue them again."""
    lines = (reason or "").strip().splitlines()
    reason = (lines[0] if lines else "the assessment failed")[:1000]
    conditions = [Attempt.id == attempt_id, Attempt.status.in_(from_statuses)]
    if try_number is not None:
        conditions.append(Attempt.tries == try_number)
    changed = session.exec(update(Attempt).where(*conditions).values(
        status=FAILED, failure_reason=reason, finished_at=utcnow(), dead_letter=dead_letter)).rowcount
    if changed:
        record_event(session, attempt_id=attempt_id, kind="assessment_failed", detail=reason)
    session.commit()
    return bool(changed)


def requeue_running(session: Session, *, attempt_id: int, reason: str, try_number: int | None = None,
                    give_back_try: bool = False) -> bool:
    """Hand a running attempt back to the queue (its worker stopped, or a transient error will be retried);
    `give_back_try` when the service, not the attempt, was the problem (out of disk space)."""
    values = dict(status=QUEUED, stage=None, stage_message=reason[:500], heartbeat_at=None)
    if give_back_try:
        values["tries"] = Attempt.tries - 1
    changed = session.exec(update(Attempt).where(*_running(attempt_id, try_number)).values(**values)).rowcount
    if changed:
        record_event(session, attempt_id=attempt_id, kind="assessment_requeued", detail=reason[:1000])
    session.commit()
    return bool(changed)


def requeue_dead_letter(session: Session, *, attempt_id: int, actor: User | None = None) -> bool:
    """An admin queues a dead-lettered attempt again, with a fresh set of tries."""
    changed = session.exec(update(Attempt).where(Attempt.id == attempt_id, Attempt.status == FAILED,
                                                 Attempt.dead_letter == True).values(  # noqa: E712
        status=QUEUED, dead_letter=False, tries=0, failure_reason=None, finished_at=None, stage=None,
        stage_message="queued again by an administrator")).rowcount
    if changed:
        record_event(session, attempt_id=attempt_id, kind="requeued_by_admin", actor=actor)
    session.commit()
    return bool(changed)


def dead_letters(session: Session, *, limit: int = 200) -> list[Attempt]:
    return list(session.exec(select(Attempt).where(Attempt.status == FAILED, Attempt.dead_letter == True)  # noqa: E712
                             .order_by(Attempt.finished_at.desc(), Attempt.id.desc()).limit(limit)))


def finish_scored(session: Session, *, attempt_id: int, stored: StoredReport, reused: bool,
                  try_number: int | None = None) -> bool:
    changed = session.exec(update(Attempt).where(*_running(attempt_id, try_number)).values(
        status=SCORED, stage=None, stage_message=None, commit=stored.commit, report_id=stored.id,
        reused_report=reused, finished_at=utcnow())).rowcount
    if changed:
        detail = f"commit {stored.commit[:12]}: {stored.outcome}, {stored.percent:.1f}% so far"
        if reused:
            detail += f" (report stored {stored.created_at:%Y-%m-%d %H:%M} UTC reused, not assessed again)"
        record_event(session, attempt_id=attempt_id, kind="report_reused" if reused else "assessed", detail=detail)
        attempt = session.get(Attempt, attempt_id, populate_existing=True)
        why_held = _why_held(session, attempt=attempt, outcome=stored.outcome)
        if why_held:
            attempt.review_state = HELD
            session.add(attempt)
            record_event(session, attempt_id=attempt_id, kind="held", detail=why_held)
        else:
            _supersede_older(session, attempt_id=attempt_id)
    session.commit()
    return bool(changed)


def unchanged_since(session: Session, *, attempt: Attempt) -> Attempt | None:
    """The learner's latest decided attempt of this capstone when a mentor asked for changes to this very commit."""
    if not attempt.commit:
        return None
    earlier = session.exec(select(Attempt).where(
        Attempt.submission_id == attempt.submission_id, Attempt.id < attempt.id,
        Attempt.review_state.in_((CHANGES_REQUESTED, APPROVED))).order_by(Attempt.id.desc())).first()
    if earlier is not None and earlier.review_state == CHANGES_REQUESTED and earlier.commit == attempt.commit:
        return earlier
    return None


def _why_held(session: Session, *, attempt: Attempt, outcome: str) -> str | None:
    """Why a scored attempt does not go to a mentor by itself (None: it goes)."""
    unchanged = unchanged_since(session, attempt=attempt)
    if unchanged is not None:
        return (f"the same commit as attempt {unchanged.number}, on which a mentor asked for changes: not sent to "
                f"review again")
    if outcome == "fail":
        return "cannot pass as it stands: sent to a mentor only if the learner asks for feedback"
    return None


def ask_for_feedback(session: Session, *, attempt: Attempt, user: User) -> None:
    """The learner sends a held attempt to the mentor's queue anyway; it replaces one of theirs waiting there."""
    if attempt.user_id != user.id:
        raise SubmissionError("this is not your attempt")
    if attempt.review_state != HELD or attempt.status != SCORED:
        raise SubmissionError("only an attempt that was not sent to review can be sent for feedback")
    attempt.review_state = OPEN
    session.add(attempt)
    record_event(session, attempt=attempt, kind="feedback_asked", actor=user,
                 detail="the learner asked a mentor for feedback on it")
    _supersede_older(session, attempt_id=attempt.id)


def _supersede_older(session: Session, *, attempt_id: int) -> None:
    """Earlier attempts of the same submission still waiting for a mentor leave the queue."""
    attempt = session.get(Attempt, attempt_id)
    older = session.exec(select(Attempt).where(
        Attempt.submission_id == attempt.submission_id, Attempt.id < attempt.id,
        Attempt.status == SCORED, Attempt.review_state == OPEN)).all()
    for previous in older:
        previous.review_state = SUPERSEDED
        session.add(previous)
        record_event(session, attempt_id=previous.id, kind="superseded", detail=f"attempt {attempt.number} was assessed")


# ---------------------------------------------------------------------------------------------------------------
# Stored reports
# ---------------------------------------------------------------------------------------------------------------

def latest_attempt_id(session: Session, *, attempt: Attempt) -> int | None:
    """The newest attempt of the same submission (what replaced a superseded one)."""
    return session.exec(select(Attempt.id).where(Attempt.submission_id == attempt.submission_id)
                        .order_by(Attempt.number.desc(), Attempt.id.desc())).first()


def report_key(commit: str, rubric_id: str, version: str, sha256: str) -> str:
    return f"{commit}:{rubric_id}:{version}:{sha256}"


def find_stored_report(session: Session, *, commit: str, attempt: Attempt) -> StoredReport | None:
    key = report_key(commit, attempt.rubric_id, attempt.rubric_version, attempt.rubric_sha256)
    return session.exec(select(StoredReport).where(StoredReport.key == key)).first()


def store_report(session: Session, *, report: Report) -> tuple[StoredReport, bool]:
    """Store a report under its (commit, rubric) key, or return the one already there. (stored, reused)."""
    key = report_key(report.commit, report.rubric.id, report.rubric.version, report.rubric.sha256)
    existing = session.exec(select(StoredReport).where(StoredReport.key == key)).first()
    if existing is not None:
        return existing, True
    stored = StoredReport(key=key, commit=report.commit, rubric_id=report.rubric.id,
                          rubric_version=report.rubric.version, rubric_sha256=report.rubric.sha256,
                          outcome=report.outcome, percent=report.score.percent, tree=report.tree,
                          document=report_to_json(report))
    session.add(stored)
    session.commit()
    return stored, False


def load_report(session: Session, *, attempt: Attempt) -> Report | None:
    if attempt.report_id is None:
        return None
    stored = session.get(StoredReport, attempt.report_id)
    if stored is None:
        return None
    try:
        return report_from_json(stored.document)
    except ReportError:
        return None


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------

def record_event(session: Session, *, kind: str, attempt: Attempt | None = None, attempt_id: int | None = None,
                 actor: User | None = None, detail: str = "") -> Event:
    event = Event(attempt_id=attempt.id if attempt is not None else attempt_id,
                  actor_id=actor.id if actor is not None else None, kind=kind, detail=detail[:2000])
    session.add(event)
    return event


@dataclass(frozen=True)
class TimelineEntry:
    at: Any
    kind: str
    label: str
    actor: str
    detail: str


def timeline(session: Session, *, attempt: Attempt) -> list[TimelineEntry]:
    rows = session.exec(select(Event, User).join(User, Event.actor_id == User.id, isouter=True)
                        .where(Event.attempt_id == attempt.id).order_by(Event.id)).all()
    return [TimelineEntry(event.created_at, event.kind, EVENT_LABELS.get(event.kind, event.kind),
                          user.display_name if user else "system", event.detail) for event, user in rows]


def attempt_for_owner(session: Session, *, user: User, attempt_id: int) -> Attempt | None:
    """The attempt if `user` submitted it; None otherwise (the web answers 404 either way)."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.user_id != user.id:
        return None
    return attempt


def previous_attempt(session: Session, *, attempt: Attempt) -> Attempt | None:
    """The learner's latest earlier assessed attempt of the same capstone: what this one is compared with."""
    return session.exec(select(Attempt).where(Attempt.submission_id == attempt.submission_id,
                                              Attempt.number < attempt.number, Attempt.status == SCORED,
                                              Attempt.commit.is_not(None))
                        .order_by(Attempt.number.desc()).limit(1)).first()


@dataclass(frozen=True)
class HistoryRow:
    attempt: Attempt
    automated_percent: float | None
    automated_outcome: str | None
    final_percent: float | None      # once a mentor decided
    final_outcome: str | None


def learner_history(session: Session, *, user: User) -> list[HistoryRow]:
    """Every attempt of the learner, newest first, with its automated and (once reviewed) final score."""
    rows = session.exec(
        select(Attempt, StoredReport.percent, StoredReport.outcome, Review.final_percent, Review.final_outcome)
        .join(StoredReport, StoredReport.id == Attempt.report_id, isouter=True)
        .join(Review, Review.attempt_id == Attempt.id, isouter=True)
        .where(Attempt.user_id == user.id).order_by(Attempt.id.desc())).all()
    return [HistoryRow(*row) for row in rows]


def status_payload(attempt: Attempt, stages: tuple[str, ...]) -> dict[str, Any]:
    """What the status page polls: the attempt's status, its stage and how far the stages got."""
    done: list[str] = []
    if attempt.status == SCORED:
        done = list(stages)
    elif attempt.stage in stages:
        done = list(stages[:stages.index(attempt.stage)])

    def state(stage: str) -> str:
        if stage in done:
            return "done"
        if stage == attempt.stage and attempt.status == RUNNING:
            return "current"
        if stage == attempt.stage and attempt.status == FAILED:
            return "failed"
        return "waiting"

    return {
        "id": attempt.id,
        "status": attempt.status,
        "stage": attempt.stage,
        "message": attempt.stage_message,
        "failure_reason": attempt.failure_reason,
        "finished": attempt.finished,
        "stages": [{"name": stage, "state": state(stage)} for stage in stages],
    }
