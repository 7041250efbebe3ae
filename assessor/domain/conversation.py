"""After a decision, a learner asks about a criterion or requests a regrade, and a mentor answers (and may change the
level); plain functions over a session."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, func, select

from assessor.domain import notifications
from assessor.domain.db import utcnow
from assessor.domain.models import (
    APPROVED, CHANGES_REQUESTED, QUESTION, REGRADE, Attempt, Certificate, CriterionRequest, Review, ReviewLevel,
    User,
)
from assessor.engine.report import Report
from assessor.domain.reviews import (
    Page, ReviewError, automated_level, final_score, get_review, mentor_rubric_ids, review_levels, written_text,
)
from assessor.engine.rubric import Rubric
from assessor.domain.submissions import attempt_rubric, record_event

KINDS = {QUESTION: "question", REGRADE: "regrade request"}
MAX_REQUESTS_PER_ATTEMPT = 30


class ConversationError(ReviewError):
    """A request or an answer that cannot be recorded; `errors` names the form fields."""


@dataclass(frozen=True)
class RequestView:
    id: int
    criterion_id: str
    criterion_title: str
    kind: str
    body: str
    author: str
    created_at: datetime
    answered_at: datetime | None
    answer: str | None
    answered_by: str | None
    level_before: int | None
    level_after: int | None

    @property
    def is_open(self) -> bool:
        return self.answered_at is None

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def level_changed(self) -> bool:
        return self.level_after is not None and self.level_after != self.level_before


@dataclass(frozen=True)
class Answered:
    """What answering did: the level moved or not, and the final figures before and after."""

    request: CriterionRequest
    level_changed: bool
    outcome_before: str | None
    outcome_after: str | None
    percent_after: float | None

    @property
    def now_passes(self) -> bool:
        return self.outcome_after == "pass" and self.outcome_before != "pass"


def can_ask(attempt: Attempt, review: Review | None) -> bool:
    """Questions and regrade requests come after a decision (approved or changes requested)."""
    return review is not None and review.decided_at is not None and attempt.review_state in (APPROVED,
                                                                                             CHANGES_REQUESTED)


def open_request(session: Session, *, learner: User, attempt: Attempt, rubric: Rubric, criterion_id: object,
                 kind: object, body: object, base_url: str) -> CriterionRequest:
    """The learner's question or regrade request on one criterion, with their reason; one open per criterion.
    The reviewing mentor is mailed a link to answer it (`base_url`: the service's public address)."""
    if attempt.user_id != learner.id:
        raise ConversationError("this is not your attempt")
    review = get_review(session, attempt=attempt)
    if not can_ask(attempt, review):
        raise ConversationError("you can ask about a criterion once a mentor has decided on this attempt")
    errors: dict[str, str] = {}
    criteria = {criterion.id: criterion for criterion in rubric.criteria}
    if criterion_id not in criteria:
        errors["criterion"] = "choose one of the rubric's criteria"
    if kind not in KINDS:
        errors["kind"] = "choose a question or a regrade request"
    text, problem = written_text(body, missing="say what you want to know, or why the level should change")
    if problem:
        errors["body"] = problem
    if errors:
        raise ConversationError("your request was not sent", errors)
    if session.exec(select(CriterionRequest.id).where(
            CriterionRequest.attempt_id == attempt.id, CriterionRequest.criterion_id == criterion_id,
            CriterionRequest.answered_at.is_(None))).first() is not None:
        raise ConversationError("your request was not sent", {
            "criterion": f"you already asked about {criteria[criterion_id].title}: wait for the mentor's answer"})
    asked = session.exec(select(func.count()).select_from(CriterionRequest)
                         .where(CriterionRequest.attempt_id == attempt.id)).one()
    if asked >= MAX_REQUESTS_PER_ATTEMPT:
        raise ConversationError(f"an attempt takes at most {MAX_REQUESTS_PER_ATTEMPT} requests; write to your "
                                f"course team")
    request = CriterionRequest(attempt_id=attempt.id, criterion_id=criterion_id, kind=kind, author_id=learner.id,
                               body=text)
    session.add(request)
    record_event(session, attempt=attempt, actor=learner, kind="regrade_requested" if kind == REGRADE else "question",
                 detail=f"{criterion_id}: {text}")
    mentor = session.get(User, review.mentor_id)
    if mentor is not None:
        notifications.request_opened(session, mentor=mentor, attempt=attempt, regrade=kind == REGRADE,
                                     criterion_title=criteria[criterion_id].title, text=text, base_url=base_url)
    session.commit()
    return request


def requests_for(session: Session, *, attempt: Attempt, rubric: Rubric) -> list[RequestView]:
    titles = {criterion.id: criterion.title for criterion in rubric.criteria}
    rows = session.exec(select(CriterionRequest).where(CriterionRequest.attempt_id == attempt.id)
                        .order_by(CriterionRequest.id)).all()
    names = _names(session, {row.author_id for row in rows} | {row.answered_by for row in rows if row.answered_by})
    return [RequestView(row.id, row.criterion_id, titles.get(row.criterion_id, row.criterion_id), row.kind, row.body,
                        names.get(row.author_id, ""), row.created_at, row.answered_at, row.answer,
                        names.get(row.answered_by) if row.answered_by else None, row.level_before, row.level_after)
            for row in rows]


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {user.id: user.display_name for user in session.exec(select(User).where(User.id.in_(ids)))}


def answer_request(session: Session, *, mentor: User, attempt: Attempt, rubric: Rubric, report: Report,
                   request_id: int, answer: object, base_url: str, level: object = None) -> Answered:
    """The mentor's answer; for a regrade request (or a question that shows a level was wrong) `level` changes the
    criterion's level, the final score is computed again and everything is kept on the timeline. A level that
    would fail an attempt whose certificate stands is refused: the certificate is revoked first. The learner is
    mailed a link to the answer."""
    request = session.get(CriterionRequest, request_id)
    if request is None or request.attempt_id != attempt.id:
        raise ConversationError("no such request on this attempt")
    if request.answered_at is not None:
        raise ConversationError("this request is already answered")
    if attempt.user_id == mentor.id:
        raise ConversationError("you cannot answer requests on your own submission")
    review = get_review(session, attempt=attempt)
    if not can_ask(attempt, review):
        raise ConversationError("the review of this attempt is not decided")
    criterion = rubric.criterion(request.criterion_id)
    errors: dict[str, str] = {}
    text, problem = written_text(answer, missing="write your answer to the learner")
    if problem:
        errors["answer"] = problem
    new_level = None
    if level not in (None, ""):
        try:
            new_level = int(str(level))
            criterion.level(new_level)
        except (ValueError, KeyError):
            errors["level"] = "choose one of the criterion's levels"
    if errors:
        raise ConversationError("your answer was not saved", errors)
    levels = review_levels(session, review=review)
    row = levels.get(criterion.id) or ReviewLevel(review_id=review.id, criterion_id=criterion.id)
    before_level = row.level
    if before_level is None and criterion.automated:
        before_level = automated_level(report, criterion.id)
    outcome_before, changed = review.final_outcome, new_level is not None and new_level != before_level
    if changed:
        if row.automated_level is None and criterion.automated:
            row.automated_level = automated_level(report, criterion.id)
        row.level, row.updated_at = new_level, utcnow()
        row.override_reason = text if criterion.automated and new_level != row.automated_level else None
        session.add(row)
        session.flush()
        result = final_score(rubric, report, review_levels(session, review=review))
        if outcome_before == "pass" and result.outcome != "pass" and _has_standing_certificate(session, attempt):
            session.rollback()
            raise ConversationError("your answer was not saved", {
                "level": "this level would fail an attempt whose certificate stands: revoke the certificate first"})
        review.final_percent, review.final_outcome = result.score.percent, result.outcome
        session.add(review)
    request.answered_at, request.answered_by, request.answer = utcnow(), mentor.id, text
    request.level_before, request.level_after = before_level, new_level if changed else None
    session.add(request)
    detail = f"{criterion.id}: " + (f"level {before_level} -> level {new_level}: " if changed else "") + text
    record_event(session, attempt=attempt, actor=mentor, kind="regraded" if changed else "answered", detail=detail)
    learner = session.get(User, attempt.user_id)
    if learner is not None:
        notifications.request_answered(session, learner=learner, attempt=attempt, level_changed=changed,
                                       criterion_title=criterion.title, text=text, base_url=base_url)
    session.commit()
    return Answered(request, changed, outcome_before, review.final_outcome, review.final_percent)


def _has_standing_certificate(session: Session, attempt: Attempt) -> bool:
    return session.exec(select(Certificate.id).where(Certificate.attempt_id == attempt.id,
                                                     Certificate.revoked_at.is_(None))).first() is not None


@dataclass(frozen=True)
class OpenRequestRow:
    request: CriterionRequest
    attempt: Attempt
    learner: str
    criterion_title: str


def open_requests(session: Session, *, mentor: User, page: int = 1, per_page: int = 25) -> Page:
    """Unanswered requests in the mentor's courses, oldest first, never on the mentor's own attempts."""
    courses = mentor_rubric_ids(session, mentor=mentor)
    conditions = [CriterionRequest.answered_at.is_(None), Attempt.user_id != mentor.id]
    if courses is not None:
        conditions.append(Attempt.rubric_id.in_(courses))
    page = max(1, page)
    total = session.exec(select(func.count()).select_from(CriterionRequest)
                         .join(Attempt, Attempt.id == CriterionRequest.attempt_id).where(*conditions)).one()
    rows = session.exec(select(CriterionRequest, Attempt, User)
                        .join(Attempt, Attempt.id == CriterionRequest.attempt_id)
                        .join(User, User.id == Attempt.user_id).where(*conditions)
                        .order_by(CriterionRequest.id).limit(per_page).offset((page - 1) * per_page)).all()
    titles: dict[str, dict[str, str]] = {}
    items = []
    for request, attempt, learner in rows:
        key = attempt.rubric_sha256
        if key not in titles:
            titles[key] = {criterion.id: criterion.title
                           for criterion in attempt_rubric(session, attempt=attempt).criteria}
        items.append(OpenRequestRow(request, attempt, learner.display_name,
                                    titles[key].get(request.criterion_id, request.criterion_id)))
    return Page(items, page, per_page, total)
