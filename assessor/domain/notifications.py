"""What the service tells people by e-mail, and when: each message is composed here and queued (assessor.mail)."""

from sqlmodel import Session, select

from assessor.domain import accounts, mail
from assessor.domain.models import AWAITING_REVIEW, SCORED, Attempt, CourseAssignment, Submission, User


def _link(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _greeting(user: User) -> str:
    return f"Hello {user.name.strip()}," if user.name.strip() else "Hello,"


def send_verification(session: Session, *, user: User, base_url: str) -> None:
    raw = accounts.issue_token(session, user=user, purpose="verify")
    mail.queue(session, to=user, kind="verify", subject="Confirm your e-mail address", body=(
        f"{_greeting(user)}\n\nConfirm that this address is yours, so certificates can name it:\n\n"
        f"    {_link(base_url, f'/verify-email/{raw}')}\n\nThe link works once, for three days. If you did not sign "
        f"up, ignore this message.\n"))


def send_commit_email_confirmation(session: Session, *, user: User, row, base_url: str) -> None:
    """To the commit address itself: opening the link proves the learner reads it."""
    raw = accounts.issue_token(session, user=user, purpose="commit", email=row.email)
    # The reader may not be the account's owner: no name they chose, only the account's own address.
    message = mail.queue(session, to=user, kind="verify", subject="Confirm the address you commit with", body=(
        f"Hello,\n\nThe Capstone Assessor account {user.email} named this address ({row.email}) as one it makes "
        f"git commits with. If that account is yours, confirm it, so the commits made with this address count as "
        f"yours when your capstone is reviewed:\n\n"
        f"    {_link(base_url, f'/account/commit-emails/confirm/{raw}')}\n\nThe link works once, for three days. "
        f"If the account is not yours, ignore this message: nothing changes, and your commits stay yours.\n"),
        force=True)
    message.to_address = row.email


def send_invitation(session: Session, *, user: User, base_url: str, invited_by: User) -> None:
    raw = accounts.issue_token(session, user=user, purpose="invite")
    mail.queue(session, to=user, kind="verify", subject="Your Capstone Assessor account", body=(
        f"{_greeting(user)}\n\n{invited_by.display_name} made you a {user.role} account on Capstone Assessor. "
        f"Choose your password here to start:\n\n    {_link(base_url, f'/welcome/{raw}')}\n\nThe link works once, "
        f"for seven days. If you did not expect this, ignore the message.\n"))


def send_password_reset(session: Session, *, user: User, base_url: str) -> None:
    raw = accounts.issue_token(session, user=user, purpose="reset")
    mail.queue(session, to=user, kind="reset", subject="Reset your password", body=(
        f"{_greeting(user)}\n\nSomeone (we hope you) asked to reset the password of this account. Choose a new one "
        f"here:\n\n    {_link(base_url, f'/reset-password/{raw}')}\n\nThe link works once, for one hour; it signs out "
        f"every device. If you did not ask, ignore this message: your password stays as it is.\n"))


def assessment_finished(session: Session, *, attempt: Attempt, base_url: str, outcome: str | None,
                        reason: str | None = None) -> None:
    user = session.get(User, attempt.user_id)
    if user is None:
        return
    if attempt.status == SCORED:
        what = {"pass": "meets the rubric's automated criteria", "fail": "falls short of the rubric",
                "pending": "is scored; the criteria a mentor judges are still open"}.get(outcome or "", "is scored")
    else:
        what = f"could not be assessed: {reason or 'see the attempt page'}"
    mail.queue(session, to=user, kind="assessment", subject=f"Your capstone ({attempt.course}) {what.split(':')[0]}",
               body=(f"{_greeting(user)}\n\nAttempt {attempt.number} of your capstone for {attempt.course} {what}.\n\n"
                     f"    {_link(base_url, f'/learner/attempts/{attempt.id}')}\n\n"
                     f"You can switch these messages off on your account page.\n"))


def review_decided(session: Session, *, attempt: Attempt, approved: bool, base_url: str,
                   outcome: str | None = None) -> None:
    """The decision as the attempt page states it: passed, not passed (a final decision), or changes asked for."""
    user = session.get(User, attempt.user_id)
    if user is None:
        return
    if not approved:
        subject, said = "Your mentor asked for changes", "asked for changes to your capstone"
    elif outcome == "pass":
        subject, said = "Your capstone passed", "approved your capstone: it passed"
    else:
        subject, said = "Your capstone did not pass", "made the final decision on your capstone: it did not pass"
    mail.queue(session, to=user, kind="review", subject=subject, body=(
        f"{_greeting(user)}\n\nA mentor {said} ({attempt.course}, attempt {attempt.number}). Their levels and "
        f"comments are on the attempt page:\n\n    {_link(base_url, f'/learner/attempts/{attempt.id}')}\n"))


def certificate_issued(session: Session, *, user: User, course: str, verify_url: str, attempt_id: int,
                       base_url: str) -> None:
    mail.queue(session, to=user, kind="certificate", subject=f"Your certificate for {course}", body=(
        f"{_greeting(user)}\n\nYour certificate for {course} is issued. Download it from your attempt page:\n\n"
        f"    {_link(base_url, f'/learner/attempts/{attempt_id}')}\n\nEmployers can check it at\n\n"
        f"    {verify_url}\n"))


def certificate_revoked(session: Session, *, user: User, course: str, reason: str, attempt_id: int,
                        base_url: str) -> None:
    mail.queue(session, to=user, kind="certificate", subject=f"Your certificate for {course} was revoked", body=(
        f"{_greeting(user)}\n\nYour certificate for {course} was revoked by the course team: {reason}\n\n"
        f"Its public page and every verifier now say it is revoked. Your attempt page:\n\n"
        f"    {_link(base_url, f'/learner/attempts/{attempt_id}')}\n\nReply to your course team if you think this "
        f"is a mistake.\n"))


def request_opened(session: Session, *, mentor: User, attempt: Attempt, regrade: bool, criterion_title: str,
                   text: str, base_url: str) -> None:
    """To the mentor who decided: a learner's question or regrade request, with the link to answer it."""
    what = "asks for a regrade" if regrade else "asks a question"
    mail.queue(session, to=mentor, kind="review", subject=f"A learner {what} about {criterion_title}", body=(
        f"{_greeting(mentor)}\n\nOn {attempt.course}, attempt {attempt.number}, the learner {what} about "
        f"{criterion_title}:\n\n{text}\n\nAnswer it on the review page:\n\n"
        f"    {_link(base_url, f'/mentor/attempts/{attempt.id}#requests')}\n"))


def request_answered(session: Session, *, learner: User, attempt: Attempt, level_changed: bool,
                     criterion_title: str, text: str, base_url: str) -> None:
    what = f"changed the level of {criterion_title}" if level_changed else f"answered about {criterion_title}"
    mail.queue(session, to=learner, kind="review", subject=f"Your mentor {what}", body=(
        f"{_greeting(learner)}\n\nOn {attempt.course}, attempt {attempt.number}, your mentor {what}:\n\n{text}\n\n"
        f"The conversation is on your attempt page:\n\n"
        f"    {_link(base_url, f'/learner/attempts/{attempt.id}#requests')}\n"))


def _learner_label(session: Session, user_id: int) -> str:
    """How the dashboard names a learner: the name when there is one, and always the account number."""
    learner = session.get(User, user_id)
    name = learner.name.strip() if learner is not None else ""
    return f"{name} (account #{user_id})" if name else f"account #{user_id}"


def mentor_digests(session: Session, *, base_url: str) -> int:
    """One message per mentor with attempts waiting in their courses (none when nothing waits); how many."""
    sent = 0
    mentors = session.exec(select(User).where(User.role.in_(("mentor", "admin")), User.active == True,  # noqa: E712
                                              User.notify_digest == True)).all()  # noqa: E712
    for mentor in mentors:
        courses = list(session.exec(select(CourseAssignment.rubric_id).where(CourseAssignment.user_id == mentor.id)))
        if not courses:
            continue
        waiting = session.exec(select(Attempt).join(Submission, Submission.id == Attempt.submission_id).where(
            Attempt.rubric_id.in_(courses), Attempt.status == SCORED, Attempt.review_state.in_(AWAITING_REVIEW),
            Submission.user_id != mentor.id).order_by(Attempt.created_at)).all()
        if not waiting:
            continue
        lines = [f"  - {attempt.course}: {_learner_label(session, attempt.user_id)}, attempt {attempt.number}, "
                 f"waiting since {attempt.created_at:%Y-%m-%d}\n    {_link(base_url, f'/mentor/attempts/{attempt.id}')}"
                 for attempt in waiting[:20]]
        more = f"\n  ... and {len(waiting) - 20} more" if len(waiting) > 20 else ""
        mail.queue(session, to=mentor, kind="digest", subject=f"{len(waiting)} capstone"
                                                              f"{'s' if len(waiting) != 1 else ''} waiting for review",
                   body=(f"{_greeting(mentor)}\n\nThese attempts wait for a review in your courses, oldest first:\n\n"
                         + "\n".join(lines) + more + f"\n\n    {_link(base_url, '/mentor/')}\n"))
        sent += 1
    return sent
