"""The code view: an attempt's files with the evidence on them, mentors' line comments, changes since the last attempt."""

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from assessor.engine import codeview
from assessor.domain import integrity, line_comments, reviews, submissions
from assessor.engine.codeview import carry_over, line_mapping
from assessor.domain.models import Attempt
from assessor.domain.source_store import changed_sources, has_sources, read_highlighted, read_source, source_paths
from assessor.web.extensions import db
from assessor.web.forms import ActionForm

bp = Blueprint("code", __name__, url_prefix="/attempts")



def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _viewable(attempt_id: int) -> tuple[Attempt, bool]:
    """The attempt and whether the viewer is its learner; 404 for anyone who may not see it."""
    session = db()
    attempt = submissions.attempt_for_owner(session, user=current_user, attempt_id=attempt_id)
    if attempt is not None:
        return attempt, True
    if current_user.role in ("mentor", "admin"):
        attempt = reviews.attempt_for_mentor(session, mentor=current_user, attempt_id=attempt_id)
        if attempt is not None:
            return attempt, False
    abort(404)


def _comments_visible(attempt: Attempt, is_learner: bool) -> bool:
    """A learner reads the mentor's comments with the decision, like the levels; mentors always."""
    if not is_learner:
        return True
    review = reviews.get_review(db(), attempt=attempt)
    return review is not None and review.decided_at is not None


def _earlier_comments(attempt: Attempt, is_learner: bool):
    """(the previous attempt, its comments the viewer may read)."""
    session = db()
    previous = submissions.previous_attempt(session, attempt=attempt)
    if previous is None or not _comments_visible(previous, is_learner):
        return previous, []
    rubric = submissions.attempt_rubric(session, attempt=previous)
    return previous, line_comments.comments_for(session, attempt=previous, rubric=rubric)


@bp.route("/<int:attempt_id>/code")
@login_required
def index(attempt_id: int):
    attempt, is_learner = _viewable(attempt_id)
    session = db()
    report = submissions.load_report(session, attempt=attempt)
    rubric = submissions.attempt_rubric(session, attempt=attempt)
    paths = source_paths(session, commit=attempt.commit) if attempt.commit else {}
    entries = _evidence_entries(attempt, is_learner, report, rubric, paths)
    measured_only = request.args.get("show") != "all"
    shown = [entry for entry in entries if not measured_only or _has_evidence(entry)]
    previous = submissions.previous_attempt(session, attempt=attempt)
    return render_template("code/index.html", attempt=attempt, entries=shown, folders=codeview.by_folder(shown),
                           total=len(entries), measured_only=measured_only, has_sources=bool(paths),
                           is_learner=is_learner, previous=previous)


def _has_evidence(entry: codeview.FileEntry) -> bool:
    return entry.line_percent is not None or bool(entry.criteria) or bool(entry.comments)


def _evidence_entries(attempt: Attempt, is_learner: bool, report, rubric, paths: dict[str, int]):
    titles = {criterion.id: criterion.title for criterion in rubric.criteria}
    counts = line_comments.comment_counts(db(), attempt=attempt) if _comments_visible(attempt, is_learner) else {}
    return codeview.file_index(
        paths, coverage=report.coverage if report else None, complexity=report.complexity if report else None,
        artifact_criteria=codeview.artifact_criteria_by_path(report.artifacts if report else (), titles),
        comment_counts=counts)


