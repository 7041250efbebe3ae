"""Integrity evidence before a certificate: the same work (commit or tree) or a near copy from another learner,
and who wrote the commits."""

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import case
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, or_, select

from assessor.engine import similarity
from assessor.engine.authorship import Authorship, Share
from assessor.domain.models import (SCORED, Attempt, CommitEmail, CourseAssignment, FingerprintRow, Review,
                             SimilarityMatch, StoredReport, User)
from assessor.engine.report import Report, integrity_section
from assessor.engine.rubric import Rubric
from assessor.domain.source_store import read_source, source_paths
from assessor.engine.sources import SourceFile, SourceSnapshot, snapshot

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
    allowed = _visible_courses(session, viewer)
    found = []
    for other, learner in rows:
        visible = allowed is None or other.rubric_id in allowed
        found.append(SameWork(other.id, other.number, other.rubric_id, other.course, learner.id,
                              learner.display_name if visible else None,
                              "commit" if other.commit == attempt.commit else "tree", other.created_at, visible))
    return found


def flagged(session: Session, *, attempt: Attempt) -> bool:
    """Whether anything would be flagged, whoever looks: the same work, or a near copy either way."""
    if not attempt.commit:
        return False
    if session.exec(_same_work_of(session, attempt, Attempt.id).limit(1)).first() is not None:
        return True
    return bool(near_copies(session, attempt=attempt, viewer=None))


@dataclass(frozen=True)
class FlaggedAttempt:
    attempt: Attempt
    learner: User
    acknowledged: bool
    same_work: bool                    # its commit or tree was also submitted by another learner
    near_copy_percent: float | None    # the highest share in a near copy it is part of, either way


@dataclass(frozen=True)
class FlagColumns:
    """SQL expressions over Attempt joined with its StoredReport: whether its work was also submitted by another
    learner, whether it is in a near copy, and the highest share of such a copy."""
    same_work: Any
    near_copy: Any
    highest_percent: Any

    @property
    def any(self):
        return or_(self.same_work, self.near_copy)


def _shared(column, among=None):
    """The values of `column` (a commit or a tree) that more than one learner submitted, `among` those given."""
    statement = select(column).select_from(Attempt)
    if column is not Attempt.commit:  # the commit needs no report (and the index on it serves the grouping)
        statement = statement.join(StoredReport, StoredReport.id == Attempt.report_id, isouter=True)
    condition = column.is_not(None) if among is None else column.in_(among)
    return (statement.where(Attempt.status == SCORED, condition).group_by(column)
            .having(func.count(func.distinct(Attempt.user_id)) > 1))


def flag_columns(session: Session) -> FlagColumns:
    """The flags as SQL over a query of attempts. The commits and trees more than one learner submitted, and the
    reports in a near copy, are looked up once here: as subqueries, a page's count and its rows each grouped
    every submission again (twice the cost of the queue's filter)."""
    commits = set(session.scalars(_shared(Attempt.commit)))
    trees = set(session.scalars(_shared(StoredReport.tree)))
    reports = set(session.scalars(_near_copy_reports()))
    larger = case((SimilarityMatch.percent > SimilarityMatch.module_percent, SimilarityMatch.percent),
                  else_=SimilarityMatch.module_percent)
    highest = (select(func.max(larger))
               .where(or_(SimilarityMatch.report_id == Attempt.report_id,
                          SimilarityMatch.other_report_id == Attempt.report_id))
               .correlate(Attempt).scalar_subquery())
    return FlagColumns(same_work=or_(Attempt.commit.in_(commits), StoredReport.tree.in_(trees)),
                       near_copy=Attempt.report_id.in_(reports), highest_percent=highest)


@dataclass(frozen=True)
class AttemptFlags:
    same_work: bool = False
    near_copy_percent: float | None = None


