"""The code view: a file highlighted line by line, with its coverage, complexity and comments; changes between commits."""

import difflib
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# A lexer on a huge generated file is slow for nothing: past this it is shown as plain text.
MAX_HIGHLIGHTED_CHARS = 2_000_000
DIFF_CONTEXT_LINES = 3

_CLASS_OF: dict[Any, str] = {}


def _css_class(token_type) -> str:
    """Pygments' short class for a token type (`k`, `s2`, `nf` ...), from the nearest standard type."""
    cached = _CLASS_OF.get(token_type)
    if cached is not None:
        return cached
    walk = token_type
    while walk not in STANDARD_TYPES and walk.parent is not None:
        walk = walk.parent
    _CLASS_OF[token_type] = STANDARD_TYPES.get(walk, "")
    return _CLASS_OF[token_type]


def language_of(path: str) -> str:
    try:
        return get_lexer_for_filename(path).name
    except ClassNotFound:
        return "Text"


def highlight_lines(path: str, text: str) -> list[Markup]:
    """One escaped, highlighted HTML fragment per line of `text` (no line keeps its newline)."""
    options = {"stripnl": False, "stripall": False, "ensurenl": False, "tabsize": 0}
    try:
        lexer = get_lexer_for_filename(path, **options) if len(text) <= MAX_HIGHLIGHTED_CHARS else TextLexer(**options)
    except ClassNotFound:
        lexer = TextLexer(**options)
    lines: list[str] = []
    current: list[str] = []
    for token_type, value in lexer.get_tokens(text):
        css = _css_class(token_type)
        pieces = value.split("\n")
        for index, piece in enumerate(pieces):
            if index:
                lines.append("".join(current))
                current = []
            if piece:
                escaped = escape(piece)
                current.append(f'<span class="{css}">{escaped}</span>' if css else str(escaped))
    if current:
        lines.append("".join(current))
    expected = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    lines = lines[:expected] + [""] * (expected - len(lines))
    return [Markup(line) for line in lines]


@dataclass(frozen=True)
class Comment:
    id: int
    path: str
    start_line: int
    end_line: int
    body: str
    author: str
    criterion: str | None      # the criterion's title
    created_at: Any
    from_attempt: int | None = None   # set when carried over from an earlier attempt
    moved: bool = False               # its lines changed since that attempt
    author_id: int | None = None
    edited: bool = False
    replies: tuple["Reply", ...] = ()

    @property
    def lines_label(self) -> str:
        return f"line {self.start_line}" if self.start_line == self.end_line else \
            f"lines {self.start_line}–{self.end_line}"


@dataclass(frozen=True)
class Reply:
    """An answer under a line comment, by the learner or a mentor."""

    id: int
    author: str
    author_id: int
    body: str
    created_at: Any
    edited: bool = False


@dataclass(frozen=True)
class CodeLine:
    number: int
    html: Markup
    coverage: str | None = None        # "missed" (never ran) or "partial" (a branch never taken)
    functions: tuple[dict, ...] = ()   # the worst functions that start here: name, complexity, rank
    comments: tuple[Comment, ...] = ()
    failures: tuple[dict, ...] = ()    # failing tests defined here: name, outcome, message


@dataclass(frozen=True)
class FileView:
    path: str
    language: str
    lines: tuple[CodeLine, ...]
    coverage: dict | None             # the file's figures from the report; None when it is not measured code
    criteria: tuple[str, ...] = ()    # artifact criteria this file is evidence for

    @property
    def missed(self) -> int:
        return sum(1 for line in self.lines if line.coverage == "missed")

    @property
    def partial(self) -> int:
        return sum(1 for line in self.lines if line.coverage == "partial")


def coverage_by_path(coverage: dict | None) -> dict[str, dict]:
    return {entry["path"]: entry for entry in (coverage or {}).get("files") or [] if isinstance(entry, dict)}


