"""Check the written artifacts a rubric requires: found by glob, then sections, length and fields."""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from fnmatch import translate
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

import yaml

from assessor.errors import MeasureError

# Enough for any real document; a bigger file is checked on its first part only.
MAX_READ_BYTES = 512 * 1024
# When a pattern matches many files (docs/adr/*.md), only this many shortest paths are compared.
MAX_CANDIDATES = 50
# Bounds the walk over a parsed YAML/TOML/JSON document (YAML aliases can make it look enormous).
MAX_STRUCTURE_NODES = 100_000
# Directories that hold tooling or dependencies, never the learner's documents.
SKIPPED_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "bower_components", ".venv", "venv", "virtualenv",
    "site-packages", "__pycache__", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".eggs", "vendor", "third_party",
})
STRUCTURED_KINDS = {".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".json": "JSON"}


@dataclass(frozen=True)
class ArtifactSpec:
    """One required document, as a rubric describes it."""

    id: str
    title: str
    patterns: tuple[str, ...]
    sections: tuple[str, ...] = ()
    min_words: int = 0
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArtifactResult:
    """What was found for one ArtifactSpec. status: "complete", "incomplete" or "missing"."""

    id: str
    title: str
    status: str
    path: str | None  # relative to the checkout, posix
    missing_sections: tuple[str, ...]  # the spec strings, alternatives included ("Alerts|Alerting")
    missing_fields: tuple[str, ...]
    words: int
    problems: tuple[str, ...]
    expected: tuple[str, ...] = ()  # the rubric's path patterns, to say where a missing document belongs

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "path": self.path,
            "missing_sections": list(self.missing_sections),
            "missing_fields": list(self.missing_fields),
            "words": self.words,
            "problems": list(self.problems),
            "expected": list(self.expected),
        }


def section_words(spec_string: str) -> str:
    """A section as a reader says it: "Alternatives|Options considered" is "Alternatives (or Options considered)"."""
    first, *others = [name.strip() for name in spec_string.split("|")]
    return f"{first} (or {', '.join(others)})" if others else first