def flags_for(session: Session, *, attempts: list[Attempt]) -> dict[int, AttemptFlags]:
    """The integrity flags of a page of attempts, found for those attempts only (by their commits, trees and
    reports) rather than over every submission."""
    scored = [attempt for attempt in attempts if attempt.commit]
    if not scored:
        return {}

    def shared(column, values):
        return set(session.exec(_shared(column, values)))

    report_ids = {attempt.report_id for attempt in scored if attempt.report_id}
    trees = dict(session.exec(select(StoredReport.id, StoredReport.tree).where(
        StoredReport.id.in_(report_ids), StoredReport.tree.is_not(None))).all())
    shared_commits = shared(Attempt.commit, {attempt.commit for attempt in scored})
    shared_trees = shared(StoredReport.tree, set(trees.values())) if trees else set()
    highest: dict[int, float] = {}
    for first, second, percent, module_percent in session.exec(
            select(SimilarityMatch.report_id, SimilarityMatch.other_report_id, SimilarityMatch.percent,
                   SimilarityMatch.module_percent)
            .where(or_(SimilarityMatch.report_id.in_(report_ids), SimilarityMatch.other_report_id.in_(report_ids)))
    ).all():
        share = max(percent or 0.0, module_percent or 0.0)
        for report_id in (first, second):
            if report_id in report_ids:
                highest[report_id] = max(highest.get(report_id, 0.0), share)
    return {attempt.id: AttemptFlags(attempt.commit in shared_commits or trees.get(attempt.report_id) in shared_trees,
                                     highest.get(attempt.report_id))
            for attempt in scored}


def flagged_attempts(session: Session, *, rubric_id: str | None = None, limit: int = 200) -> list[FlaggedAttempt]:
    """Scored attempts whose commit or tree another learner also submitted, or that are in a near copy, newest
    first (for the operator)."""
    flags = flag_columns(session)
    same_work, highest = flags.same_work, flags.highest_percent
    conditions = [Attempt.status == SCORED, flags.any]
    if rubric_id:
        conditions.append(Attempt.rubric_id == rubric_id)
    rows = session.exec(
        select(Attempt, User, Review.integrity_acknowledged_at, same_work, highest)
        .join(User, User.id == Attempt.user_id)
        .join(StoredReport, StoredReport.id == Attempt.report_id, isouter=True)
        .join(Review, Review.attempt_id == Attempt.id, isouter=True)
        .where(*conditions).order_by(Attempt.id.desc()).limit(limit)).all()
    return [FlaggedAttempt(attempt, learner, acknowledged is not None, bool(same), percent)
            for attempt, learner, acknowledged, same, percent in rows]


# ---------------------------------------------------------------------------------------------------------------
# Near copies: fingerprints of each submission, stored once; a new one is compared with its course's
# ---------------------------------------------------------------------------------------------------------------

MAX_NEAR_COPIES = 10
SCAN_BATCH = 200


def shipped_samples() -> dict[str, Path]:
    """The sample capstones anyone can copy: a submission that is one of them is flagged like a copy."""
    from assessor.samples import NODE_PASSING_TREE, PASSING_TREE
    return {"passing": PASSING_TREE, "node-passing": NODE_PASSING_TREE}


def _ensure_sample_fingerprints(session: Session) -> None:
    have = set(session.exec(select(FingerprintRow.sample).where(FingerprintRow.sample.is_not(None),
                                                                FingerprintRow.engine == similarity.ENGINE)))
    for name, tree in shipped_samples().items():
        if name in have:
            continue
        stale = session.exec(select(FingerprintRow).where(FingerprintRow.sample == name)).first()
        if stale is not None:  # made by an older engine: its hashes cannot be compared with today's
            session.delete(stale)
            session.flush()
        found = similarity.fingerprint(snapshot(tree))
        session.add(FingerprintRow(sample=name, engine=similarity.ENGINE, hashes=similarity.pack_hashes(found.hashes),
                                   detail=similarity.pack_detail(found), count=len(found.hashes)))
        try:
            session.commit()
        except IntegrityError:  # another worker stored the same sample first: theirs is as good
            session.rollback()