def artifact_criteria_by_path(artifacts, titles: dict[str, str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in artifacts or ():
        if item.get("path"):
            found.setdefault(item["path"], []).append(titles.get(item.get("criterion"), item.get("criterion", "")))
    return found


def file_view(path: str, text: str, *, coverage: dict | None, complexity: dict | None,
              comments: list[Comment] = (), criteria: list[str] = (),
              highlighted: list[Markup] | None = None, failures: list[dict] = ()) -> FileView:
    """One file of the code view. `coverage` is the report's coverage, `complexity` its complexity figures,
    `failures` the report's failing tests (shown at their line); `highlighted` is `highlight_lines(path, text)`
    when the caller has it already."""
    failing: dict[int, list[dict]] = {}
    for failure in failures or ():
        if failure.get("file") == path and isinstance(failure.get("line"), int):
            failing.setdefault(failure["line"], []).append(failure)
    figures = coverage_by_path(coverage).get(path)
    missed = set(figures.get("missing_lines") or ()) if figures else set()
    partial = set(figures.get("partial_lines") or ()) if figures else set()
    functions: dict[int, list[dict]] = {}
    for function in (complexity or {}).get("worst") or ():
        if function.get("path") == path and isinstance(function.get("line"), int):
            functions.setdefault(function["line"], []).append(function)
    by_line: dict[int, list[Comment]] = {}
    for comment in comments:
        by_line.setdefault(comment.end_line, []).append(comment)
    lines = tuple(
        CodeLine(number, html,
                 "missed" if number in missed else "partial" if number in partial else None,
                 tuple(functions.get(number, ())), tuple(by_line.get(number, ())),
                 tuple(failing.get(number, ())))
        for number, html in enumerate(highlighted if highlighted is not None else highlight_lines(path, text),
                                      start=1)
    )
    return FileView(path, language_of(path), lines, figures, tuple(criteria))


@dataclass(frozen=True)
class FileEntry:
    """A row of the file list: what the evidence says about one file."""

    path: str
    lines: int
    line_percent: float | None
    missed: int
    worst_complexity: int | None
    criteria: tuple[str, ...]
    comments: int


def file_index(paths: dict[str, int], *, coverage: dict | None, complexity: dict | None,
               artifact_criteria: dict[str, list[str]], comment_counts: dict[str, int]) -> list[FileEntry]:
    figures = coverage_by_path(coverage)
    worst: dict[str, int] = {}
    for function in (complexity or {}).get("worst") or ():
        worst[function.get("path")] = max(worst.get(function.get("path"), 0), function.get("complexity") or 0)
    return [
        FileEntry(path, lines, figures[path]["line_percent"] if path in figures else None,
                  len(figures[path].get("missing_lines") or ()) if path in figures else 0,
                  worst.get(path), tuple(artifact_criteria.get(path, ())), comment_counts.get(path, 0))
        for path, lines in paths.items()
    ]


# difflib is quadratic on repetitive lines without its "junk" heuristic, which in turn gives poor diffs of code:
# the unchanged head and tail are matched first, and the heuristic is used only on a long remaining middle.
AUTOJUNK_ABOVE_LINES = 2_000


def _opcodes(old: list[str], new: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes for two line lists, fast when the change is a small part of a long file."""
    head = 0
    while head < len(old) and head < len(new) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < len(old) - head and tail < len(new) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    middle_old, middle_new = old[head:len(old) - tail], new[head:len(new) - tail]
    matcher = difflib.SequenceMatcher(None, middle_old, middle_new,
                                      autojunk=max(len(middle_old), len(middle_new)) > AUTOJUNK_ABOVE_LINES)
    codes = [("equal", 0, head, 0, head)] if head else []
    codes += [(tag, a1 + head, a2 + head, b1 + head, b2 + head) for tag, a1, a2, b1, b2 in matcher.get_opcodes()
              if not (tag == "equal" and a1 == a2)]
    if tail:
        codes.append(("equal", len(old) - tail, len(old), len(new) - tail, len(new)))
    merged: list[tuple[str, int, int, int, int]] = []
    for code in codes:
        if merged and merged[-1][0] == code[0] == "equal":
            last = merged.pop()
            code = ("equal", last[1], code[2], last[3], code[4])
        merged.append(code)
    return merged


class _TrimmedMatcher(difflib.SequenceMatcher):
    """difflib's matcher (and so its own hunk grouping), over the opcodes `_opcodes` found."""

    def __init__(self, old: list[str], new: list[str]):
        super().__init__(None, old, new, autojunk=False)
        self._codes = _opcodes(old, new)

    def get_opcodes(self):
        return list(self._codes)


def line_mapping(old_text: str, new_text: str) -> dict[int, int]:
    """Old line number → new line number for every line that is unchanged between the two texts."""
    mapping: dict[int, int] = {}
    for tag, old_start, old_end, new_start, _ in _opcodes(old_text.splitlines(), new_text.splitlines()):
        if tag == "equal":
            for offset in range(old_end - old_start):
                mapping[old_start + offset + 1] = new_start + offset + 1
    return mapping


def carry_over(comment: Comment, mapping: dict[int, int], *, from_attempt: int, new_line_count: int) -> Comment:
    """An earlier attempt's comment placed on the new text: on the same lines where they are unchanged, else near
    where they were, marked as moved."""
    start, end = mapping.get(comment.start_line), mapping.get(comment.end_line)
    moved = start is None or end is None
    if moved:
        earlier = [new for old, new in mapping.items() if old <= comment.end_line]
        end = max(earlier) if earlier else 1
        start = end
    end = max(1, min(end, max(new_line_count, 1)))
    start = max(1, min(start, end))
    return Comment(comment.id, comment.path, start, end, comment.body, comment.author, comment.criterion,
                   comment.created_at, from_attempt=from_attempt, moved=moved, author_id=comment.author_id,
                   edited=comment.edited, replies=comment.replies)


@dataclass(frozen=True)
class DiffLine:
    kind: str                  # "context", "added", "removed", "gap"
    old_number: int | None
    new_number: int | None
    text: str
    comments: tuple[Comment, ...] = ()


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str                # "added", "removed", "changed"
    added: int
    removed: int
    lines: tuple[DiffLine, ...] = field(default=())


def changes(old: dict[str, str], new: dict[str, str], *, comments: list[Comment] = (),
            context: int = DIFF_CONTEXT_LINES) -> list[FileChange]:
    """What changed between two commits' files, with the earlier attempt's comments on the old lines they were
    left on (a comment on a removed line stays beside it)."""
    by_old_line: dict[tuple[str, int], list[Comment]] = {}
    for comment in comments:
        by_old_line.setdefault((comment.path, comment.end_line), []).append(comment)
    result = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        status = "added" if before is None else "removed" if after is None else "changed"
        old_lines, new_lines = (before or "").splitlines(), (after or "").splitlines()
        lines: list[DiffLine] = []
        added = removed = 0
        for group in _TrimmedMatcher(old_lines, new_lines).get_grouped_opcodes(context):
            if lines:
                lines.append(DiffLine("gap", None, None, ""))
            for tag, old_start, old_end, new_start, new_end in group:
                if tag == "equal":
                    for offset in range(old_end - old_start):
                        number = old_start + offset + 1
                        lines.append(DiffLine("context", number, new_start + offset + 1, old_lines[number - 1],
                                              tuple(by_old_line.get((path, number), ()))))
                    continue
                for number in range(old_start + 1, old_end + 1):
                    removed += 1
                    lines.append(DiffLine("removed", number, None, old_lines[number - 1],
                                          tuple(by_old_line.get((path, number), ()))))
                for number in range(new_start + 1, new_end + 1):
                    added += 1
                    lines.append(DiffLine("added", None, number, new_lines[number - 1]))
        result.append(FileChange(path, status, added, removed, tuple(lines)))
    return result


def neighbours(paths: list[str], path: str) -> tuple[str | None, str | None]:
    """The files before and after `path` in the list the file view walks (None at either end or when absent)."""
    if path not in paths:
        return None, None
    index = paths.index(path)
    return (paths[index - 1] if index else None), (paths[index + 1] if index + 1 < len(paths) else None)


def by_folder(entries: list[FileEntry]) -> list[tuple[str, list[FileEntry]]]:
    """The file list as a tree one level deep: each folder (the path without its file name) with its files."""
    folders: dict[str, list[FileEntry]] = {}
    for entry in sorted(entries, key=lambda entry: (entry.path.rpartition("/")[0], entry.path)):
        folders.setdefault(entry.path.rpartition("/")[0], []).append(entry)
    return list(folders.items())