def is_inside(path: Path, root: Path) -> bool:
    """True when `path`, with every symlink resolved, stays inside `root`."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True

def check_artifacts(root: Path, specs: Sequence[ArtifactSpec]) -> list[ArtifactResult]:
    """One result per spec, in order. Symbolic links are never followed or read."""
    root = Path(root)
    if not root.is_dir():
        raise MeasureError(f"cannot check written artifacts: {root} is not a directory")
    tree = _list_tree(root)
    return [_check_one(root, tree, spec) for spec in specs]


# ---------------------------------------------------------------- finding files


@dataclass
class _Tree:
    files: list[str] = field(default_factory=list)  # relative posix paths of real files
    links: list[tuple[str, bool]] = field(default_factory=list)  # (relative path, points at a directory)


def _list_tree(root: Path) -> _Tree:
    """Every file under root, without entering symlinked, tooling or dependency directories."""
    tree = _Tree()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            path = here / name
            if path.is_symlink():
                tree.links.append((_relative(path, root), True))
            elif name not in SKIPPED_DIRS and not (path / "pyvenv.cfg").exists():
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            if path.is_symlink():
                tree.links.append((_relative(path, root), False))
            else:
                tree.files.append(_relative(path, root))
    return tree


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


@lru_cache(maxsize=1024)
def _segment_regex(segment: str) -> re.Pattern[str]:
    return re.compile(translate(segment))


def _split_pattern(pattern: str) -> tuple[str, ...]:
    # Case-insensitive: docs/runbook*.md finds docs/Runbook.md, which is what a learner means.
    return tuple(part for part in PurePosixPath(pattern.lower()).parts if part not in ("", "."))


def _glob_match(parts: Sequence[str], pattern: Sequence[str], *, prefix: bool = False) -> bool:
    """Does a lower-cased path match a glob split into segments? `**` spans zero or more directories.

    With prefix=True, `parts` is a directory and the question is whether something inside it could match.
    """
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_glob_match(parts[skip:], pattern[1:], prefix=prefix) for skip in range(len(parts) + 1))
    if not parts:
        return prefix
    return bool(_segment_regex(pattern[0]).match(parts[0])) and _glob_match(parts[1:], pattern[1:], prefix=prefix)


def _matching(paths: Iterable[str], patterns: list[tuple[str, ...]], *, prefix: bool = False) -> list[str]:
    # One regex on the file name first: it rejects nearly every file of a big tree in a single C call.
    names = None if prefix or any(not p or p[-1] == "**" for p in patterns) else _names_regex(tuple(patterns))
    found = []
    for path in paths:
        lowered = path.lower()
        if names is not None and not names.match(lowered.rpartition("/")[2]):
            continue
        parts = lowered.split("/")
        if any(_glob_match(parts, pattern, prefix=prefix) for pattern in patterns):
            found.append(path)
    return found


@lru_cache(maxsize=256)
def _names_regex(patterns: tuple[tuple[str, ...], ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{translate(pattern[-1])})" for pattern in patterns))


def _link_notes(tree: _Tree, patterns: list[tuple[str, ...]]) -> list[str]:
    """Say which symbolic links would have matched, so a learner knows why their document was not found."""
    link_files = [path for path, is_dir in tree.links if not is_dir]
    link_dirs = [path for path, is_dir in tree.links if is_dir]
    notes = [f"{path} is a symbolic link; not read" for path in _matching(link_files, patterns)]
    notes += [f"{path}/ is a symbolic link to a directory; not followed"
              for path in _matching(link_dirs, patterns, prefix=True)]
    return notes


# ---------------------------------------------------------------- checking one spec


@dataclass
class _Candidate:
    """One matching file, evaluated against every check of the spec."""

    path: str
    readable: bool = True
    missing_sections: tuple[str, ...] = ()
    missing_fields: tuple[str, ...] = ()
    words: int = 0
    problems: list[str] = field(default_factory=list)
    passed: int = 0  # checks met, to choose between several matching files
    complete: bool = False


def _check_one(root: Path, tree: _Tree, spec: ArtifactSpec) -> ArtifactResult:
    patterns = [_split_pattern(pattern) for pattern in spec.patterns]
    matches = sorted(_matching(tree.files, patterns), key=lambda path: (len(path), path))
    candidates = [_evaluate(root, path, spec) for path in matches[:MAX_CANDIDATES]]
    readable = [candidate for candidate in candidates if candidate.readable]
    if not readable:
        problems = [problem for candidate in candidates for problem in candidate.problems]
        return ArtifactResult(
            id=spec.id, title=spec.title, status="missing", path=None, missing_sections=spec.sections,
            missing_fields=spec.fields, words=0, problems=tuple(problems + _link_notes(tree, patterns)),
            expected=spec.patterns,
        )
    best = max(readable, key=lambda candidate: candidate.passed)  # first of equals: the shortest path
    problems = list(best.problems)
    if len(matches) > 1:
        others = [path for path in matches if path != best.path]
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        problems.append(f"{len(matches)} files matched; chose {best.path}, which meets the most checks "
                        f"(also matched: {shown})")
    return ArtifactResult(
        id=spec.id, title=spec.title, status="complete" if best.complete else "incomplete", path=best.path,
        missing_sections=best.missing_sections, missing_fields=best.missing_fields, words=best.words,
        problems=tuple(problems), expected=spec.patterns,
    )


def _evaluate(root: Path, relative: str, spec: ArtifactSpec) -> _Candidate:
    candidate = _Candidate(path=relative)
    try:
        text, truncated = _read_text(root / relative, root)
    except _Unreadable as error:
        candidate.readable = False
        candidate.problems.append(f"{relative} {error}")
        return candidate
    if truncated:
        candidate.problems.append(f"{relative} is over {MAX_READ_BYTES // 1024} KB; only the start was checked")
    empty = not text.strip()
    if empty:
        candidate.problems.append(f"{relative} is empty")

    suffix = PurePosixPath(relative).suffix.lower()
    headings = [] if suffix in STRUCTURED_KINDS else _headings(text, rst_titles=suffix in (".rst", ".txt"))
    candidate.missing_sections = tuple(wanted for wanted in spec.sections if not _has_section(wanted, headings))

    candidate.words = _count_words(text)
    words_ok = candidate.words >= spec.min_words
    if not words_ok:
        candidate.problems.append(f"has {candidate.words} words; at least {spec.min_words} expected")

    if spec.fields:
        keys, parse_error = _field_keys(text, suffix, headings)
        candidate.missing_fields = tuple(wanted for wanted in spec.fields if not _has_field(wanted, keys))
        if parse_error:
            candidate.problems.append(
                f"could not be parsed as {STRUCTURED_KINDS[suffix]} ({parse_error}); "
                f"fields counted as missing: {', '.join(candidate.missing_fields)}"
            )

    candidate.passed = (len(spec.sections) - len(candidate.missing_sections)
                        + len(spec.fields) - len(candidate.missing_fields) + words_ok - empty)
    candidate.complete = not (candidate.missing_sections or candidate.missing_fields or not words_ok or empty)
    return candidate


class _Unreadable(Exception):
    """The matching file cannot be read as a document; the message says why."""


def _read_text(path: Path, root: Path) -> tuple[str, bool]:
    """The file's text (UTF-8, bad bytes replaced) and whether it was cut at MAX_READ_BYTES."""
    if not is_inside(path, root):
        raise _Unreadable("resolves outside the repository; not read")
    try:
        # O_NOFOLLOW and O_NONBLOCK: a file swapped for a link or a FIFO after listing is refused, not followed.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise _Unreadable(f"could not be opened ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("is not a regular file; not read")
        if info.st_nlink > 1:
            # git never checks out hard links; one could share its content with a file outside the repository.
            raise _Unreadable("is a hard link; not read")
        data = handle.read(MAX_READ_BYTES + 1)
    text = data[:MAX_READ_BYTES].decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff"), len(data) > MAX_READ_BYTES


