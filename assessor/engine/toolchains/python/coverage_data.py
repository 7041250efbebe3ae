"""Coverage of the learner's Python files: the service's tracer in the sandbox, figures computed on the host."""

import configparser
import json
import os
import re
import tempfile
import tokenize
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import coverage

from assessor.engine.measure.outcomes import CoverageResult, FileCoverage, Flag, coverage_totals, percent
from assessor.engine.toolchains.python.pytest_config import DEFAULT_PYTHON_FILES
from assessor.engine.toolchains.python.canaries import CodeCanary, covered_canary_lines, without_canary
from assessor.engine.toolchains.python.runner import CANARY_BEGIN_LINE, CANARY_END_LINE
from assessor.engine.toolchains.python.sources import learner_packages, python_source_files

MAX_MEASURED_FILE_BYTES = 512 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
# A path must be plain to go into the service's coverage config (no newline, glob or $VAR tricks).
SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")
# coverage.py's own exclusions (pragmas, `if TYPE_CHECKING:`, `...` bodies): kept, and every excluded line counted.
DEFAULT_EXCLUDE = tuple(coverage.config.DEFAULT_EXCLUDE)


def measured_files(checkout: Path, root: Path | None = None, *,
                   test_patterns: Sequence[str] = DEFAULT_PYTHON_FILES) -> list[str]:
    """Paths (relative to the checkout) of the learner source files coverage is computed over: the project's
    packages and top-level modules, never tests or packaging files."""
    root = root or checkout
    packages = [(root / package).relative_to(checkout).as_posix()
                for package in learner_packages(root, test_patterns=test_patterns)]
    files = [path.relative_to(checkout).as_posix() for path in python_source_files(root, test_patterns=test_patterns)]
    if packages:
        files = [name for name in files
                 if any(name == package or name.startswith(package + "/") for package in packages)]
    # Larger files are generated or hostile (pathological parsing time); they are left out, not scored.
    return [name for name in files if (checkout / name).stat().st_size <= MAX_MEASURED_FILE_BYTES]


def coverage_rcfile(project: Path, files: list[str], canary: Path) -> str:
    """The sandbox tracer's configuration: branch data for exactly the measured files and the canary."""
    include = "".join(f"\n    {project / name}" for name in files if SAFE_PATH.match(name))
    return (
        "[run]\nbranch = True\nparallel = False\n"
        f"include ={include}\n    {canary}\n"
        "disable_warnings = no-data-collected, module-not-measured, module-imported, include-ignored\n"
    )


def code_lines(path: Path) -> tuple[set[int], int]:
    """(lines holding code tokens, number of lines): a line a tracer can report must be in the first set."""
    lines: set[int] = set()
    count = 0
    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
               tokenize.ENCODING, tokenize.ENDMARKER}
    with path.open("rb") as handle:
        try:
            for token in tokenize.tokenize(handle.readline):
                if token.type not in skipped:
                    lines.update(range(token.start[0], token.end[0] + 1))
                count = max(count, token.end[0])
        except (tokenize.TokenError, SyntaxError):
            pass
    return lines, count


@dataclass
class CheckedCoverage:
    """Coverage data the host accepted: arcs per measured file, and per covered line the tests that ran it."""

    arcs_by_file: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    tests_by_line: dict[str, dict[int, tuple[str, ...]]] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)


