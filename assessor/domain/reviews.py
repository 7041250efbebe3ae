"""Self-assessment, mentor review, the final score and calibration. No web: plain functions over a session."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, or_, select

from assessor.domain import integrity
from assessor.domain.db import utcnow
from assessor.errors import AssessorError
from assessor.domain.models import (
    APPROVED, AWAITING_REVIEW, CHANGES_REQUESTED, FAILED, HELD, IN_REVIEW, OPEN, SCORED, Attempt, CourseAssignment,
    Review, ReviewLevel, SelfAssessment, StoredReport, User,
)
from assessor.engine.report import Report
from assessor.engine.rubric import Rubric
from assessor.engine.scoring import CriterionScore, GateResult, Score, decide, score_given, score_pending
from assessor.domain.submissions import attempt_rubric, load_report, previous_attempt, record_event

MAX_TEXT = 4000
DECISIONS = (APPROVED, CHANGES_REQUESTED)


class ReviewError(AssessorError):
    """One or more problems with a self-assessment or review; `errors` maps a form field to its message."""

    def __init__(self, message: str, errors: Mapping[str, str] | None = None):
        super().__init__(message)
        self.errors = dict(errors or {})


def too_long(text: str, limit: int = MAX_TEXT) -> str | None:
    """What is wrong with a typed text past the limit (None when it fits)."""
    return f"keep it under {limit:,} characters (it has {len(text):,})" if len(text) > limit else None


def written_text(value: object, *, missing: str, limit: int = MAX_TEXT) -> tuple[str, str | None]:
    """A text someone must write, as kept (stripped), and what is wrong with it: `missing` when there is none,
    or its length (None when nothing is)."""
    text = value.strip() if isinstance(value, str) else ""
    return text, (too_long(text, limit) if text else missing)


def automated_level(report: Report, criterion_id: str) -> int | None:
    """The level the report measured for a criterion (None when it has none)."""
    try:
        return report.criterion(criterion_id).level
    except KeyError:
        return None


# ---------------------------------------------------------------------------------------------------------------
# Self-assessment
# ---------------------------------------------------------------------------------------------------------------

def can_self_assess(attempt: Attempt) -> bool:
    """Editable until a mentor starts reviewing (and never on a failed attempt)."""
    return attempt.status != FAILED and attempt.review_state in (OPEN, HELD)


def self_assessments(session: Session, *, attempt: Attempt, drafts: bool = False) -> dict[str, SelfAssessment]:
    """The learner's answers once submitted (a mentor never sees a draft); with `drafts`, whatever is saved."""
    if attempt.self_assessed_at is None and not drafts:
        return {}
    rows = session.exec(select(SelfAssessment).where(SelfAssessment.attempt_id == attempt.id))
    return {row.criterion_id: row for row in rows if drafts or row.level is not None}