def _file_context(attempt: Attempt, is_learner: bool, path: str, *, errors=None, values=None, held=None):
    session = db()
    found = read_highlighted(session, commit=attempt.commit, path=path) if attempt.commit else None
    if found is None:
        abort(404)
    text, highlighted = found
    report = submissions.load_report(session, attempt=attempt)
    rubric = submissions.attempt_rubric(session, attempt=attempt)
    comments = (line_comments.comments_for(session, attempt=attempt, rubric=rubric, path=path)
                if _comments_visible(attempt, is_learner) else [])
    previous, earlier = _earlier_comments(attempt, is_learner)
    earlier = [comment for comment in earlier if comment.path == path]
    if earlier:
        old_text = read_source(session, commit=previous.commit, path=path) or ""
        mapping = line_mapping(old_text, text)
        line_count = text.count("\n") + (0 if text.endswith("\n") else 1)
        comments += [carry_over(comment, mapping, from_attempt=previous.number, new_line_count=line_count)
                     for comment in earlier]
    titles = {criterion.id: criterion.title for criterion in rubric.criteria}
    criteria = codeview.artifact_criteria_by_path(report.artifacts if report else (), titles).get(path, [])
    view = codeview.file_view(path, text, coverage=report.coverage if report else None,
                              complexity=report.complexity if report else None, comments=comments,
                              criteria=criteria, highlighted=highlighted,
                              failures=list(report.failures or ()) if report else [])
    # Previous and next walk the files the index lists (those with evidence), in its folder order.
    listed = [entry for entry in _evidence_entries(attempt, is_learner, report, rubric,
                                                   source_paths(session, commit=attempt.commit))
              if _has_evidence(entry) or entry.path == path]
    walked = [entry.path for _, files in codeview.by_folder(listed) for entry in files]
    before, after = codeview.neighbours(walked, path)
    can_comment = not is_learner and line_comments.can_comment(session, attempt=attempt, user=current_user)
    action_form = ActionForm()
    threads = None
    if line_comments.can_reply(session, attempt=attempt, user=current_user):
        threads = ThreadForms(
            viewer_id=current_user.id, csrf_token=generate_csrf(), held=held,
            reply_url=lambda comment_id: url_for("code.reply", attempt_id=attempt.id, comment_id=comment_id),
            edit_url=lambda comment_id: url_for("code.edit", attempt_id=attempt.id, comment_id=comment_id))
    rows = code_rows(view, csrf_token=generate_csrf() if can_comment else "", threads=threads,
                     delete_url=(lambda comment_id: url_for("code.delete_comment", attempt_id=attempt.id,
                                                            comment_id=comment_id)) if can_comment else None)
    return dict(attempt=attempt, view=view, rubric=rubric, is_learner=is_learner, errors=errors or {},
                values=values or {}, can_comment=can_comment, action_form=action_form, previous=previous, rows=rows,
                before=before, after=after)


_COVERAGE_TITLES = {"missed": "never ran in the tests", "partial": "a branch here was never taken"}


@dataclass(frozen=True)
class ThreadForms:
    """What the viewer may do under each comment: reply (and edit their own), with the forms' addresses; a form
    sent back with an error is `held` (comment id, "reply" or "edit", the text, the message)."""

    viewer_id: int
    reply_url: Callable[[int], str]
    edit_url: Callable[[int], str]
    csrf_token: str
    held: tuple[int, str, str, str] | None = None


def code_rows(view: codeview.FileView, *, delete_url=None, csrf_token: str = "",
              threads: ThreadForms | None = None) -> Markup:
    """The file's table rows. Built here rather than in a Jinja loop: a 5,000-line file is 5,000 rows, and the
    template loop alone took ~70 ms of the page. Every value from the learner's files is escaped."""
    parts = []
    for line in view.lines:
        number = line.number
        css = f' class="{line.coverage}"' if line.coverage else ""
        title = f' title="{_COVERAGE_TITLES[line.coverage]}"' if line.coverage else ""
        badges = "".join(
            f'<span class="cc-badge rank-{escape(function.get("rank"))}" title="{escape(function.get("name"))}: '
            f'cyclomatic complexity {escape(function.get("complexity"))}">{escape(function.get("complexity"))} '
            f'{escape(function.get("rank"))}</span>' for function in line.functions)
        # One tab stop for all the line numbers: the first; the arrow keys move between them (code.js).
        stop = "" if number == 1 else ' tabindex="-1"'
        parts.append(f'<tr id="L{number}"{css}><td class="num"><a href="#L{number}" data-line="{number}"{title}{stop}>'
                     f'{number}</a></td><td class="cc">{badges}</td><td class="src">{line.html}</td></tr>')
        for failure in line.failures:
            parts.append(f'<tr class="failure-note"><td colspan="3"><div class="comment-card failing">'
                         f'<p class="comment-meta"><strong>{escape(failure.get("name") or "")}</strong> '
                         f'{escape(failure.get("outcome") or "failed")}</p>'
                         f'<pre tabindex="0">{escape(failure.get("message") or "")}</pre></div></td></tr>')
        for comment in line.comments:
            parts.append(_comment_row(comment, view.path, delete_url, csrf_token, threads))
    return Markup("\n".join(parts))


