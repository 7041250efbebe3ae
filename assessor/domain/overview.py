"""The operator's overview: what waits (assessment, review, learners' questions, mail), how long, what failed, and
what was certified; plain queries over a session."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from sqlmodel import Session, func, select

from assessor.domain.db import as_utc, utcnow
from assessor.domain.models import (
    AWAITING_REVIEW, FAILED, HELD, QUEUED, RUNNING, SCORED, Attempt, Certificate, CriterionRequest, OutgoingMail,
    Review,
)

RECENT = timedelta(days=30)


@dataclass(frozen=True)
class Overview:
    queued: int
    running: int
    awaiting_review: int
    oldest_waiting_hours: float | None   # the attempt longest in the review queue
    median_review_hours: float | None    # scored to decided, over the last 30 days
    held: int                            # scored, not sent to review (cannot pass as it stands)
    open_requests: int
    failed_recent: int                   # assessments that could not finish, last 30 days
    dead_letters: int
    certificates: int
    certificates_recent: int
    revoked: int
    mail_waiting: int
    mail_given_up: int


def _hours(later: datetime, earlier: datetime) -> float:
    return (as_utc(later) - as_utc(earlier)).total_seconds() / 3600


def _count(session: Session, model, *conditions) -> int:
    return session.exec(select(func.count()).select_from(model).where(*conditions)).one()


def service_overview(session: Session, *, now: datetime | None = None) -> Overview:
    now = now or utcnow()
    since = now - RECENT
    waiting = (Attempt.status == SCORED, Attempt.review_state.in_(AWAITING_REVIEW))
    oldest = session.exec(select(func.min(Attempt.finished_at)).where(*waiting)).one()
    decided = session.exec(select(Attempt.finished_at, Review.decided_at).join(Review, Review.attempt_id == Attempt.id)
                           .where(Review.decided_at >= since, Attempt.finished_at.is_not(None))
                           .limit(5000)).all()
    return Overview(
        queued=_count(session, Attempt, Attempt.status == QUEUED),
        running=_count(session, Attempt, Attempt.status == RUNNING),
        awaiting_review=_count(session, Attempt, *waiting),
        oldest_waiting_hours=_hours(now, oldest) if oldest else None,
        median_review_hours=median(_hours(done, scored) for scored, done in decided) if decided else None,
        held=_count(session, Attempt, Attempt.status == SCORED, Attempt.review_state == HELD),
        open_requests=_count(session, CriterionRequest, CriterionRequest.answered_at.is_(None)),
        failed_recent=_count(session, Attempt, Attempt.status == FAILED, Attempt.created_at >= since),
        dead_letters=_count(session, Attempt, Attempt.status == FAILED, Attempt.dead_letter == True),  # noqa: E712
        certificates=_count(session, Certificate),
        certificates_recent=_count(session, Certificate, Certificate.issued_at >= since),
        revoked=_count(session, Certificate, Certificate.revoked_at.is_not(None)),
        mail_waiting=_count(session, OutgoingMail, OutgoingMail.sent_at.is_(None), OutgoingMail.gave_up_at.is_(None)),
        mail_given_up=_count(session, OutgoingMail, OutgoingMail.gave_up_at.is_not(None)),
    )