def _level_number(criterion, value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("choose one of the levels") from None
    if number not in [level.level for level in criterion.levels]:
        raise ValueError("choose one of the levels")
    return number


def save_self_assessment(session: Session, *, user: User, attempt: Attempt, rubric: Rubric,
                         entries: Mapping[str, tuple[Any, str]], draft: bool = False) -> None:
    """entries: criterion id -> (level, justification). Submitting needs a level and a reason on every criterion a
    mentor judges; automated ones are optional (the measurement speaks for them). A draft keeps whatever is there
    and is not sent to the mentor; once submitted, changes are submitted too."""
    if attempt.user_id != user.id:
        raise ReviewError("this is not your attempt")
    if not can_self_assess(attempt):
        raise ReviewError("a mentor has started reviewing this attempt, so the self-assessment can no longer change"
                          if attempt.status != FAILED else "a failed attempt cannot be self-assessed")
    draft = draft and attempt.self_assessed_at is None
    errors: dict[str, str] = {}
    cleaned: dict[str, tuple[int | None, str]] = {}
    for criterion in rubric.criteria:
        level_value, text = entries.get(criterion.id, (None, ""))
        text = (text or "").strip()
        try:
            level = _level_number(criterion, level_value)
        except ValueError as error:
            errors[f"level-{criterion.id}"] = str(error)
            continue
        required = not draft and not criterion.automated
        if level is None and required:
            errors[f"level-{criterion.id}"] = "choose the level you think you reached"
        if too_long(text):
            errors[f"justification-{criterion.id}"] = too_long(text)
        elif not text and (required or (level is not None and not draft)):
            errors[f"justification-{criterion.id}"] = "say briefly why (what in your work shows it)"
        if not text and level is None:
            continue
        if not draft and level is None:  # a reason without a level on an optional criterion: kept as said
            errors.setdefault(f"level-{criterion.id}", "choose a level for this reason, or clear the reason")
        cleaned[criterion.id] = (level, text)
    if errors:
        raise ReviewError("some answers need attention", errors)
    existing = self_assessments(session, attempt=attempt, drafts=True)
    now = utcnow()
    for criterion_id, (level, text) in cleaned.items():
        row = existing.get(criterion_id) or SelfAssessment(attempt_id=attempt.id, criterion_id=criterion_id)
        row.level, row.justification, row.updated_at = level, text, now
        session.add(row)
    for criterion_id, row in existing.items():
        if criterion_id not in cleaned:
            session.delete(row)
    if not draft:
        resubmitted = attempt.self_assessed_at is not None
        attempt.self_assessed_at = now
        session.add(attempt)
        summary = ", ".join(f"{cid} {level}" for cid, (level, _) in cleaned.items())
        record_event(session, attempt=attempt, kind="self_assessed", actor=user,
                     detail=("updated: " if resubmitted else "") + summary)
    session.commit()


def carried_over_answers(session: Session, *, attempt: Attempt) -> tuple[Attempt | None, dict[str, tuple[int | None, str]]]:
    """For a new attempt with nothing saved yet: the previous attempt's answers, to start from."""
    if session.exec(select(SelfAssessment.id).where(SelfAssessment.attempt_id == attempt.id).limit(1)).first():
        return None, {}
    previous = previous_attempt(session, attempt=attempt)
    if previous is None:
        return None, {}
    answers = self_assessments(session, attempt=previous, drafts=True)
    return (previous, {cid: (row.level, row.justification) for cid, row in answers.items()}) if answers else (None, {})


# ---------------------------------------------------------------------------------------------------------------
# Who may review what
# ---------------------------------------------------------------------------------------------------------------

def mentor_rubric_ids(session: Session, *, mentor: User) -> list[str] | None:
    """The rubric ids a mentor is assigned to; None for an admin (every course); [] for anyone else."""
    if mentor.role == "admin":
        return None
    if mentor.role != "mentor":
        return []
    return sorted(session.exec(select(CourseAssignment.rubric_id).where(CourseAssignment.user_id == mentor.id)))


def attempt_for_mentor(session: Session, *, mentor: User, attempt_id: int) -> Attempt | None:
    """A scored attempt in one of the mentor's courses that is not their own; None otherwise (404)."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.user_id == mentor.id or attempt.status != SCORED:
        return None
    courses = mentor_rubric_ids(session, mentor=mentor)
    if courses is not None and attempt.rubric_id not in courses:
        return None
    return attempt


def learner_for_mentor(session: Session, *, mentor: User, learner_id: int) -> User | None:
    """A learner the mentor may see: someone with a scored attempt in one of the mentor's courses."""
    learner = session.get(User, learner_id)
    if learner is None or learner.id == mentor.id:
        return None
    courses = mentor_rubric_ids(session, mentor=mentor)
    query = select(Attempt.id).where(Attempt.user_id == learner.id, Attempt.status == SCORED)
    if courses is not None:
        query = query.where(Attempt.rubric_id.in_(courses))
    return learner if session.exec(query.limit(1)).first() is not None else None


# ---------------------------------------------------------------------------------------------------------------
# The dashboard
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class QueueRow:
    attempt: Attempt
    learner_email: str
    learner_name: str
    self_assessed: bool
    reviewer_id: int | None
    automated_percent: float | None = None
    automated_outcome: str | None = None
    failed_gates: tuple[str, ...] = ()   # each failed gate as the report words it
    same_work: bool = False               # another learner submitted the same commit or files
    near_copy_percent: float | None = None  # the highest share of a near copy it is part of
    acknowledged: bool = False            # the reviewing mentor has given a reason to go on

    @property
    def flagged(self) -> bool:
        return self.same_work or self.near_copy_percent is not None


def _failed_gates(document: str | None) -> tuple[str, ...]:
    try:
        gates = json.loads(document or "{}").get("gates") or []
    except ValueError:
        return ()
    return tuple(gate.get("description") or gate.get("criterion") or "" for gate in gates
                 if isinstance(gate, dict) and gate.get("status") == "failed")


def _queue_conditions(session: Session, *, mentor: User, rubric_id: str | None, state: str | None) -> list:
    courses = mentor_rubric_ids(session, mentor=mentor)
    states = (state,) if state in AWAITING_REVIEW else AWAITING_REVIEW
    conditions = [Attempt.status == SCORED, Attempt.review_state.in_(states), Attempt.user_id != mentor.id]
    if courses is not None:
        conditions.append(Attempt.rubric_id.in_(courses))
    if rubric_id:
        conditions.append(Attempt.rubric_id == rubric_id)
    return conditions


def review_queue(session: Session, *, mentor: User, rubric_id: str | None = None, state: str | None = None,
                 flagged: bool | None = None, page: int = 1, per_page: int = 25) -> Page:
    """Scored attempts awaiting review in the mentor's courses, oldest first, never the mentor's own, with their
    integrity flags (`flagged` True or False keeps only flagged or unflagged ones).
    Served by the (status, review_state, rubric_id, id) index; LIMIT/OFFSET pages."""
    conditions = _queue_conditions(session, mentor=mentor, rubric_id=rubric_id, state=state)
    if flagged is not None:  # the filter needs the flags over every attempt; a plain page only for its rows
        every = integrity.flag_columns(session).any
        conditions.append(every if flagged else ~every)
    page = max(1, page)
    total = session.exec(select(func.count()).select_from(Attempt)
                         .join(StoredReport, StoredReport.id == Attempt.report_id, isouter=True)
                         .where(*conditions)).one()
    rows = session.exec(
        select(Attempt, User.email, User.name, Attempt.self_assessed_at.is_not(None), Review.mentor_id,
               StoredReport.percent, StoredReport.outcome, StoredReport.document, Review.integrity_acknowledged_at)
        .join(User, User.id == Attempt.user_id)
        .join(Review, Review.attempt_id == Attempt.id, isouter=True)
        .join(StoredReport, StoredReport.id == Attempt.report_id, isouter=True)
        .where(*conditions).order_by(Attempt.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    flags = integrity.flags_for(session, attempts=[row[0] for row in rows])
    items = []
    for attempt, email, name, assessed, reviewer, percent, outcome, document, acknowledged in rows:
        flag = flags.get(attempt.id) or integrity.AttemptFlags()
        items.append(QueueRow(attempt, email, name, bool(assessed), reviewer, percent, outcome, _failed_gates(document),
                              flag.same_work, flag.near_copy_percent, acknowledged is not None))
    return Page(items, page, per_page, total)


def comment_bank(session: Session, *, mentor: User, rubric_id: str, per_criterion: int = 5) -> dict[str, list[str]]:
    """The comments this mentor wrote most often on each criterion of this capstone, to reuse with one click."""
    rows = session.exec(
        select(ReviewLevel.criterion_id, ReviewLevel.comment, func.count().label("uses"))
        .join(Review, Review.id == ReviewLevel.review_id).join(Attempt, Attempt.id == Review.attempt_id)
        .where(Review.mentor_id == mentor.id, Attempt.rubric_id == rubric_id, ReviewLevel.comment != "")
        .group_by(ReviewLevel.criterion_id, ReviewLevel.comment)
        .order_by(ReviewLevel.criterion_id, func.count().desc(), ReviewLevel.comment)).all()
    bank: dict[str, list[str]] = {}
    for criterion_id, comment, _uses in rows:
        kept = bank.setdefault(criterion_id, [])
        if len(kept) < per_criterion:
            kept.append(comment)
    return bank


def next_ungraded(session: Session, *, mentor: User, after: Attempt | None = None,
                  rubric_id: str | None = None) -> Attempt | None:
    """The oldest attempt in the mentor's queue that nobody else is reviewing and that is not `after`: where
    "Save and next ungraded" goes."""
    conditions = _queue_conditions(session, mentor=mentor, rubric_id=rubric_id, state=None)
    conditions.append(or_(Review.mentor_id.is_(None), Review.mentor_id == mentor.id))
    conditions.append(or_(Review.decided_at.is_(None), Review.id.is_(None)))
    if after is not None:
        conditions.append(Attempt.id != after.id)
    return session.exec(select(Attempt).join(Review, Review.attempt_id == Attempt.id, isouter=True)
                        .where(*conditions).order_by(Attempt.id).limit(1)).first()


@dataclass(frozen=True)
class ReviewedRow:
    review: Review
    attempt: Attempt
    learner_email: str


def reviewed_by(session: Session, *, mentor: User, page: int = 1, per_page: int = 25) -> Page:
    """What the mentor reviewed before, most recent decision first."""
    page = max(1, page)
    conditions = [Review.mentor_id == mentor.id, Review.decided_at.is_not(None)]
    total = session.exec(select(func.count()).select_from(Review).where(*conditions)).one()
    rows = session.exec(
        select(Review, Attempt, User.email).join(Attempt, Attempt.id == Review.attempt_id)
        .join(User, User.id == Attempt.user_id).where(*conditions)
        .order_by(Review.decided_at.desc(), Review.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page([ReviewedRow(review, attempt, email) for review, attempt, email in rows], page, per_page, total)


# ---------------------------------------------------------------------------------------------------------------
# Reviewing
# ---------------------------------------------------------------------------------------------------------------

def get_review(session: Session, *, attempt: Attempt) -> Review | None:
    return session.exec(select(Review).where(Review.attempt_id == attempt.id)).first()


def review_levels(session: Session, *, review: Review | None) -> dict[str, ReviewLevel]:
    if review is None:
        return {}
    return {row.criterion_id: row for row in session.exec(select(ReviewLevel).where(ReviewLevel.review_id == review.id))}


def start_review(session: Session, *, mentor: User, attempt: Attempt) -> Review:
    """The mentor takes the attempt; from now on the learner's self-assessment is locked."""
    if attempt.user_id == mentor.id:
        raise ReviewError("you cannot review your own submission")
    review = get_review(session, attempt=attempt)
    if review is not None:
        if review.mentor_id != mentor.id:
            raise ReviewError("another mentor is already reviewing this attempt")
        return review
    if attempt.review_state != OPEN:
        raise ReviewError("this attempt is not waiting for a review")
    review = Review(attempt_id=attempt.id, mentor_id=mentor.id)
    attempt.review_state = IN_REVIEW
    session.add_all([review, attempt])
    session.flush()
    record_event(session, attempt=attempt, kind="review_started", actor=mentor)
    session.commit()
    return review


@dataclass(frozen=True)
class FinalScore:
    criteria: tuple[CriterionScore, ...]
    gates: tuple[GateResult, ...]
    score: Score

    @property
    def outcome(self) -> str:
        return self.score.outcome

    def criterion(self, criterion_id: str) -> CriterionScore:
        return next(score for score in self.criteria if score.id == criterion_id)


def final_score(rubric: Rubric, report: Report, levels: Mapping[str, ReviewLevel]) -> FinalScore:
    """Rubric weights over the automated levels (or the mentor's override) and the mentor's manual levels;
    pass = pass mark and all gates, decided by the engine's own scoring."""
    scores: list[CriterionScore] = []
    for criterion in rubric.criteria:
        try:
            automated = report.criterion(criterion.id)
        except KeyError:
            automated = score_pending(criterion)
        given = levels.get(criterion.id)
        if criterion.automated:
            if given is not None and given.level is not None and given.level != automated.level:
                was = "not measured" if automated.level is None else f"level {automated.level}"
                scores.append(score_given(criterion, given.level, assessed_by="mentor", evidence=(
                    f"mentor override of the automated result ({was}): {given.override_reason or ''}".strip(),
                    *automated.evidence)))
            else:
                scores.append(automated)
        elif given is not None and given.level is not None:
            scores.append(score_given(criterion, given.level, assessed_by="mentor",
                                      evidence=(given.comment,) if given.comment else ()))
        else:
            scores.append(score_pending(criterion))
    gates, score = decide(rubric, scores)
    return FinalScore(tuple(scores), tuple(gates), score)


def _acknowledge(session: Session, *, review: Review, attempt: Attempt, mentor: User, text: str) -> None:
    review.integrity_acknowledged_at, review.integrity_reason = utcnow(), text
    session.add(review)
    record_event(session, attempt=attempt, kind="integrity_acknowledged", actor=mentor, detail=text)


def preview_score(rubric: Rubric, report: Report, chosen: Mapping[str, Any]) -> FinalScore:
    """The final score the chosen levels (criterion id → level as typed) would give, for the decision bar; a level
    that is not one of the criterion's counts as not set."""
    levels = {}
    for criterion in rubric.criteria:
        try:
            level = _level_number(criterion, chosen.get(criterion.id))
        except ValueError:
            level = None
        levels[criterion.id] = ReviewLevel(criterion_id=criterion.id, level=level)
    return final_score(rubric, report, levels)


def previous_review(session: Session, *, attempt: Attempt) -> tuple[Attempt | None, dict[str, ReviewLevel], str]:
    """The learner's previous assessed attempt of this capstone, and its decided review's levels and overall
    comment (empty while that attempt is not decided)."""
    previous = previous_attempt(session, attempt=attempt)
    if previous is None:
        return None, {}, ""
    review = get_review(session, attempt=previous)
    if review is None or review.decided_at is None:
        return previous, {}, ""
    return previous, review_levels(session, review=review), review.comment


def save_review(session: Session, *, mentor: User, attempt: Attempt, rubric: Rubric, report: Report,
                entries: Mapping[str, tuple[Any, str, str]], comment: str, decision: str | None,
                integrity_reason: str | None = None, acknowledge: bool = False) -> Review:
    """entries: criterion id -> (level, comment, override reason). decision None saves a draft;
    `approved` needs a level on every manual criterion; `changes_requested` needs a comment for the learner.
    A reason typed for a flagged attempt's integrity acknowledgement is recorded with everything else (required
    when `acknowledge`); nothing is saved unless all of it can be."""
    if attempt.user_id == mentor.id:
        raise ReviewError("you cannot review your own submission")
    if decision is not None and decision not in DECISIONS:
        raise ReviewError("unknown decision")
    review = get_review(session, attempt=attempt)
    if review is not None and review.decided_at is not None:
        raise ReviewError("this review is finished and can no longer change")
    if review is None:
        review = start_review(session, mentor=mentor, attempt=attempt)
    elif review.mentor_id != mentor.id:
        raise ReviewError("another mentor is reviewing this attempt")
    comment = (comment or "").strip()
    errors: dict[str, str] = {}
    if too_long(comment):
        errors["comment"] = too_long(comment)
    cleaned: dict[str, tuple[int | None, int | None, str, str | None]] = {}
    for criterion in rubric.criteria:
        level_value, text, reason = entries.get(criterion.id, (None, "", ""))
        text, reason = (text or "").strip(), (reason or "").strip()
        try:
            level = _level_number(criterion, level_value)
        except ValueError as error:
            errors[f"level-{criterion.id}"] = str(error)
            continue
        for name, typed in ((f"comment-{criterion.id}", text), (f"reason-{criterion.id}", reason)):
            if too_long(typed):
                errors[name] = too_long(typed)
        measured = automated_level(report, criterion.id) if criterion.automated else None
        if criterion.automated:
            if level is not None and level != measured and not reason:
                errors[f"reason-{criterion.id}"] = "an override needs a written reason"
        elif level is None and decision == APPROVED:
            errors[f"level-{criterion.id}"] = "set a level before approving"
        cleaned[criterion.id] = (measured, level, text, reason or None)
    if decision == CHANGES_REQUESTED and not comment:
        errors["comment"] = "tell the learner what to change"
    acknowledging = None
    if review.integrity_acknowledged_at is None and (acknowledge or (integrity_reason or "").strip()):
        acknowledging, problem = written_text(integrity_reason,
                                              missing="say why you go on (what you checked, what you found)")
        if problem:
            errors["integrity_reason"] = problem
    if (decision == APPROVED and review.integrity_acknowledged_at is None and acknowledging is None
            and "integrity_reason" not in errors and integrity.flagged(session, attempt=attempt)):
        errors["integrity"] = ("this attempt is flagged (the same work or a near copy of another learner's): "
                               "give your reason for going on before approving")
    if errors:
        raise ReviewError("some answers need attention", errors)
    if acknowledging:
        _acknowledge(session, review=review, attempt=attempt, mentor=mentor, text=acknowledging)

    existing = review_levels(session, review=review)
    now = utcnow()
    changed = []
    for criterion_id, (measured, level, text, reason) in cleaned.items():
        row = existing.get(criterion_id)
        if row is None:
            row = ReviewLevel(review_id=review.id, criterion_id=criterion_id)
        before = (row.level, row.override_reason)
        row.automated_level, row.comment, row.updated_at = measured, text, now
        is_override = level is not None and level != measured and rubric.criterion(criterion_id).automated
        row.level = level
        row.override_reason = reason if is_override else None
        session.add(row)
        if is_override and before != (level, row.override_reason):
            was = "not measured" if measured is None else f"level {measured}"
            record_event(session, attempt=attempt, kind="overridden", actor=mentor,
                         detail=f"{criterion_id}: {was} -> level {level} (both kept): {reason}")
        if level is not None and before[0] != level:
            changed.append(f"{criterion_id} {level}")
    review.comment = comment
    session.add(review)
    record_event(session, attempt=attempt, kind="reviewed", actor=mentor,
                 detail=("levels " + ", ".join(changed)) if changed else "comments saved")
    if decision is not None:
        session.flush()
        result = final_score(rubric, report, review_levels(session, review=review))
        review.decision, review.decided_at = decision, now
        review.final_percent, review.final_outcome = result.score.percent, result.outcome
        attempt.review_state = decision
        session.add_all([review, attempt])
        record_event(session, attempt=attempt, kind=decision, actor=mentor,
                     detail=f"final {result.score.percent:.1f}%, {result.outcome}" + (f": {comment}" if comment else ""))
    session.commit()
    return review


# ---------------------------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationRow:
    criterion_id: str
    title: str
    self_level: int | None
    final_level: int | None
    max_level: int

    @property
    def difference(self) -> int | None:
        if self.self_level is None or self.final_level is None:
            return None
        return self.self_level - self.final_level


@dataclass
class CalibrationSummary:
    compared: int = 0
    exact: int = 0
    over: int = 0
    under: int = 0
    total_difference: int = 0
    total_absolute: int = 0
    attempts: list = field(default_factory=list)

    def add(self, rows: Sequence[CalibrationRow]) -> None:
        for row in rows:
            if row.difference is None:
                continue
            self.compared += 1
            self.exact += row.difference == 0
            self.over += row.difference > 0
            self.under += row.difference < 0
            self.total_difference += row.difference
            self.total_absolute += abs(row.difference)

    @property
    def exact_percent(self) -> float | None:
        return 100 * self.exact / self.compared if self.compared else None

    @property
    def mean_difference(self) -> float | None:
        return self.total_difference / self.compared if self.compared else None

    @property
    def mean_absolute(self) -> float | None:
        return self.total_absolute / self.compared if self.compared else None

    @property
    def tendency(self) -> str:
        mean = self.mean_difference
        if mean is None:
            return "nothing to compare yet"
        if abs(mean) < 0.25:
            return "well calibrated"
        return "tends to rate themselves higher than the mentor" if mean > 0 else \
            "tends to rate themselves lower than the mentor"


def calibration_rows(rubric: Rubric, selves: Mapping[str, SelfAssessment], result: FinalScore) -> list[CalibrationRow]:
    rows = []
    for criterion in rubric.criteria:
        own = selves.get(criterion.id)
        rows.append(CalibrationRow(criterion.id, criterion.title, own.level if own else None,
                                   result.criterion(criterion.id).level, criterion.levels[-1].level))
    return rows


@dataclass(frozen=True)
class AttemptCalibration:
    attempt: Attempt
    rows: list[CalibrationRow]


@dataclass(frozen=True)
class CohortRow:
    criterion_id: str
    title: str
    top_level: int
    compared: int             # decided attempts with both a self level and a final level
    mean_self: float | None
    mean_final: float | None
    over: int                 # learners who rated themselves higher than the final level
    under: int

    @property
    def mean_difference(self) -> float | None:
        return None if self.mean_self is None or self.mean_final is None else self.mean_self - self.mean_final


@dataclass(frozen=True)
class CohortCalibration:
    rubric_id: str
    attempts: int             # decided reviews in the course
    rows: list[CohortRow]


def cohort_calibration(session: Session, *, rubric: Rubric) -> CohortCalibration:
    """Per criterion, over every decided review of the course: the learners' self-assessed levels against the
    final ones (the mentor's level, or the automated level the mentor kept). One query, whatever the cohort size."""
    final_level = func.coalesce(ReviewLevel.level, ReviewLevel.automated_level)
    rows = session.exec(
        select(ReviewLevel.criterion_id, final_level, SelfAssessment.level)
        .join(Review, Review.id == ReviewLevel.review_id)
        .join(Attempt, Attempt.id == Review.attempt_id)
        .join(SelfAssessment, (SelfAssessment.attempt_id == Attempt.id)
              & (SelfAssessment.criterion_id == ReviewLevel.criterion_id), isouter=True)
        .where(Attempt.rubric_id == rubric.id, Review.decided_at.is_not(None),
               Attempt.self_assessed_at.is_not(None))).all()
    attempts = session.exec(select(func.count()).select_from(Review).join(Attempt, Attempt.id == Review.attempt_id)
                            .where(Attempt.rubric_id == rubric.id, Review.decided_at.is_not(None))).one()
    by_criterion: dict[str, list[tuple[int, int]]] = {}
    for criterion_id, final, own in rows:
        if final is not None and own is not None:
            by_criterion.setdefault(criterion_id, []).append((own, final))
    result = []
    for criterion in rubric.criteria:
        pairs = by_criterion.get(criterion.id, [])
        result.append(CohortRow(
            criterion.id, criterion.title, criterion.levels[-1].level, len(pairs),
            sum(own for own, _ in pairs) / len(pairs) if pairs else None,
            sum(final for _, final in pairs) / len(pairs) if pairs else None,
            sum(1 for own, final in pairs if own > final), sum(1 for own, final in pairs if own < final)))
    return CohortCalibration(rubric.id, attempts, result)


def learner_calibration(session: Session, *, learner: User, rubric_ids: Sequence[str] | None = None) -> CalibrationSummary:
    """Self-grade against final grade over every decided review of this learner (optionally only some courses)."""
    query = select(Attempt).where(Attempt.user_id == learner.id, Attempt.review_state.in_(DECISIONS))
    if rubric_ids is not None:
        query = query.where(Attempt.rubric_id.in_(rubric_ids))
    summary = CalibrationSummary()
    for attempt in session.exec(query.order_by(Attempt.id)):
        rows = attempt_calibration(session, attempt=attempt)
        if rows:
            summary.add(rows)
            summary.attempts.append(AttemptCalibration(attempt, rows))
    return summary


def attempt_calibration(session: Session, *, attempt: Attempt) -> list[CalibrationRow]:
    report = load_report(session, attempt=attempt)
    if report is None:
        return []
    rubric = attempt_rubric(session, attempt=attempt)
    result = final_score(rubric, report, review_levels(session, review=get_review(session, attempt=attempt)))
    return calibration_rows(rubric, self_assessments(session, attempt=attempt), result)