def check_coverage_data(exported: dict, *, project: Path, checkout: Path, files: list[str], canary: Path,
                        code_canaries: Sequence[CodeCanary] = ()) -> CheckedCoverage:
    """The data, checked: files never measured, impossible lines, a stopped tracer, planted code reported as run."""
    checked = CheckedCoverage()
    flags = checked.flags
    by_sandbox_path = {str(project / name): name for name in files}
    planted = {item.file: item for item in code_canaries}
    canary_lines: set[int] = set()
    entries = exported.get("files")
    if not isinstance(entries, dict) or exported.get("has_arcs") is not True:
        flags.append(Flag("coverage_data_forged", "coverage data is not branch data from the service's tracer"))
        return checked
    contexts = exported.get("contexts") if isinstance(exported.get("contexts"), list) else []
    for name, entry in entries.items():
        arcs = _arcs_of(entry)
        if arcs is None:
            flags.append(Flag("coverage_data_forged", "coverage data entry is malformed", None))
            continue
        if name == str(canary):
            canary_lines = {line for pair in arcs for line in pair if line > 0}
            continue
        relative = by_sandbox_path.get(name)
        if relative is None:
            flags.append(Flag("coverage_data_forged", "coverage data names a file that was not measured",
                              _short(name)))
            continue
        if relative in planted:
            ran = covered_canary_lines(arcs, planted[relative])
            if ran:
                flags.append(Flag("canary_code_run", f"code the service added and nothing calls was reported as run "
                                                     f"(lines {ran[:3]} of its copy): coverage was altered inside the "
                                                     f"test process", relative))
            arcs = without_canary(arcs, planted[relative])
        plausible, count = code_lines(checkout / relative)
        bad = sorted({line for pair in arcs for line in pair
                      if (line > 0 and line not in plausible) or abs(line) > count})
        if bad:
            flags.append(Flag("coverage_data_forged",
                              f"coverage data marks lines without code as run (e.g. {bad[:5]})", relative))
            continue
        checked.arcs_by_file[relative] = arcs
        checked.tests_by_line[relative] = _tests_by_line(entry.get("tests"), contexts, plausible)
    if CANARY_BEGIN_LINE not in canary_lines or CANARY_END_LINE not in canary_lines:
        flags.append(Flag("coverage_stopped", "coverage was not running for the whole test session "
                                              "(the service's canary lines were not recorded)"))
    return checked


def _tests_by_line(value: object, contexts: list, plausible: set[int]) -> dict[int, tuple[str, ...]]:
    if not isinstance(value, dict):
        return {}
    found = {}
    for line, ids in value.items():
        if not (isinstance(line, str) and line.isdigit() and int(line) in plausible and isinstance(ids, list)):
            continue
        names = tuple(contexts[i] for i in ids if type(i) is int and 0 <= i < len(contexts)
                      and isinstance(contexts[i], str))
        if names:
            found[int(line)] = names
    return found


def _arcs_of(entry: object) -> list[tuple[int, int]] | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("arcs"), list):
        return None
    arcs = []
    for pair in entry["arcs"]:
        if not (isinstance(pair, list) and len(pair) == 2 and all(type(n) is int for n in pair)):
            return None
        arcs.append((pair[0], pair[1]))
    return arcs


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def coverage_report(checkout: Path, files: list[str], arcs_by_file: dict[str, list[tuple[int, int]]]) -> \
        tuple[CoverageResult | None, list[str]]:
    """Figures computed on the host by coverage.py from the original (untouched) sources and the checked arcs."""
    notes: list[str] = []
    if not files:
        return None, ["no learner source package was found, so there is nothing to measure coverage on"]
    engine = coverage.Coverage(data_file=None, branch=True, config_file=False)
    # Unparseable files become a note in the report, not a warning in the service's log.
    engine.set_option("run:disable_warnings", ["couldnt-parse", "no-data-collected", "module-not-measured"])
    data = engine.get_data()
    data.add_arcs({str(checkout / name): arcs for name, arcs in arcs_by_file.items()})
    data.touch_files([str(checkout / name) for name in files])
    with tempfile.TemporaryDirectory(prefix="assessor-cov-") as scratch:
        report_path = Path(scratch) / "coverage.json"
        try:
            engine.json_report(morfs=[str(checkout / name) for name in files], outfile=str(report_path),
                               ignore_errors=True)
        except coverage.exceptions.CoverageException as error:
            return None, [f"coverage could not be computed: {error}"]
        report = json.loads(report_path.read_text())
    per_file: list[FileCoverage] = []
    reported = {_report_key(key): value for key, value in report.get("files", {}).items()}
    for name in files:
        entry = reported.get((checkout / name).resolve())
        if entry is None:
            notes.append(f"{name} could not be analysed (not valid Python 3?) and is left out of coverage")
            continue
        per_file.append(_file_coverage(name, entry))
    return coverage_totals(per_file), notes


