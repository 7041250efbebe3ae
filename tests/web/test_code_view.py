"""The code view end to end: the real worker assesses a real repository, its files are kept, the page marks the
lines coverage.py found unrun, a mentor comments on lines, the learner reads the comments with the decision and
finds them again on the next attempt, beside what changed."""

import re
import textwrap

import pytest
from sqlmodel import Session, func, select

from assessor.domain.models import SCORED, Attempt, LineComment, SourceFileRow
from assessor.domain.submissions import load_report

from tests.conftest import git, write_tree
from tests.web.conftest import csrf_token
from tests.web.test_queue import TINY_CAPSTONE, submit, wait_until_finished

pytestmark = pytest.mark.slow

HALF_TESTED = {**TINY_CAPSTONE, "tests/test_calc.py": """\
    from calc import add


    def test_add():
        assert add(2, 3) == 5
    """}


def _row_classes(html: str) -> dict[int, str]:
    return {int(number): css for number, css in re.findall(r'<tr id="L(\d+)"(?: class="([a-z]+)")?>', html)}


def _comment(auth, attempt_id, **fields):
    page = f"/attempts/{attempt_id}/code/calc.py"
    data = {"path": "calc.py", "start_line": "", "end_line": "", "criterion": "", "body": "", **fields}
    return auth.post(f"/attempts/{attempt_id}/code-comments", data, token_from=page)