# ---------------------------------------------------------------- sections and words

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_BOLD_LINE = re.compile(r"^ {0,3}(?:\*\*|__)(.+?)(?:\*\*|__):?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`:#*+._!$%&,/;<>?@\\|])\1{2,}[ \t]*$")
# Bullets and quotes only: "1. Context" over a line of "=" is how learners number sections.
_BULLET_OR_QUOTE = re.compile(r"^ {0,3}[-*+>](?:\s|$)")


def _prose_lines(text: str) -> Iterable[tuple[str, str]]:
    """(line, next line) pairs outside fenced code blocks: a `# comment` in a shell example is not a heading."""
    lines = text.splitlines()
    fence: str | None = None
    for index, line in enumerate(lines):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
        else:
            yield line, (lines[index + 1] if index + 1 < len(lines) else "")


def _headings(text: str, *, rst_titles: bool) -> list[str]:
    """Heading texts: Markdown ATX and setext headings, whole-line bold titles and, for .rst/.txt,
    reStructuredText underlined titles."""
    headings = []
    for line, following in _prose_lines(text):
        atx = _ATX_HEADING.match(line)
        bold = _BOLD_LINE.match(line)
        if atx:
            headings.append(atx.group(1) or "")
        elif bold:
            headings.append(bold.group(1))
        elif line.strip() and not _BULLET_OR_QUOTE.match(line) and (
            _SETEXT_UNDERLINE.match(following)
            or (rst_titles and _RST_UNDERLINE.match(following) and len(following.strip()) >= len(line.strip()))
        ):
            headings.append(line.strip())
    return headings


def _section_words(text: str) -> set[str]:
    """Lower-case words with a plural "s" dropped, so "Risks" finds "Risk" and "1. Context:" finds "Context"."""
    return {_singular(word) for word in re.findall(r"[^\W_]+", text.lower())}


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _has_section(wanted: str, headings: list[str]) -> bool:
    """A heading containing all the words of any alternative counts: "Decision outcome" is a "Decision"."""
    heading_words = [_section_words(heading) for heading in headings]
    for alternative in wanted.split("|"):
        words = _section_words(alternative)
        if words and any(words <= present for present in heading_words):
            return True
    return False