def _report_key(key: str) -> Path:
    return Path(key).resolve() if os.path.isabs(key) else (Path.cwd() / key).resolve()


def _file_coverage(name: str, entry: dict) -> FileCoverage:
    summary = entry["summary"]
    statements, covered = summary["num_statements"], summary["covered_lines"]
    branches, covered_branches = summary.get("num_branches", 0), summary.get("covered_branches", 0)
    return FileCoverage(
        path=name, statements=statements, covered_lines=covered, missing_lines=list(entry.get("missing_lines", [])),
        branches=branches, covered_branches=covered_branches, excluded_lines=len(entry.get("excluded_lines", [])),
        line_percent=percent(covered, statements), branch_percent=percent(covered_branches, branches),
        partial_lines=sorted({int(arc[0]) for arc in entry.get("missing_branches", []) if int(arc[0]) > 0}
                             - set(entry.get("missing_lines", []))),
    )


def learner_exclusions(root: Path) -> tuple[list[str], list[str]]:
    """(exclude patterns, omit patterns) the learner's own coverage configuration asks for; never applied."""
    sources = [(".coveragerc", ""), ("setup.cfg", "coverage:"), ("tox.ini", "coverage:")]
    exclude: list[str] = []
    omit: list[str] = []
    pyproject = root / "pyproject.toml"
    if _readable(pyproject):
        try:
            tool = tomllib.loads(pyproject.read_text(encoding="utf-8", errors="replace")).get("tool", {})
        except tomllib.TOMLDecodeError:
            tool = {}
        table = tool.get("coverage") if isinstance(tool, dict) and isinstance(tool.get("coverage"), dict) else {}
        report = table.get("report") if isinstance(table.get("report"), dict) else {}
        run = table.get("run") if isinstance(table.get("run"), dict) else {}
        exclude += _strings(report.get("exclude_lines")) + _strings(report.get("exclude_also"))
        omit += _strings(report.get("omit")) + _strings(run.get("omit"))
    for name, prefix in sources:
        path = root / name
        if not _readable(path):
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
        except configparser.Error:
            continue
        for section, key, into in ((f"{prefix}report", "exclude_lines", exclude),
                                   (f"{prefix}report", "exclude_also", exclude),
                                   (f"{prefix}report", "omit", omit), (f"{prefix}run", "omit", omit)):
            if parser.has_option(section, key):
                into += [line.strip() for line in parser.get(section, key).splitlines() if line.strip()]
    return list(dict.fromkeys(exclude)), list(dict.fromkeys(omit))


def _readable(path: Path) -> bool:
    return path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_CONFIG_BYTES


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def exclusion_notes(root: Path, checkout: Path, files: list[str]) -> list[str]:
    """What the learner's coverage configuration would have left out beyond coverage.py's defaults, counted and
    shown: those lines are measured all the same."""
    exclude, omit = learner_exclusions(root)
    defaults = [re.compile(pattern) for pattern in DEFAULT_EXCLUDE]
    extra = []
    for pattern in exclude:
        try:
            extra.append((pattern, re.compile(pattern)))
        except re.error:
            continue
    notes = []
    counted: dict[str, int] = {}
    for name in files:
        try:
            text = (checkout / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if any(regex.search(line) for regex in defaults):
                continue
            for pattern, regex in extra:
                if regex.search(line):
                    counted[pattern] = counted.get(pattern, 0) + 1
                    break
    total = sum(counted.values())
    if total:
        notes.append(f"your coverage configuration asks to exclude {total} more line{'s' if total != 1 else ''} "
                     f"({', '.join(counted)[:120]}); the service measures them")
    if omit:
        notes.append(f"your coverage configuration omits {', '.join(omit)[:120]}; the service measures every "
                     f"source file of the project")
    return notes