@dataclass
class PendingNearCopies:
    """What the worker stores beside the report once it has its id."""

    submission: similarity.SubmissionFingerprint
    rubric_id: str
    matches: list[tuple[similarity.Likeness, int | None, str | None, list[similarity.Fragment]]]


def _candidates(session: Session, *, rubric_id: str, learner_id: int, samples: bool):
    """Stored fingerprints to compare with: the course's submissions by other learners, and the samples."""
    by_others = (select(Attempt.report_id).where(Attempt.user_id != learner_id, Attempt.status == SCORED,
                                                 Attempt.report_id.is_not(None)))
    of_the_course = (FingerprintRow.rubric_id == rubric_id) & FingerprintRow.report_id.in_(by_others)
    statement = (select(FingerprintRow.id, FingerprintRow.hashes)
                 .where(FingerprintRow.engine == similarity.ENGINE,
                        or_(FingerprintRow.sample.is_not(None), of_the_course) if samples else of_the_course)
                 .execution_options(yield_per=SCAN_BATCH))
    for row_id, packed in session.exec(statement):
        yield similarity.StoredFingerprint(row_id, similarity.unpack_hashes(packed))


def find_near_copies(session: Session, *, report: Report, rubric: Rubric, learner_id: int,
                     sources: SourceSnapshot | None = None,
                     samples: bool = True) -> tuple[Report, PendingNearCopies | None]:
    """Compare a freshly assessed submission with every stored one of its course (and the shipped samples); the
    findings go into the report's integrity section, and what to store once the report has its id comes back
    beside it."""
    sources = sources if sources is not None else report.sources
    if sources is None:
        return report, None
    started = time.monotonic()
    if samples:
        _ensure_sample_fingerprints(session)
    submission = similarity.fingerprint(sources)
    threshold = rubric.integrity.similarity_percent
    compared = 0

    def counted(stream):
        nonlocal compared
        for item in stream:
            compared += 1
            yield item

    candidates = _candidates(session, rubric_id=rubric.id, learner_id=learner_id, samples=samples)
    found = similarity.likeness(submission, counted(candidates), threshold_percent=threshold)[:MAX_NEAR_COPIES]
    matches = []
    for likeness in found:
        row = session.get(FingerprintRow, likeness.key)
        pieces = similarity.fragments(submission, similarity.unpack_detail(row.detail))
        matches.append((likeness, row.report_id, row.sample, pieces))
    commits = dict(session.exec(select(StoredReport.id, StoredReport.commit).where(
        StoredReport.id.in_([report_id for _, report_id, _, _ in matches if report_id]))).all()) if matches else {}
    section = {
        "engine": similarity.ENGINE,
        "threshold_percent": threshold,
        "compared_with": compared,
        "samples": samples,
        "seconds": round(time.monotonic() - started, 3),
        "fingerprints": len(submission.hashes),
        "notes": list(submission.notes),
        "matches": [{"commit": commits.get(report_id), "sample": sample, "percent": likeness.percent,
                     "module": likeness.module, "module_percent": likeness.module_percent,
                     "fragments": [piece.to_dict() for piece in pieces]}
                    for likeness, report_id, sample, pieces in matches],
    }
    findings = {**(report.integrity or integrity_section()), "similarity": section}
    return (dataclasses.replace(report, integrity=findings),
            PendingNearCopies(submission, rubric.id, matches))