def test_code_view_marks_unrun_lines_and_carries_a_mentors_comment_to_the_next_attempt(
        app, client, auth, make_user, make_repo, worker):
    learner, mentor = make_user(), make_user("mentor", courses=["test-capstone"])
    outsider, other_mentor = make_user(), make_user("mentor", courses=["other-capstone"])
    repo = make_repo(HALF_TESTED)
    auth.as_(learner)
    first = submit(client, str(repo))
    assert wait_until_finished(client, first)[0]["status"] == SCORED
    engine = app.extensions["assessor.engine"]
    with Session(engine) as session:
        attempt = session.get(Attempt, first)
        report = load_report(session, attempt=attempt)
        stored = set(session.exec(select(SourceFileRow.path).where(SourceFileRow.commit == attempt.commit)))
    assert {"calc.py", "tests/test_calc.py", "docs/guide.md", "pyproject.toml"} <= stored
    [calc] = [entry for entry in report.coverage["files"] if entry["path"] == "calc.py"]
    assert calc["missing_lines"]  # clamp never ran

    index = client.get(f"/attempts/{first}/code").get_data(as_text=True)
    assert "calc.py" in index and "docs/guide.md" in index and f"{calc['line_percent']:.0f}% covered" in index
    page = client.get(f"/attempts/{first}/code/calc.py").get_data(as_text=True)
    classes = _row_classes(page)
    assert sorted(n for n, css in classes.items() if css == "missed") == calc["missing_lines"]
    assert '<span class="k">def</span>' in page and "line-comment-form" not in page  # a learner cannot comment
    assert "Open the code view" in client.get(f"/learner/attempts/{first}").get_data(as_text=True)
    # Half tested, it cannot pass as it stands: the learner asks for the mentor's feedback on it.
    assert attempt.review_state == "held"
    auth.post(f"/learner/attempts/{first}/ask-feedback", token_from=f"/learner/attempts/{first}")

    for stranger in (outsider, other_mentor):  # neither the learner's peers nor another course's mentors
        auth.as_(stranger)
        assert client.get(f"/attempts/{first}/code/calc.py").status_code == 404

    auth.as_(mentor)
    assert _comment(auth, first, start_line="8", body="too early").status_code == 409  # review not started
    auth.post(f"/mentor/attempts/{first}/start", {}, token_from=f"/mentor/attempts/{first}")
    assert "line-comment-form" in client.get(f"/attempts/{first}/code/calc.py").get_data(as_text=True)
    for bad, field in (({"start_line": "0", "body": "x"}, "choose a line between 1 and"),
                       ({"start_line": "9", "end_line": "3", "body": "x"}, "the last line must be between 9"),
                       ({"start_line": "8", "body": "   "}, "write the comment"),
                       ({"start_line": "8", "body": "x", "criterion": "nope"}, "one of the rubric")):
        response = _comment(auth, first, **bad)
        assert response.status_code == 400 and field in response.get_data(as_text=True)
    kept = _comment(auth, first, start_line="6", end_line="9", body="  ").get_data(as_text=True)
    assert 'id="start_line" name="start_line" inputmode="numeric" value="6"' in kept and 'value="9"' in kept
    # the form's address opened again lands on the file it was about, not "Method not allowed"
    again = client.get(f"/attempts/{first}/code-comments?path=calc.py")
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/attempts/{first}/code/calc.py")
    assert client.get(f"/attempts/{first}/code-comments?path=../x").headers["Location"].endswith(f"/attempts/{first}/code")
    assert _comment(auth, first, path="no/such.py", start_line="1", body="x").status_code == 404
    saved = _comment(auth, first, start_line="6", end_line="10", criterion="coverage",
                     body="clamp is never tested <b>here</b>")
    assert saved.status_code == 302 and saved.location.endswith("/code/calc.py#L10")
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(LineComment)).one() == 1
    mentor_page = client.get(f"/attempts/{first}/code/calc.py").get_data(as_text=True)
    assert "clamp is never tested &lt;b&gt;here&lt;/b&gt;" in mentor_page and "lines 6–10" in mentor_page

    auth.as_(learner)
    assert _comment(auth, first, start_line="1", body="self-praise").status_code == 403
    assert "clamp is never tested" not in client.get(f"/attempts/{first}/code/calc.py").get_data(as_text=True)
    assert "clamp is never tested" not in client.get(f"/learner/attempts/{first}").get_data(as_text=True)

    auth.as_(mentor)
    decided = auth.post(f"/mentor/attempts/{first}/review", {
        "level-design": "1", "level-defense": "1", "comment": "Test clamp.", "action": "request_changes"},
        token_from=f"/mentor/attempts/{first}")
    assert decided.status_code == 302

    auth.as_(learner)
    attempt_page = client.get(f"/learner/attempts/{first}").get_data(as_text=True)
    assert "Comments on your code" in attempt_page and "clamp is never tested" in attempt_page
    learner_view = client.get(f"/attempts/{first}/code/calc.py").get_data(as_text=True)
    assert "clamp is never tested" in learner_view and "<summary>Reply</summary>" in learner_view
    with Session(engine) as session:
        comment_id = session.exec(select(LineComment.id)).one()
    reply_url = f"/attempts/{first}/code-comments/{comment_id}/reply"
    blank = auth.post(reply_url, {"path": "calc.py", "body": "  "}, token_from=f"/attempts/{first}/code/calc.py")
    assert blank.status_code == 400 and "write the reply" in blank.get_data(as_text=True)
    assert '<details class="thread-form" open>' in blank.get_data(as_text=True)  # the form stays open, in place
    replied = auth.post(reply_url, {"path": "calc.py", "body": "Added a test for clamp in attempt 2."},
                        token_from=f"/attempts/{first}/code/calc.py")
    assert replied.status_code == 302 and "/code/calc.py#comment-" in replied.location
    assert "Added a test for clamp in attempt 2." in client.get(f"/attempts/{first}/code/calc.py").get_data(
        as_text=True)
    assert client.get(reply_url).status_code == 302  # the form's address reloaded

    # The learner tests clamp and renames a line above it: the comment follows its lines to attempt 2.
    write_tree(repo, {"calc.py": "# arithmetic helpers\n" + textwrap.dedent(TINY_CAPSTONE["calc.py"]),
                      "tests/test_calc.py": TINY_CAPSTONE["tests/test_calc.py"]})
    git(repo, "commit", "-qam", "test clamp")
    second = submit(client, str(repo))
    assert wait_until_finished(client, second)[0]["status"] == SCORED
    page = client.get(f"/attempts/{second}/code/calc.py").get_data(as_text=True)
    assert "missed" not in _row_classes(page).values()
    assert "from attempt 1" in page and "clamp is never tested" in page
    carried = re.search(r'<strong>[^<]+</strong> on (lines \d+–\d+)', page).group(1)
    assert carried == "lines 7–11"  # one line was added above them
    changes = client.get(f"/attempts/{second}/changes").get_data(as_text=True)
    assert "Changes since attempt 1" in changes and "calc.py" in changes and "tests/test_calc.py" in changes
    assert "+1 −0" in changes  # calc.py: the comment line added on top
    # the changed files listed first with their counts, each file's diff folded below (open when it has comments)
    assert changes.index('<table class="changed-files">') < changes.index('<details class="file-change" id="change-1"')
    assert "2 files changed" in changes
