"""The code view's engine: highlighting line by line, escaping, coverage marks, moving comments, diffs, snapshots."""

import os

import pytest

from assessor.engine.codeview import Comment, carry_over, changes, file_view, highlight_lines, line_mapping
from assessor.engine.sources import SourceLimits, snapshot


@pytest.mark.parametrize("text, count", [
    ("", 0), ("x = 1", 1), ("x = 1\n", 1), ("x = 1\n\n", 2), ('s = """a\nb\n"""\n', 3), ("a\r\nb\r\n", 2),
])
def test_one_fragment_per_line(text, count):
    assert len(highlight_lines("m.py", text)) == count


def test_markup_is_escaped_and_tokens_are_classed():
    [line] = highlight_lines("m.py", "def f(): return '<script>alert(1)</script>'\n")
    assert "<script>" not in line and "&lt;script&gt;" in line
    assert '<span class="k">def</span>' in line and '<span class="nf">f</span>' in line


def test_a_multiline_token_is_split_without_losing_text():
    lines = highlight_lines("m.ts", "const s = `one\ntwo`;\n")
    assert len(lines) == 2 and "one" in lines[0] and "two" in lines[1]


def test_an_unknown_extension_is_plain_escaped_text():
    assert [str(line) for line in highlight_lines("notes.unknownext", "a < b\n")] == ["a &lt; b"]


def test_file_view_marks_missed_and_partial_lines_and_the_worst_functions():
    text = "def f(x):\n    if x:\n        return 1\n    return 2\n"
    coverage = {"files": [{"path": "app/m.py", "missing_lines": [3], "partial_lines": [2], "line_percent": 75.0}]}
    complexity = {"worst": [{"name": "f", "path": "app/m.py", "line": 1, "complexity": 2, "rank": "A"},
                            {"name": "g", "path": "other.py", "line": 1, "complexity": 9, "rank": "B"}]}
    view = file_view("app/m.py", text, coverage=coverage, complexity=complexity)
    assert [line.coverage for line in view.lines] == [None, "partial", "missed", None]
    assert [f["name"] for f in view.lines[0].functions] == ["f"]
    assert (view.missed, view.partial) == (1, 1)
    assert file_view("other.py", text, coverage=coverage, complexity=None).coverage is None


def _comment(start, end, path="m.py"):
    return Comment(1, path, start, end, "why?", "Mentor", None, None)


def test_line_mapping_follows_unchanged_lines():
    assert line_mapping("a\nb\nc\n", "new\na\nc\n") == {1: 2, 3: 3}


@pytest.mark.parametrize("start, end, expected, moved", [
    (1, 1, (2, 2), False),      # the line moved down by one
    (3, 3, (3, 3), False),
    (2, 2, (2, 2), True),       # its line was removed: placed after the nearest unchanged line above
    (1, 3, (2, 3), False),
])
def test_a_comment_is_carried_to_the_next_attempt(start, end, expected, moved):
    mapping = line_mapping("a\nb\nc\n", "new\na\nc\n")
    carried = carry_over(_comment(start, end), mapping, from_attempt=1, new_line_count=3)
    assert ((carried.start_line, carried.end_line), carried.moved, carried.from_attempt) == (expected, moved, 1)


def test_changes_list_added_removed_and_changed_files_with_comments_on_their_old_lines():
    old = {"m.py": "a\nb\nc\n", "gone.py": "x\n", "same.py": "s\n"}
    new = {"m.py": "a\nB\nc\n", "new.py": "y\n", "same.py": "s\n"}
    found = {change.path: change for change in changes(old, new, comments=[_comment(2, 2)])}
    assert {path: (c.status, c.added, c.removed) for path, c in found.items()} == {
        "gone.py": ("removed", 0, 1), "m.py": ("changed", 1, 1), "new.py": ("added", 1, 0)}
    removed = [line for line in found["m.py"].lines if line.kind == "removed"]
    assert removed[0].text == "b" and [c.body for c in removed[0].comments] == ["why?"]


def test_snapshot_keeps_text_and_skips_links_binaries_locks_and_big_files(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\0\0\0binary")
    (tmp_path / "package-lock.json").write_text("{}")
    (tmp_path / "big.txt").write_text("x" * 2000)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    secret = tmp_path.parent / "host-secret.txt"
    secret.write_text("signing key")
    os.symlink(secret, tmp_path / "link.txt")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]")
    found = snapshot(tmp_path, SourceLimits(max_file_bytes=1000))
    assert found.paths() == ["src/app.py"]
    assert dict(found.skipped) == {"big.txt": "larger than 1 kB", "latin1.txt": "not UTF-8 text", "link.txt":
                                   "symbolic link or unreadable", "logo.png": "binary", "package-lock.json": "lock file"}
    assert all("signing key" not in source.text for source in found.files)


def test_a_failing_test_is_shown_at_its_line_with_its_message():
    text = "def test_ok():\n    pass\n\n\ndef test_wrong():\n    assert 1 == 2\n"
    failure = {"name": "test_wrong", "file": "tests/test_x.py", "line": 5, "outcome": "failed",
               "message": "AssertionError: assert 1 == 2"}
    other = {**failure, "file": "tests/test_y.py"}
    view = file_view("tests/test_x.py", text, coverage=None, complexity=None, failures=[failure, other])
    assert [line.number for line in view.lines if line.failures] == [5]
    assert view.lines[4].failures[0]["message"] == "AssertionError: assert 1 == 2"


@pytest.mark.parametrize(("path", "expected"), [
    ("app/a.py", (None, "app/b.py")), ("app/b.py", ("app/a.py", "tests/t.py")), ("tests/t.py", ("app/b.py", None)),
    ("elsewhere.py", (None, None)),
])
def test_previous_and_next_file(path, expected):
    from assessor.engine.codeview import neighbours

    assert neighbours(["app/a.py", "app/b.py", "tests/t.py"], path) == expected


def test_the_file_list_is_grouped_by_folder():
    from assessor.engine.codeview import FileEntry, by_folder

    entries = [FileEntry(path, 1, None, 0, None, (), 0) for path in ("tests/t.py", "README.md", "app/b.py",
                                                                      "app/a.py")]
    assert [(folder, [entry.path for entry in files]) for folder, files in by_folder(entries)] == [
        ("", ["README.md"]), ("app", ["app/a.py", "app/b.py"]), ("tests", ["tests/t.py"])]
