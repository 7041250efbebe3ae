"""Integrity evidence before a certificate: the same work (commit or git tree) submitted by another learner."""

from dataclasses import dataclass

from sqlmodel import Session, func, or_, select

from assessor.models import SCORED, Attempt, CourseAssignment, Review, StoredReport, User

MAX_MATCHES = 20


@dataclass(frozen=True)
class SameWork:
    """Another learner's attempt with the same commit, or with the same files under another commit."""

    attempt_id: int
    number: int
    rubric_id: str
    course: str
    learner_id: int
    learner_name: str | None   # None when the viewer may not see who it is
    match: str                 # "commit" or "tree"
    submitted_at: object
    viewable: bool             # the viewer may open that attempt


def tree_of(session: Session, *, attempt: Attempt) -> str | None:
    if attempt.report_id is None:
        return None
    return session.exec(select(StoredReport.tree).where(StoredReport.id == attempt.report_id)).first()


def _same_work_of(session: Session, attempt: Attempt, *columns):
    """Other learners' scored attempts with this attempt's commit or tree, oldest first."""
    tree = tree_of(session, attempt=attempt)
    matches = [Attempt.commit == attempt.commit] + ([StoredReport.tree == tree] if tree else [])
    return (select(*columns).select_from(Attempt)
            .join(StoredReport, StoredReport.id == Attempt.report_id, isouter=True)
            .where(Attempt.user_id != attempt.user_id, Attempt.status == SCORED, or_(*matches))
            .order_by(Attempt.id))


def same_work(session: Session, *, attempt: Attempt, viewer: User) -> list[SameWork]:
    """Every other learner's scored attempt of this commit or tree, oldest first. The link and the name are given
    only to admins and to mentors assigned to that attempt's course."""
    if not attempt.commit:
        return []
    rows = session.exec(_same_work_of(session, attempt, Attempt, User)
                        .join(User, User.id == Attempt.user_id).limit(MAX_MATCHES)).all()
    if viewer.role == "admin":
        allowed = None
    else:
        allowed = set(session.exec(select(CourseAssignment.rubric_id).where(CourseAssignment.user_id == viewer.id)))
    found = []
    for other, learner in rows:
        visible = allowed is None or other.rubric_id in allowed
        found.append(SameWork(other.id, other.number, other.rubric_id, other.course, learner.id,
                              learner.display_name if visible else None,
                              "commit" if other.commit == attempt.commit else "tree", other.created_at, visible))
    return found


def flagged(session: Session, *, attempt: Attempt) -> bool:
    """Whether anything would be flagged, whoever looks."""
    if not attempt.commit:
        return False
    return session.exec(_same_work_of(session, attempt, Attempt.id).limit(1)).first() is not None


@dataclass(frozen=True)
class FlaggedAttempt:
    attempt: Attempt
    learner: User
    acknowledged: bool


def flagged_attempts(session: Session, *, rubric_id: str | None = None, limit: int = 200) -> list[FlaggedAttempt]:
    """Scored attempts whose commit or tree another learner also submitted, newest first (for the operator)."""
    def shared(column):
        return (select(column).select_from(Attempt)
                .join(StoredReport, StoredReport.id == Attempt.report_id, isouter=True)
                .where(Attempt.status == SCORED, column.is_not(None)).group_by(column)
                .having(func.count(func.distinct(Attempt.user_id)) > 1))

    conditions = [Attempt.status == SCORED,
                  or_(Attempt.commit.in_(shared(Attempt.commit)), StoredReport.tree.in_(shared(StoredReport.tree)))]
    if rubric_id:
        conditions.append(Attempt.rubric_id == rubric_id)
    rows = session.exec(
        select(Attempt, User, Review.integrity_acknowledged_at)
        .join(User, User.id == Attempt.user_id)
        .join(StoredReport, StoredReport.id == Attempt.report_id, isouter=True)
        .join(Review, Review.attempt_id == Attempt.id, isouter=True)
        .where(*conditions).order_by(Attempt.id.desc()).limit(limit)).all()
    return [FlaggedAttempt(attempt, learner, acknowledged is not None) for attempt, learner, acknowledged in rows]
