"""Canaries planted in the copy of a Node project the tests run on: a test that must fail, code that must not run."""

import re
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from assessor.engine.measure.planted import name_parts

# The call a test file already makes for its tests: the canary uses the same, imported or global.
_TEST_CALL = re.compile(r"(?<![\w.$])(it|test)\s*\(")
_MODULE_SYNTAX = re.compile(r"^\s*(import|export)\s", re.MULTILINE)
CODE_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts")
MAX_CODE_CANARIES = 2


@dataclass(frozen=True)
class TestCanary:
    """A failing test appended to one of the learner's test files (relative to the project root)."""

    __test__ = False
    file: str
    title: str
    original: bytes
    appended: bytes


@dataclass(frozen=True)
class CodeCanary:
    """A function appended to a learner's source file; no line of its body may be reported as run."""

    file: str
    original: bytes
    appended: bytes
    def_line: int
    body_lines: frozenset[int]
    line_count: int           # the learner's own lines: coverage beyond them is the canary's


def _lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def plant_test(project_root: Path, test_files: list[str]) -> TestCanary | None:
    rng = secrets.SystemRandom()
    files = [name for name in test_files if ".." not in PurePosixPath(name).parts]
    rng.shuffle(files)
    for name in files[:10]:
        target = project_root / name
        if target.is_symlink() or not target.is_file():
            continue
        original = target.read_bytes()
        found = _TEST_CALL.search(original.decode("utf-8", "replace"))
        if found is None:
            continue
        title = " ".join(name_parts(rng))
        first, second = rng.randrange(2, 90), rng.randrange(2, 90)
        wanted = first + second + rng.randrange(1, 9)
        text = (("" if original.endswith(b"\n") or not original else "\n") + "\n"
                f"{found.group(1)}(\"{title}\", () => {{\n"
                f"  const total = {first} + {second};\n"
                f"  if (total !== {wanted}) {{\n"
                f"    throw new Error(\"expected {wanted}, got \" + total);\n"
                f"  }}\n"
                f"}});\n")
        target.write_bytes(original + text.encode())
        return TestCanary(file=name, title=title, original=original, appended=text.encode())
    return None


def plant_code(project_root: Path, sources: list[str]) -> list[CodeCanary]:
    """Append a never-called function to a few source files, in a form each file's language accepts."""
    rng = secrets.SystemRandom()
    candidates = [name for name in sources if name.endswith(CODE_SUFFIXES) and ".." not in PurePosixPath(name).parts]
    rng.shuffle(candidates)
    planted = []
    for name in candidates[:MAX_CODE_CANARIES]:
        target = project_root / name
        if target.is_symlink() or not target.is_file():
            continue
        original = target.read_bytes()
        source = original.decode("utf-8", "replace")
        typed = name.endswith((".ts", ".mts", ".cts"))
        # TypeScript may refuse an unused local (noUnusedLocals) but never an export; JavaScript refuses neither,
        # and `export` in a CommonJS file would not even parse, so only TypeScript modules export it.
        exported = "export " if typed and _MODULE_SYNTAX.search(source) else ""
        signature = f"(value{': number' if typed else ''}){': number' if typed else ''}"
        limit, less, more = rng.randrange(3, 60), rng.randrange(1, 9), rng.randrange(1, 9)
        text = (("" if original.endswith(b"\n") or not original else "\n") + "\n"
                f"{exported}function _{'_'.join(name_parts(rng))}{signature} {{\n"
                f"  if (value > {limit}) {{\n"
                f"    return value - {less};\n"
                f"  }}\n"
                f"  return value + {more};\n"
                f"}}\n")
        target.write_bytes(original + text.encode())
        count = _lines(original)
        def_line = count + 2
        planted.append(CodeCanary(file=name, original=original, appended=text.encode(), def_line=def_line,
                                  body_lines=frozenset(range(def_line + 1, def_line + 5)), line_count=count))
    return planted


def strip_canary(entry: dict, canary: CodeCanary) -> tuple[dict, list[int]]:
    """An istanbul file entry without the planted function, and the lines of its body reported as run."""
    statements, counts = entry.get("statementMap"), entry.get("s")
    if not isinstance(statements, dict) or not isinstance(counts, dict):
        return entry, []
    ran = sorted({_line(statements.get(key)) for key, count in counts.items()
                  if isinstance(count, int) and count > 0 and _line(statements.get(key)) in canary.body_lines})
    cleaned = dict(entry)
    for map_key, count_key in (("statementMap", "s"), ("branchMap", "b"), ("fnMap", "f")):
        mapping, values = entry.get(map_key), entry.get(count_key)
        if not isinstance(mapping, dict) or not isinstance(values, dict):
            continue
        kept = {key for key, location in mapping.items() if (_line(location) or 0) <= canary.line_count}
        cleaned[map_key] = {key: mapping[key] for key in kept}
        cleaned[count_key] = {key: value for key, value in values.items() if key in kept}
    return cleaned, ran


def _line(location: object) -> int | None:
    if not isinstance(location, dict):
        return None
    start = location.get("start") if isinstance(location.get("start"), dict) else None
    if start is None and isinstance(location.get("loc"), dict):
        start = location["loc"].get("start")
    line = start.get("line") if isinstance(start, dict) else location.get("line")
    return line if isinstance(line, int) else None
