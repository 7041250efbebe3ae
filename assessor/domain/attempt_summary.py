"""What an attempt page says first: where the attempt stands, what is still open, and the learner's next step."""

from dataclasses import dataclass

from assessor.domain.models import APPROVED, AWAITING_REVIEW, CHANGES_REQUESTED, HELD, SUPERSEDED
from assessor.engine.scoring import PENDING

# The next step, one of these; the page turns each into a link or a button.
WAIT, RESUBMIT, SELF_ASSESS, AWAIT_REVIEW, DOWNLOAD, CERTIFICATE_PENDING, LATEST = (
    "wait", "resubmit", "self_assess", "await_review", "download", "certificate_pending", "latest")


@dataclass(frozen=True)
class AttemptSummary:
    tone: str  # good, warn, bad or neutral
    headline: str
    left: tuple[str, ...]  # what is still open, one plain line each
    next_step: str
    next_text: str


def _figures(score) -> str:
    return f"{score.total:.1f} of {score.max:g} ({score.percent:.1f}%; pass mark {score.pass_mark:g}%)"


_PLURALS = {"criterion": "criteria"}


def _plural(count: int, word: str) -> str:
    return f"{count} {word if count == 1 else _PLURALS.get(word, word + 's')}"


def summarise(*, attempt, report, result, answered: int, can_self_assess: bool,
              has_certificate: bool, submitted: bool = False, revoked_reason: str | None = None,
              unchanged_from: int | None = None) -> AttemptSummary:
    """`report` the automated report, `result` the final score once a mentor decided, `answered` how many criteria
    the learner's self-assessment (submitted or a draft) answers, `submitted` whether it was sent,
    `revoked_reason` why its certificate was revoked (None while it stands)."""
    if attempt.status in ("queued", "running"):
        return AttemptSummary("neutral", "Being assessed", (), WAIT,
                              "Wait a few minutes: this page shows each stage as it finishes.")
    if attempt.status == "failed" or report is None:
        return AttemptSummary("bad", "The assessment could not finish", (attempt.failure_reason or "",), RESUBMIT,
                              "Fix what the reason says, then submit again.")
    if attempt.review_state == SUPERSEDED:
        return AttemptSummary("neutral", "Replaced by a later attempt", (), LATEST,
                              "Your later attempt is the one a mentor reviews.")
    if attempt.review_state == APPROVED and result is not None:
        if result.outcome == "pass":
            if revoked_reason is not None:
                return AttemptSummary("bad", "Certificate revoked", (revoked_reason,), RESUBMIT,
                                      "The certificate no longer stands; ask your course team what to do next.")
            if has_certificate:
                return AttemptSummary("good", f"Passed: {_figures(result.score)}", (), DOWNLOAD,
                                      "Download your certificate or share its verify link.")
            return AttemptSummary("good", f"Passed: {_figures(result.score)}", (), CERTIFICATE_PENDING,
                                  "Your certificate is being issued.")
        return AttemptSummary("bad", f"Not passed: {_figures(result.score)}", tuple(result.score.reasons), RESUBMIT,
                              "Read the mentor's comments and the report below, fix them, then submit again.")
    if attempt.review_state == HELD and unchanged_from is not None:
        return AttemptSummary("warn", f"Unchanged since attempt {unchanged_from}", (
            f"This is the commit your mentor asked changes to on attempt {unchanged_from}, so it was not sent to "
            f"review again.",), RESUBMIT, "Push the changes your mentor asked for, then submit again.")
    if attempt.review_state == CHANGES_REQUESTED:
        return AttemptSummary("warn", "Your mentor asked for changes", (), RESUBMIT,
                              "Read the mentor's comments below, make the changes, then submit again.")
    automated = report.score
    pending = [score for score in report.criteria if score.status == PENDING]
    total = len(report.criteria)
    left = []
    if pending:
        left.append(f"{_plural(len(pending), 'criterion')} for your mentor to score: "
                    + ", ".join(score.title for score in pending))
    if not submitted and can_self_assess:
        left.append(f"your self-assessment: a draft with {answered} of {total} criteria answered, not sent yet"
                    if answered else "your self-assessment")
    if automated.outcome == "fail":
        return AttemptSummary("bad", f"Cannot pass as it stands: {_figures(automated)}", tuple(automated.reasons),
                              RESUBMIT, "Start with what is needed to pass, then submit again.")
    headline = (f"So far: {automated.total:.1f} points from the automated checks, out of {automated.max:g}; "
                f"your mentor scores the rest (pass mark {automated.pass_mark:g}%)"
                if pending else f"Measured: {_figures(automated)}")
    if can_self_assess and not submitted:
        return AttemptSummary("neutral", headline, tuple(left), SELF_ASSESS,
                              "Self-assess your attempt: a mentor reviews it next.")
    if attempt.review_state in AWAITING_REVIEW:
        return AttemptSummary("neutral", headline, tuple(left), AWAIT_REVIEW,
                              "Wait for your mentor's review: you will get an e-mail when it is done.")
    return AttemptSummary("neutral", headline, tuple(left), AWAIT_REVIEW, "Wait for your mentor's review.")