def record_near_copies(session: Session, *, report_id: int, pending: PendingNearCopies) -> None:
    """Store a new submission's fingerprints (so later ones are compared with it) and what it matched."""
    if session.exec(select(FingerprintRow.id).where(FingerprintRow.report_id == report_id)).first() is None:
        session.add(FingerprintRow(report_id=report_id, rubric_id=pending.rubric_id, engine=similarity.ENGINE,
                                   hashes=similarity.pack_hashes(pending.submission.hashes),
                                   detail=similarity.pack_detail(pending.submission),
                                   count=len(pending.submission.hashes)))
    for likeness, other_report_id, sample, pieces in pending.matches:
        session.add(SimilarityMatch(report_id=report_id, other_report_id=other_report_id, other_sample=sample,
                                    percent=likeness.percent, module=likeness.module,
                                    module_percent=likeness.module_percent,
                                    fragments=json.dumps([piece.to_dict() for piece in pieces])))
    session.commit()


@dataclass(frozen=True)
class NearCopy:
    """A stored match seen from one attempt: how much of which side is found in the other."""

    match_id: int
    percent: float            # of the copying side's code found in the other
    module: str | None
    module_percent: float
    this_side_copies: bool    # True: this attempt's code is found in the other; False: the other's in this one
    sample: str | None        # a shipped sample, public
    other: SameWork | None    # the other learner's attempt, when it is one

    @property
    def highest(self) -> float:
        return max(self.percent, self.module_percent)


def _visible_courses(session: Session, viewer: User | None) -> set[str] | None:
    if viewer is None:
        return set()
    if viewer.role == "admin":
        return None
    return set(session.exec(select(CourseAssignment.rubric_id).where(CourseAssignment.user_id == viewer.id)))


def _other_attempt(session: Session, *, report_id: int, learner_id: int) -> tuple[Attempt, User] | None:
    """The first scored attempt of that submission by someone other than this learner."""
    return session.exec(select(Attempt, User).join(User, User.id == Attempt.user_id)
                        .where(Attempt.report_id == report_id, Attempt.user_id != learner_id,
                               Attempt.status == SCORED).order_by(Attempt.id).limit(1)).first()


def near_copies(session: Session, *, attempt: Attempt, viewer: User | None) -> list[NearCopy]:
    """Near copies involving this attempt's submission, both ways, highest first; others' names and links only
    for admins and that course's mentors. Matches with this learner's own other attempts are never stored."""
    if attempt.report_id is None:
        return []
    rows = session.exec(select(SimilarityMatch).where(or_(SimilarityMatch.report_id == attempt.report_id,
                                                          SimilarityMatch.other_report_id == attempt.report_id))
                        .order_by(SimilarityMatch.id)).all()
    allowed = _visible_courses(session, viewer)
    found = []
    for match in rows:
        this_side_copies = match.report_id == attempt.report_id
        other_report = match.other_report_id if this_side_copies else match.report_id
        other = None
        if other_report is not None:
            pair = _other_attempt(session, report_id=other_report, learner_id=attempt.user_id)
            if pair is None:
                continue   # only this learner's own submissions share it
            other_attempt, learner = pair
            visible = allowed is None or other_attempt.rubric_id in allowed
            other = SameWork(other_attempt.id, other_attempt.number, other_attempt.rubric_id, other_attempt.course,
                             learner.id, learner.display_name if visible else None, "near copy",
                             other_attempt.created_at, visible)
        elif not this_side_copies:
            continue
        found.append(NearCopy(match.id, match.percent, match.module, match.module_percent, this_side_copies,
                              match.other_sample if this_side_copies else None, other))
    return sorted(found, key=lambda item: (-item.highest, item.match_id))


def near_copy_match(session: Session, *, attempt: Attempt, match_id: int) -> SimilarityMatch | None:
    match = session.get(SimilarityMatch, match_id)
    if match is None or attempt.report_id is None or attempt.report_id not in (match.report_id, match.other_report_id):
        return None
    return match


def match_fragments(match: SimilarityMatch, *, from_report_id: int) -> list[similarity.Fragment]:
    """The match's fragments with this side first: stored from the copying side, swapped for the other."""
    try:
        pieces = [similarity.Fragment.from_dict(item) for item in json.loads(match.fragments)]
    except (ValueError, KeyError, TypeError, IndexError):
        return []
    if match.report_id == from_report_id:
        return pieces
    return [similarity.Fragment(p.other_path, p.other_first_line, p.other_last_line, p.path, p.first_line,
                                p.last_line) for p in pieces]


