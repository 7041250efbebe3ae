"""Canaries planted in the copy of a project the tests run on: a test that must fail and code that must not run."""

import ast
import re
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from assessor.engine.measure.planted import name_parts

MAX_CODE_CANARIES = 3


@dataclass(frozen=True)
class TestCanary:
    """A failing test appended to one of the learner's test modules; `file` relative to the project root."""

    __test__ = False
    file: str
    function: str
    original: bytes
    appended: bytes

    @property
    def nodeid(self) -> str:
        return f"{self.file}::{self.function}"


@dataclass(frozen=True)
class CodeCanary:
    """A function appended to a learner's module: its `def` line runs on import, its body never may."""

    file: str                  # relative to the checkout
    original: bytes            # the module as the learner wrote it, put back after the run
    appended: bytes
    def_line: int
    body_lines: frozenset[int]


def _name(rng: secrets.SystemRandom) -> str:
    return "_".join(name_parts(rng))


def _matching(pattern: str, stem: str) -> str | None:
    """A file or function name `pattern` (pytest's glob or prefix) accepts, built around `stem`."""
    if "*" in pattern:
        candidate = pattern.replace("*", stem, 1).replace("*", "")
    elif pattern.endswith(".py"):
        return None  # a fixed file name such as tests.py: one file only
    else:
        candidate = f"{pattern}_{stem}" if not pattern.endswith("_") else pattern + stem
    return candidate if "?" not in candidate and "[" not in candidate else None


def plant_test(project_root: Path, *, collected_files: list[str], ini: dict) -> TestCanary | None:
    """Append a failing test to a test module pytest collected, named the way pytest's settings want tests named;
    the learner's hooks and fixtures apply to it as to their own tests."""
    rng = secrets.SystemRandom()
    files = [name for name in collected_files if name.endswith(".py") and ".." not in PurePosixPath(name).parts
             and not PurePosixPath(name).is_absolute()]
    rng.shuffle(files)
    functions = [p for p in ini.get("python_functions") or ["test"] if isinstance(p, str)]
    function = next((name for name in (_matching(p, _name(rng)) for p in functions) if name and name.isidentifier()),
                    None)
    if function is None:
        return None
    for name in files[:5]:
        target = project_root / name
        if target.is_symlink() or not target.is_file() or not _parses(target):
            continue
        original = target.read_bytes()
        first, second = rng.randrange(2, 90), rng.randrange(2, 90)
        text = (("" if original.endswith(b"\n") or not original else "\n") + "\n\n"
                f"def {function}():\n"
                f"    total = {first} + {second}\n"
                f"    assert total == {first + second + rng.randrange(1, 9)}\n")
        target.write_bytes(original + text.encode())
        return TestCanary(file=name, function=function, original=original, appended=text.encode())
    return None


def plant_code(project: Path, checkout: Path, files: list[str]) -> list[CodeCanary]:
    """Append a never-called function to a few measured modules (a package's __init__ among them when there is
    one, since importing anything in the package runs it)."""
    rng = secrets.SystemRandom()
    candidates = [name for name in files if _parses(checkout / name)]
    inits = [name for name in candidates if name.endswith("__init__.py")]
    chosen = [rng.choice(inits)] if inits else []
    others = [name for name in candidates if name not in chosen]
    rng.shuffle(others)
    chosen += others[:MAX_CODE_CANARIES - len(chosen)]
    planted = []
    for name in chosen:
        target = project / name
        if target.is_symlink() or not target.is_file():
            continue
        original = target.read_bytes()
        lines = original.count(b"\n") + (0 if original.endswith(b"\n") or not original else 1)
        limit = rng.randrange(3, 60)
        text = (("" if original.endswith(b"\n") or not original else "\n") + "\n\n"
                f"def _{_name(rng)}(value):\n"
                f"    if value > {limit}:\n"
                f"        return value - {rng.randrange(1, 9)}\n"
                f"    return value + {rng.randrange(1, 9)}\n")
        target.write_bytes(original + text.encode())
        def_line = lines + 3
        planted.append(CodeCanary(file=name, original=original, appended=text.encode(), def_line=def_line,
                                  body_lines=frozenset(range(def_line + 1, def_line + 4))))
    return planted


def _parses(path: Path) -> bool:
    try:
        source = path.read_bytes()
        ast.parse(source)
    except (OSError, SyntaxError, ValueError, RecursionError):
        return False
    # A file ending inside a backslash continuation or without a final statement cannot take an appendix safely.
    return not source.rstrip(b" \t").endswith(b"\\")


def covered_canary_lines(arcs: list[tuple[int, int]], canary: CodeCanary) -> list[int]:
    return sorted({line for pair in arcs for line in pair if line in canary.body_lines})


def without_canary(arcs: list[tuple[int, int]], canary: CodeCanary) -> list[tuple[int, int]]:
    """The arcs as they would be without the appendix: into its `def` line is the module's exit."""
    planted = canary.body_lines | {canary.def_line}
    kept = []
    for start, end in arcs:
        if start in planted:
            continue
        if end == canary.def_line:
            if start > 0:  # from a module with statements of its own; an empty one has no arcs at all
                kept.append((start, -1))
        elif abs(end) not in planted:
            kept.append((start, end))
    return kept


_SECTION = re.compile(r"^(_{3,} .+ _{3,}|={3,}.*={3,})$")
_FAILED_COUNT = re.compile(r"\b(\d+) failed\b")


def scrub_output(output: str, canary: TestCanary | None) -> str:
    """pytest's output without the planted test's failure: its section, its summary line, one from the count."""
    if canary is None or canary.function not in output:
        return output
    kept: list[str] = []
    skipping = False
    lines = output.split("\n")
    for line in lines:
        if _SECTION.match(line.strip()):
            skipping = line.strip().strip("_ ").endswith(canary.function)
            if skipping:
                continue
        if skipping or f"::{canary.function}" in line:
            continue
        kept.append(line)
    for index in range(len(kept) - 1, -1, -1):  # the last result line: "= 2 failed, 32 passed in 0.36s ="
        if kept[index].startswith("=") and _FAILED_COUNT.search(kept[index]):
            count = int(_FAILED_COUNT.search(kept[index]).group(1)) - 1
            kept[index] = _FAILED_COUNT.sub(f"{count} failed", kept[index], count=1) if count else \
                re.sub(r"\b0 failed, |, 0 failed\b|\b0 failed\b", "", _FAILED_COUNT.sub("0 failed", kept[index], 1))
            break
    return "\n".join(kept)