def _thread_form(threads: ThreadForms, path: str, target_id: int, kind: str, current: str = "") -> str:
    """A reply or edit form under a comment, folded unless it came back with an error."""
    held = threads.held if threads.held and threads.held[:2] == (target_id, kind) else None
    text = held[2] if held else current
    field_id = f"{kind}-{target_id}"
    error = (f'<p class="error" id="{field_id}-error">{escape(held[3])}</p>' if held else "")
    invalid = f' aria-invalid="true" aria-describedby="{field_id}-error"' if held else ""
    url = threads.reply_url(target_id) if kind == "reply" else threads.edit_url(target_id)
    label = "Reply" if kind == "reply" else "Edit"
    return (f'<details class="thread-form"{" open" if held else ""}><summary>{label}</summary>'
            f'<form method="post" action="{escape(url)}" novalidate>'
            f'<input type="hidden" name="csrf_token" value="{escape(threads.csrf_token)}">'
            f'<input type="hidden" name="path" value="{escape(path)}">'
            f'<label for="{field_id}">{"Your reply" if kind == "reply" else "Your comment"}</label>'
            f'<textarea id="{field_id}" name="body" rows="2" maxlength="4000"{invalid}>{escape(text)}</textarea>'
            f'{error}<button type="submit">{"Send the reply" if kind == "reply" else "Save the change"}</button>'
            f'</form></details>')


def _replies(comment: codeview.Comment, path: str, threads: ThreadForms | None) -> str:
    parts = []
    for reply in comment.replies:
        edit = (_thread_form(threads, path, reply.id, "edit", reply.body)
                if threads and reply.author_id == threads.viewer_id else "")
        parts.append(f'<li class="reply" id="comment-{reply.id}"><p class="comment-meta"><strong>'
                     f'{escape(reply.author)}</strong>{" (edited)" if reply.edited else ""}</p>'
                     f'<p class="comment-body">{escape(reply.body)}</p>{edit}</li>')
    listed = f'<ul class="replies">{"".join(parts)}</ul>' if parts else ""
    if threads is None or comment.from_attempt:
        return listed
    edit = _thread_form(threads, path, comment.id, "edit", comment.body) if comment.author_id == threads.viewer_id \
        else ""
    return listed + edit + _thread_form(threads, path, comment.id, "reply")


def _comment_row(comment: codeview.Comment, path: str, delete_url, csrf_token: str,
                 threads: ThreadForms | None = None) -> str:
    row_id = f"comment-{comment.id}" + (f"-from-{comment.from_attempt}" if comment.from_attempt else "")
    meta = [f"<strong>{escape(comment.author)}</strong> on {comment.lines_label}" + (" (edited)" if comment.edited
                                                                                      else "")]
    if comment.criterion:
        meta.append(f'<span class="badge">{escape(comment.criterion)}</span>')
    if comment.from_attempt:
        meta.append(f"from attempt {comment.from_attempt}"
                    + (" (those lines have changed since)" if comment.moved else ""))
    remove = ""
    if delete_url is not None and not comment.from_attempt:
        remove = (f'<form method="post" class="inline" action="{escape(delete_url(comment.id))}">'
                  f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
                  f'<input type="hidden" name="path" value="{escape(path)}">'
                  f'<button type="submit" class="link">Remove</button></form>')
    earlier = " earlier" if comment.from_attempt else ""
    return (f'<tr class="line-comment" id="{row_id}"><td colspan="3"><div class="comment-card{earlier}">'
            f'<p class="comment-meta">{" · ".join(meta)}</p><p class="comment-body">{escape(comment.body)}</p>'
            f'{remove}{_replies(comment, path, threads)}</div></td></tr>')