def _near_copy_reports():
    return select(SimilarityMatch.report_id).union(
        select(SimilarityMatch.other_report_id).where(SimilarityMatch.other_report_id.is_not(None)))


# ---------------------------------------------------------------------------------------------------------------
# Commit addresses and authorship
# ---------------------------------------------------------------------------------------------------------------

def learner_emails(session: Session, *, learner: User) -> tuple[list[str], list[str]]:
    """(confirmed, unconfirmed) addresses the learner commits with; a confirmed account address comes first."""
    confirmed = [learner.email.lower()] if learner.email_verified_at is not None else []
    unconfirmed = [] if confirmed else [learner.email.lower()]
    for row in session.exec(select(CommitEmail).where(CommitEmail.user_id == learner.id).order_by(CommitEmail.id)):
        (confirmed if row.confirmed_at is not None else unconfirmed).append(row.email.lower())
    return confirmed, unconfirmed


@dataclass(frozen=True)
class AuthorshipEvidence:
    """What the history says about the learner's part in the assessed commit, for the mentor to weigh."""

    authorship: Authorship
    confirmed: list[str]        # the learner's confirmed addresses
    unconfirmed: list[str]      # addresses the learner named but has not confirmed
    share: Share                # by the confirmed addresses
    claimed_share: Share        # by the unconfirmed ones, shown apart

    @property
    def others(self) -> list:
        mine = set(self.confirmed) | set(self.unconfirmed)
        return [author for author in self.authorship.authors if author.email not in mine]


def authorship_evidence(session: Session, *, report: Report | None, learner: User) -> AuthorshipEvidence | None:
    data = ((report.integrity or {}).get("authorship") if report is not None else None)
    if not isinstance(data, dict):
        return None
    try:
        found = Authorship.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None
    confirmed, unconfirmed = learner_emails(session, learner=learner)
    return AuthorshipEvidence(found, confirmed, unconfirmed, found.share(confirmed), found.share(unconfirmed))


def index_stored_submissions(session: Session, *, rubric_id: str | None = None) -> tuple[int, int]:
    """Fingerprint the stored submissions that have none for today's engine (assessed before near copies were
    looked for, or under an older engine), from their kept files, so new submissions are compared with them.
    Returns (indexed, skipped for want of kept files)."""
    current = select(FingerprintRow.report_id).where(FingerprintRow.engine == similarity.ENGINE,
                                                     FingerprintRow.report_id.is_not(None))
    statement = select(StoredReport.id, StoredReport.commit, StoredReport.rubric_id).where(
        StoredReport.id.not_in(current)).order_by(StoredReport.id)
    if rubric_id:
        statement = statement.where(StoredReport.rubric_id == rubric_id)
    indexed = skipped = 0
    for report_id, commit, report_rubric in session.exec(statement).all():
        code = [path for path in source_paths(session, commit=commit) if similarity.language_of(path)]
        if not code:
            skipped += 1
            continue
        files = SourceSnapshot(tuple(SourceFile(path, read_source(session, commit=commit, path=path) or "")
                                     for path in code))
        found = similarity.fingerprint(files)
        stale = session.exec(select(FingerprintRow).where(FingerprintRow.report_id == report_id)).first()
        if stale is not None:
            session.delete(stale)
            session.flush()
        session.add(FingerprintRow(report_id=report_id, rubric_id=report_rubric, engine=similarity.ENGINE,
                                   hashes=similarity.pack_hashes(found.hashes), detail=similarity.pack_detail(found),
                                   count=len(found.hashes)))
        indexed += 1
        if indexed % 50 == 0:
            session.commit()
    session.commit()
    return indexed, skipped
