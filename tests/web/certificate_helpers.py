"""Shared helpers for the certificate tests: an approved, passing attempt, and the issuer settings of an app."""

from pathlib import Path

from assessor import issuing
from assessor.models import APPROVED, CHANGES_REQUESTED
from assessor.reviews import save_review
from assessor.rubric import find_rubric
from assessor.submissions import load_report

PASSING_LEVELS = {"tests": 2, "coverage": 1, "complexity": 1, "docs": 1, "design": 2, "defense": 2}


def approve(db, app, attempt, mentor, *, levels=None, decision=APPROVED, comment=""):
    rubric = find_rubric(attempt.rubric_id, Path(app.config["RUBRICS_DIR"]))
    report = load_report(db, attempt=attempt)
    entries = {cid: (str(level), "", "") for cid, level in (levels or PASSING_LEVELS).items()}
    if decision == CHANGES_REQUESTED and not comment:
        comment = "change this"
    return save_review(db, mentor=mentor, attempt=attempt, rubric=rubric, report=report, entries=entries,
                       comment=comment, decision=decision)


def settings(app) -> issuing.IssuerSettings:
    return issuing.settings_from_config(app.config)