@bp.route("/<int:attempt_id>/code/<path:path>")
@login_required
def file(attempt_id: int, path: str):
    attempt, is_learner = _viewable(attempt_id)
    return render_template("code/file.html", **_file_context(attempt, is_learner, path))


def _posted_by_a_mentor(attempt_id: int) -> Attempt:
    """The attempt a mentor's comment form is about; learners may read comments, never post them."""
    attempt, is_learner = _viewable(attempt_id)
    if is_learner:
        abort(403)
    if not ActionForm().validate_on_submit():
        abort(400)
    return attempt


@bp.route("/<int:attempt_id>/code-comments", methods=["GET"])
@login_required
def comments_address(attempt_id: int):
    """The comment form's address opened again (a reload after an error): the file it was about."""
    attempt, is_learner = _viewable(attempt_id)
    path = request.args.get("path", "")
    if attempt.commit and path in source_paths(db(), commit=attempt.commit):
        return redirect(url_for("code.file", attempt_id=attempt.id, path=path))
    return redirect(url_for("code.index", attempt_id=attempt.id))


@bp.route("/<int:attempt_id>/code-comments", methods=["POST"])
@login_required
def add_comment(attempt_id: int):
    attempt = _posted_by_a_mentor(attempt_id)
    session = db()
    path = request.form.get("path", "")
    paths = source_paths(session, commit=attempt.commit) if attempt.commit else {}
    if path not in paths:
        abort(404)
    values = {name: request.form.get(name, "") for name in ("start_line", "end_line", "criterion", "body")}
    try:
        comment = line_comments.add_comment(
            session, attempt=attempt, author=current_user, rubric=submissions.attempt_rubric(session, attempt=attempt),
            path=path, line_count=paths[path], start_line=values["start_line"], end_line=values["end_line"],
            criterion_id=values["criterion"], body=values["body"])
    except reviews.ReviewError as error:
        session.rollback()
        context = _file_context(attempt, False, path, errors=error.errors or {"form": str(error)}, values=values)
        return render_template("code/file.html", **context), 400 if error.errors else 409
    where = f"line {comment.start_line}" if comment.start_line == comment.end_line else \
        f"lines {comment.start_line}–{comment.end_line}"
    flash(f"Comment saved on {path}, {where}. The learner sees it with your decision.", "success")
    return redirect(url_for("code.file", attempt_id=attempt.id, path=path, _anchor=f"L{comment.end_line}"))