def _count_words(text: str) -> int:
    """Words of prose: code blocks, HTML comments and URLs do not count, nor do tokens without a letter."""
    prose = "\n".join(line for line, _ in _prose_lines(text))
    prose = re.sub(r"<!--.*?-->", " ", prose, flags=re.DOTALL)
    prose = re.sub(r"\w+://\S+", " ", prose)
    return sum(1 for token in re.findall(r"[\w'’]+", prose) if any(char.isalpha() for char in token))


# ---------------------------------------------------------------- fields

_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_DEFINITION = re.compile(r"^\s*([^\W\d_][\w .()/-]{0,60}?)\s*[:=]")


def _field_keys(text: str, suffix: str, headings: list[str]) -> tuple[set[tuple[str, ...]], str | None]:
    """Field names the file defines, as word tuples, and a parse error for a structured file that is broken.

    In YAML, TOML and JSON a field counts as present when any mapping key anywhere (lists of SLOs included)
    matches it with a non-empty value: simple to explain, and a file with one complete SLO passes.
    """
    kind = STRUCTURED_KINDS.get(suffix)
    if kind is None:
        return _markdown_keys(text, headings), None
    try:
        documents = _parse_structured(text, kind)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError, TypeError, RecursionError) as error:
        return set(), _brief_error(error)
    return _structure_keys(documents), None


def _parse_structured(text: str, kind: str) -> list[Any]:
    if kind == "TOML":
        return [tomllib.loads(text)]
    if kind == "JSON":
        return [json.loads(text)]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when PyYAML was built with it
    return list(yaml.load_all(text, Loader=loader))


def _brief_error(error: Exception) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is not None and problem:  # PyYAML keeps a multi-line message; its parts are enough
        return f"line {mark.line + 1}: {problem}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:160]


def _structure_keys(documents: list[Any]) -> set[tuple[str, ...]]:
    keys: set[tuple[str, ...]] = set()
    stack = list(documents)
    seen: set[int] = set()
    visited = 0
    while stack and visited < MAX_STRUCTURE_NODES:
        node = stack.pop()
        visited += 1
        if isinstance(node, (dict, list)):
            if id(node) in seen:  # a YAML alias: the same object again
                continue
            seen.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                if value not in (None, "") and value != {} and value != []:
                    keys.add(_key_words(str(key)))
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return keys


def _markdown_keys(text: str, headings: list[str]) -> set[tuple[str, ...]]:
    """Fields named by table headers or first columns, `**SLI**: ...` / `- Objective: ...` lines, or headings.

    Fenced blocks are read too: a learner may paste their SLO YAML into the document.
    """
    keys = {_key_words(heading) for heading in headings}
    lines = [re.sub(r"\*\*|__|`", "", line) for line in text.splitlines()]
    for index, line in enumerate(lines):
        if "|" in line and index + 1 < len(lines) and _TABLE_SEPARATOR.match(lines[index + 1]):
            keys |= _table_keys(line, lines[index + 2:])
            continue
        definition = _DEFINITION.match(_LIST_MARKER.sub("", line, count=1))
        if definition:
            keys.add(_key_words(definition.group(1)))
    return keys


def _table_keys(header: str, rest: list[str]) -> set[tuple[str, ...]]:
    """Header cells of a table with at least one row, and the first cell of each row that has a value."""
    rows = []
    for line in rest:
        if "|" not in line or not line.strip():
            break
        rows.append(_cells(line))
    if not rows:
        return set()
    keys = {_key_words(cell) for cell in _cells(header) if cell}
    keys |= {_key_words(row[0]) for row in rows if len(row) > 1 and row[0] and any(row[1:])}
    return keys


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _key_words(name: str) -> tuple[str, ...]:
    """"error_budget", "Error budget", "error-budget" and "errorBudget" all become ("error", "budget")."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return tuple(re.findall(r"[^\W_]+", spaced.lower()))


def _has_field(wanted: str, keys: set[tuple[str, ...]]) -> bool:
    """A key matches an alternative when it starts with its words: "error_budget_minutes" is an "error budget"."""
    for alternative in wanted.split("|"):
        words = _key_words(alternative)
        if words and any(key[:len(words)] == words for key in keys):
            return True
    return False
