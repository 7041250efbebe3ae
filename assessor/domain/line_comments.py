"""Mentors' comments on lines of a learner's code: left during a review, shown to the learner once it is decided."""

from sqlmodel import Session, func, select

from assessor.engine.codeview import Comment, Reply
from assessor.domain.db import utcnow
from assessor.domain.models import Attempt, LineComment, User
from assessor.domain.reviews import ReviewError, get_review, written_text
from assessor.engine.rubric import Rubric
from assessor.domain.submissions import record_event

MAX_RANGE_LINES = 500


def can_comment(session: Session, *, attempt: Attempt, user: User) -> bool:
    """Only the mentor reviewing the attempt, until the decision."""
    review = get_review(session, attempt=attempt)
    return review is not None and review.mentor_id == user.id and review.decided_at is None


def add_comment(session: Session, *, attempt: Attempt, author: User, rubric: Rubric, path: str, line_count: int | None,
                start_line: object, end_line: object, criterion_id: object, body: object) -> LineComment:
    """Validate and store one comment; `line_count` is the file's length at the attempt's commit (None: no such
    file). Raises ReviewError with one message per form field."""
    if not can_comment(session, attempt=attempt, user=author):
        raise ReviewError("start the review before commenting on the code (and only until it is decided)")
    errors: dict[str, str] = {}
    if line_count is None:
        raise ReviewError(f"{path} is not a file of the assessed commit")
    start = _line_number(start_line)
    end = _line_number(end_line) if end_line not in (None, "") else start
    if start is None or not 1 <= start <= line_count:
        errors["start_line"] = f"choose a line between 1 and {line_count}"
    elif end is None or not start <= end <= line_count:
        errors["end_line"] = f"the last line must be between {start} and {line_count}"
    elif end - start + 1 > MAX_RANGE_LINES:
        errors["end_line"] = f"a comment covers at most {MAX_RANGE_LINES} lines"
    criterion = criterion_id.strip() if isinstance(criterion_id, str) else ""
    if criterion and criterion not in {c.id for c in rubric.criteria}:
        errors["criterion"] = "choose one of the rubric's criteria, or none"
    text, problem = written_text(body, missing="write the comment")
    if problem:
        errors["body"] = problem
    if errors:
        raise ReviewError("the comment was not saved", errors)
    comment = LineComment(attempt_id=attempt.id, author_id=author.id, path=path, start_line=start, end_line=end,
                          criterion_id=criterion or None, body=text)
    session.add(comment)
    record_event(session, kind="line_comment", attempt=attempt, actor=author,
                 detail=f"{path}:{start}" + (f"-{end}" if end != start else ""))
    session.commit()
    return comment


def delete_comment(session: Session, *, attempt: Attempt, user: User, comment_id: int) -> None:
    comment = session.get(LineComment, comment_id)
    if comment is None or comment.attempt_id != attempt.id or comment.author_id != user.id \
            or comment.parent_id is not None or not can_comment(session, attempt=attempt, user=user):
        raise ReviewError("that comment cannot be removed (only by its author, until the review is decided)")
    for reply in session.exec(select(LineComment).where(LineComment.parent_id == comment.id)):
        session.delete(reply)
    session.delete(comment)
    session.commit()


def can_reply(session: Session, *, attempt: Attempt, user: User) -> bool:
    """The learner once the review is decided (when the comments are shown); the mentors who may see the attempt
    at any time (the caller has checked they may)."""
    if user.id != attempt.user_id:
        return True
    review = get_review(session, attempt=attempt)
    return review is not None and review.decided_at is not None


def _body(value: object) -> str:
    text, problem = written_text(value, missing="write the reply")
    if problem:
        raise ReviewError("nothing was saved", {"body": problem})
    return text


def _comment_of(session: Session, attempt: Attempt, comment_id: int) -> LineComment:
    comment = session.get(LineComment, comment_id)
    if comment is None or comment.attempt_id != attempt.id:
        raise ReviewError("no such comment on this attempt")
    return comment


def reply(session: Session, *, attempt: Attempt, author: User, comment_id: int, body: object) -> LineComment:
    """A reply under a line comment (replies to a reply go under the same comment)."""
    parent = _comment_of(session, attempt, comment_id)
    if parent.parent_id is not None:
        parent = _comment_of(session, attempt, parent.parent_id)
    if not can_reply(session, attempt=attempt, user=author):
        raise ReviewError("you can answer your mentor's comments once the review is decided")
    answer = LineComment(attempt_id=attempt.id, author_id=author.id, path=parent.path, start_line=parent.start_line,
                         end_line=parent.end_line, criterion_id=parent.criterion_id, body=_body(body),
                         parent_id=parent.id)
    session.add(answer)
    record_event(session, kind="line_comment_reply", attempt=attempt, actor=author,
                 detail=f"{parent.path}:{parent.start_line}: {answer.body}")
    session.commit()
    return answer


def edit(session: Session, *, attempt: Attempt, user: User, comment_id: int, body: object) -> LineComment:
    """Its author rewrites a comment or a reply; the page marks it edited."""
    comment = _comment_of(session, attempt, comment_id)
    if comment.author_id != user.id:
        raise ReviewError("only its author can edit a comment")
    text = _body(body)
    if text != comment.body:
        comment.body, comment.edited_at = text, utcnow()
        session.add(comment)
        record_event(session, kind="line_comment_edited", attempt=attempt, actor=user,
                     detail=f"{comment.path}:{comment.start_line}")
    session.commit()
    return comment


def _line_number(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def comments_for(session: Session, *, attempt: Attempt, rubric: Rubric | None = None,
                 path: str | None = None) -> list[Comment]:
    titles = {criterion.id: criterion.title for criterion in rubric.criteria} if rubric else {}
    query = (select(LineComment, User).join(User, LineComment.author_id == User.id)
             .where(LineComment.attempt_id == attempt.id))
    if path is not None:
        query = query.where(LineComment.path == path)
    rows = session.exec(query.order_by(LineComment.path, LineComment.start_line, LineComment.id)).all()
    replies: dict[int, list[Reply]] = {}
    for row, user in rows:
        if row.parent_id is not None:
            replies.setdefault(row.parent_id, []).append(
                Reply(row.id, user.display_name, user.id, row.body, row.created_at, row.edited_at is not None))
    return [Comment(row.id, row.path, row.start_line, row.end_line, row.body, user.display_name,
                    titles.get(row.criterion_id, row.criterion_id) if row.criterion_id else None, row.created_at,
                    author_id=user.id, edited=row.edited_at is not None, replies=tuple(replies.get(row.id, ())))
            for row, user in rows if row.parent_id is None]


def comment_counts(session: Session, *, attempt: Attempt) -> dict[str, int]:
    rows = session.exec(select(LineComment.path, func.count()).where(LineComment.attempt_id == attempt.id,
                                                                     LineComment.parent_id.is_(None))
                        .group_by(LineComment.path)).all()
    return {path: count for path, count in rows}