@bp.route("/<int:attempt_id>/code-comments/<int:comment_id>/reply", methods=["POST"], endpoint="reply")
@bp.route("/<int:attempt_id>/code-comments/<int:comment_id>/edit", methods=["POST"], endpoint="edit")
@login_required
def answer_comment(attempt_id: int, comment_id: int):
    """A reply under a line comment (the learner after the decision, a mentor at any time), or an author's edit."""
    attempt, is_learner = _viewable(attempt_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    session = db()
    path = request.form.get("path", "")
    if not attempt.commit or path not in source_paths(session, commit=attempt.commit):
        abort(404)
    kind = request.endpoint.rsplit(".", 1)[-1]
    body = request.form.get("body", "")
    try:
        if kind == "reply":
            saved = line_comments.reply(session, attempt=attempt, author=current_user, comment_id=comment_id,
                                        body=body)
        else:
            saved = line_comments.edit(session, attempt=attempt, user=current_user, comment_id=comment_id, body=body)
    except reviews.ReviewError as error:
        session.rollback()
        message = (error.errors or {}).get("body") or str(error)
        context = _file_context(attempt, is_learner, path, held=(comment_id, kind, body, message))
        return render_template("code/file.html", **context), 400 if error.errors else 409
    flash("Reply sent." if kind == "reply" else "Comment changed.", "success")
    return redirect(url_for("code.file", attempt_id=attempt.id, path=path, _anchor=f"comment-{saved.id}"))


@bp.route("/<int:attempt_id>/code-comments/<int:comment_id>/delete", methods=["POST"])
@login_required
def delete_comment(attempt_id: int, comment_id: int):
    attempt = _posted_by_a_mentor(attempt_id)
    session = db()
    path = request.form.get("path", "")
    try:
        line_comments.delete_comment(session, attempt=attempt, user=current_user, comment_id=comment_id)
    except reviews.ReviewError as error:
        session.rollback()
        flash(str(error), "error")
    else:
        flash("Comment removed.", "success")
    if path in source_paths(session, commit=attempt.commit):
        return redirect(url_for("code.file", attempt_id=attempt.id, path=path))
    return redirect(url_for("code.index", attempt_id=attempt.id))


@bp.route("/<int:attempt_id>/changes")
@login_required
def changes(attempt_id: int):
    attempt, is_learner = _viewable(attempt_id)
    session = db()
    previous, earlier = _earlier_comments(attempt, is_learner)
    if previous is None:
        return render_template("code/changes.html", attempt=attempt, previous=None, files=[], available=False)
    available = has_sources(session, commit=previous.commit) and has_sources(session, commit=attempt.commit)
    files = []
    if available:
        old, new = changed_sources(session, old_commit=previous.commit, new_commit=attempt.commit)
        files = codeview.changes(old, new, comments=earlier)
    return render_template("code/changes.html", attempt=attempt, previous=previous, files=files, available=available,
                           commented=len(earlier))


# A fragment longer than this is shown in part: the page must stay quick on a copied 5,000-line file.
MAX_FRAGMENT_LINES = 400


@bp.route("/<int:attempt_id>/similar/<int:match_id>")
@login_required
def similar(attempt_id: int, match_id: int):
    """A near copy's matching fragments side by side: this attempt's lines, and the other side's where the viewer
    may read them (a shipped sample, or a submission of a course the mentor is assigned to)."""
    attempt, is_learner = _viewable(attempt_id)
    session = db()
    match = integrity.near_copy_match(session, attempt=attempt, match_id=match_id)
    copy = next((copy for copy in integrity.near_copies(session, attempt=attempt, viewer=current_user)
                 if copy.match_id == match_id), None) if match is not None and not is_learner else None
    if copy is None:
        abort(404)
    other_commit = None
    if copy.other is not None and copy.other.viewable:
        other_commit = session.get(Attempt, copy.other.attempt_id).commit
    pairs = []
    for piece in integrity.match_fragments(match, from_report_id=attempt.report_id):
        mine = _excerpt(read_highlighted(session, commit=attempt.commit, path=piece.path),
                        piece.first_line, piece.last_line)
        if copy.sample:
            theirs = _excerpt(_sample_lines(copy.sample, piece.other_path), piece.other_first_line,
                              piece.other_last_line)
        elif other_commit:
            theirs = _excerpt(read_highlighted(session, commit=other_commit, path=piece.other_path),
                              piece.other_first_line, piece.other_last_line)
        else:
            theirs = None
        pairs.append((piece, mine, theirs))
    return render_template("code/similar.html", attempt=attempt, copy=copy, pairs=pairs)


def _excerpt(found, first: int, last: int) -> list[tuple[int, Markup]] | None:
    if found is None:
        return None
    _, lines = found
    last = min(last, len(lines), first + MAX_FRAGMENT_LINES - 1)
    return [(number, lines[number - 1]) for number in range(max(1, first), last + 1)]


def _sample_lines(sample: str, path: str):
    root = integrity.shipped_samples().get(sample)
    if root is None:
        return None
    target = (root / path).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        return None
    text = target.read_text(encoding="utf-8", errors="replace")
    return text, codeview.highlight_lines(path, text)
