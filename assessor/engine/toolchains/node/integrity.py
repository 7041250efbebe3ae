"""Read a Node project's JavaScript and TypeScript for ways to forge coverage or test results."""

import os
import re
from pathlib import Path

from assessor.engine.measure.outcomes import Flag
from assessor.engine.toolchains.node.project import SOURCE_SUFFIXES

MAX_SCANNED_FILE_BYTES = 1024 * 1024
MAX_SCANNED_FILES = 5000
SKIPPED = frozenset({"node_modules", ".git", "dist", "build", "coverage", ".next"})
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
# (pattern, flag code, what it can do, whether it counts in a tool's configuration file too). A configuration
# naming its own reports (jest-junit, coverageDirectory) is ordinary; code under test doing so is not.
FINDINGS = (
    (re.compile(r"__coverage__"), "coverage_api", "touches istanbul's coverage counters (__coverage__)", True),
    (re.compile(r"NODE_V8_COVERAGE|takePreciseCoverage|takeCoverage\s*\("), "coverage_api",
     "controls V8's coverage collection", True),
    (re.compile(r"['\"`](node:)?inspector(/promises)?['\"`]"), "tracing_api",
     "uses the inspector, which can switch coverage collection off", True),
    (re.compile(r"coverage-final|coverageDirectory|reportsDirectory"), "coverage_file_access",
     "refers to coverage data files", False),
    (re.compile(r"junit|jest\.json", re.IGNORECASE), "junit_access", "refers to test result files", False),
    (re.compile(r"testResultsProcessor"), "report_hook", "sets a Jest results processor, which can rewrite "
                                                         "results", True),
)
CONFIG_FILE = re.compile(r"^(jest|vitest|vite|babel|webpack|rollup|tsup|eslint|prettier)\.config\.|^\.")


def scan_for_gaming(checkout: Path) -> list[Flag]:
    """Findings from every JavaScript/TypeScript file (tests and configuration included), comments left out."""
    flags: dict[tuple[str, str], Flag] = {}
    for path in _files(checkout):
        relative = path.relative_to(checkout).as_posix()
        try:
            text = COMMENT.sub("", path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        is_config = bool(CONFIG_FILE.match(path.name))
        for pattern, code, meaning, in_config in FINDINGS:
            if is_config and not in_config:
                continue
            match = pattern.search(text)
            if match:
                line = text.count("\n", 0, match.start()) + 1
                flags.setdefault((code, relative), Flag(code, f"{meaning} (line {line})", relative))
    return list(flags.values())


def _files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED and not (here / d).is_symlink())
        for name in sorted(filenames):
            path = here / name
            if name.endswith(SOURCE_SUFFIXES) and not path.is_symlink() and path.is_file() \
                    and path.stat().st_size <= MAX_SCANNED_FILE_BYTES:
                found.append(path)
                if len(found) >= MAX_SCANNED_FILES:
                    return found
    return found
