"""Run the learner's tests in the sandbox under the service's coverage, and keep only figures that hold up."""

import ast
import configparser
import hashlib
import hmac
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import tempfile
import tokenize
import tomllib
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from pathlib import Path

import coverage

from assessor.errors import MeasureError
from assessor.measure.sources import learner_packages, python_source_files
from assessor.sandbox import SandboxLimits, SandboxResult, run_sandboxed, size_capped_dir

MAX_JUNIT_BYTES = 20 * 1024 * 1024
MAX_STATUS_BYTES = 1024 * 1024
MAX_COVERAGE_JSON_BYTES = 64 * 1024 * 1024
MAX_SCANNED_FILE_BYTES = 1024 * 1024
MAX_MEASURED_FILE_BYTES = 512 * 1024
MAX_SCANNED_FILES = 5000
OUTPUT_TAIL_CHARS = 8000
OUT_DIR_NAME = ".assessor-out"
RESULTS_AREA_MB = 128
# Coverage's own default exclusion: pragmas are honoured, but every excluded line is counted in the report.
PRAGMA_EXCLUDE = r"#\s*(pragma|PRAGMA)[:\s]?\s*(no|NO)\s*(cover|COVER)"
# A path must be plain to go into the service's coverage config (no newline, glob or $VAR tricks).
SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")
SCAN_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "env", ".tox", ".nox", "node_modules",
                               "site-packages", "__pycache__"})

# What each integrity finding makes untrustworthy. A voided figure is reported as null, never as a score.
FLAG_VOIDS: dict[str, frozenset[str]] = {
    "coverage_api": frozenset({"coverage"}),
    "tracing_api": frozenset({"coverage"}),
    "coverage_file_access": frozenset({"coverage"}),
    "coverage_stopped": frozenset({"coverage"}),
    "coverage_data_forged": frozenset({"coverage"}),
    "coverage_data_missing": frozenset({"coverage"}),
    "report_hook": frozenset({"tests"}),
    "report_tampering": frozenset({"tests"}),
    "junit_access": frozenset({"tests"}),
    "junit_missing": frozenset({"tests"}),
    "junit_invalid": frozenset({"tests"}),
    "junit_inconsistent": frozenset({"tests"}),
    "results_exceed_collected": frozenset({"tests"}),
    "early_exit": frozenset({"tests", "coverage"}),
    "results_forged": frozenset({"tests", "coverage"}),
    "source_modified": frozenset({"coverage"}),
    "code_forgery": frozenset({"coverage"}),
    "results_missing": frozenset(),        # the missing results are counted as errors instead
    "early_exit_call": frozenset(),        # os._exit in the code; harmful only if the run ended early
    "shadowing_module": frozenset(),       # the runner imports its tools before the learner's paths
    "exit_code_mismatch": frozenset(),
}
# Hooks that can rewrite or skip what a test reports.
REPORT_HOOKS = frozenset({
    "pytest_runtest_makereport", "pytest_report_teststatus", "pytest_runtest_logreport",
    "pytest_runtest_protocol", "pytest_pyfunc_call", "pytest_runtest_call", "pytest_report_to_serializable",
    "pytest_report_from_serializable", "pytest_exception_interact",
})
REPORTING_INTERNALS = frozenset({"TerminalReporter", "LogXML", "TestReport", "CollectReport", "_NodeReporter"})
REPORTING_MODULES = ("_pytest.junitxml", "_pytest.terminal", "_pytest.reports", "_pytest.runner",
                     "_pytest.skipping", "_pytest.main", "_pytest.capture", "_pytest.python")
TRACING_CALLS = frozenset({"settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads", "monitoring"})
# Ways to make code look as if it ran from a file it did not come from.
CODE_FORGERY_NAMES = frozenset({"co_filename", "CodeType", "__code__", "pycache_prefix", "cache_from_source",
                                "MAGIC_NUMBER"})
CODE_FORGERY_MODULES = ("marshal", "py_compile", "compileall", "importlib._bootstrap_external")
SHADOWED_TOOLS = frozenset({"coverage", "pytest", "_pytest", "pluggy", "sitecustomize", "usercustomize"})
# Options from the learner's addopts that only shape how tests run, never which results are kept.
SAFE_ADDOPTS_FLAGS = frozenset({
    "--strict-markers", "--strict-config", "--strict", "--doctest-modules", "--doctest-continue-on-failure",
    "-v", "-vv", "-q", "-l", "--showlocals", "--disable-warnings", "-ra", "-rA", "--reuse-db", "--nomigrations",
    "--no-migrations", "--create-db",
})
SAFE_ADDOPTS_WITH_VALUE = frozenset({
    "--import-mode", "--doctest-glob", "--asyncio-mode", "--ds", "--dc", "--tb", "--timeout", "-W",
    "--pythonwarnings", "-p", "--configuration",
})

RUNNER_SOURCE = '''\
"""Service-owned runner, started with python -I so nothing from the learner's tree loads before the tools."""
import hashlib
import hmac
import importlib.util
import json
import os
import sys

RANKS = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}


class Observer:
    """Counts outcomes the way the JUnit report does, as a second opinion the host compares with it."""

    def __init__(self):
        self.collected = None
        self.outcomes = {}

    def note(self, key, outcome):
        if key not in self.outcomes or RANKS[outcome] > RANKS[self.outcomes[key]]:
            self.outcomes[key] = outcome

    def pytest_collection_finish(self, session):
        self.collected = len(session.items)

    def pytest_collectreport(self, report):
        if report.failed:
            self.note("collect::" + report.nodeid, "error")
        elif report.skipped:
            self.note("collect::" + report.nodeid, "skipped")

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.note(report.nodeid, "failed" if report.when == "call" else "error")
        elif report.skipped:
            self.note(report.nodeid, "skipped")
        elif report.when == "call":
            self.note(report.nodeid, "passed")

    def counts(self):
        totals = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for outcome in self.outcomes.values():
            totals[outcome] += 1
        return totals


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle)


def file_digest(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def write_status(out_dir, name, status, token):
    """Sign the status and the digests of the result files with the token only this runner has seen."""
    status["files"] = {result: file_digest(os.path.join(out_dir, result)) for result in ("coverage.json", "junit.xml")}
    payload = json.dumps(status, sort_keys=True).encode()
    status["mac"] = hmac.new(token, payload, hashlib.sha256).hexdigest()
    write_json(os.path.join(out_dir, name), status)


def export_coverage(data):
    files = {}
    for name in sorted(data.measured_files()):
        arcs = data.arcs(name)
        files[name] = {"arcs": sorted(arcs)} if arcs is not None else {"lines": sorted(data.lines(name) or [])}
    return {"has_arcs": data.has_arcs(), "files": files}


def main():
    mode, control, out_dir, project = sys.argv[1:5]
    pytest_args = sys.argv[6:]
    token_path = os.path.join(out_dir, "token")
    with open(token_path, "rb") as handle:
        token = handle.read()
    os.unlink(token_path)  # gone before any learner code runs
    import coverage  # resolved from the read-only venv: -I keeps the cwd and PYTHONPATH off sys.path
    import pytest
    sys.pycache_prefix = "/tmp/.assessor-pycache"  # bytecode shipped next to the sources is never used
    sys.path[0:0] = [project, os.path.join(project, "src")]
    observer = Observer()
    status = {"mode": mode, "finished": False}
    if mode == "collect":
        try:
            code = int(pytest.main(["--collect-only", "-q", *pytest_args], plugins=[observer]))
        except BaseException as error:
            status["error"] = repr(error)[:500]
            code = 70
        else:
            status.update(finished=True, exit_code=code, collected=observer.collected)
        write_status(out_dir, "collect-status.json", status, token)
        sys.stdout.flush()
        os._exit(code)
    spec = importlib.util.spec_from_file_location("assessor_canary", os.path.join(control, "assessor_canary.py"))
    canary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(canary)
    cov = coverage.Coverage(data_file=None, config_file=os.path.join(control, "coveragerc"))
    cov.start()
    canary.begin()
    try:
        code = int(pytest.main(pytest_args, plugins=[observer]))
    except BaseException as error:
        cov.stop()
        status["error"] = repr(error)[:500]
        write_status(out_dir, "status.json", status, token)
        sys.stdout.flush()
        os._exit(70)
    canary.end()
    cov.stop()
    write_json(os.path.join(out_dir, "coverage.json"), export_coverage(cov.get_data()))
    status.update(finished=True, exit_code=code, collected=observer.collected, counts=observer.counts())
    write_status(out_dir, "status.json", status, token)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip atexit handlers: learner code must not run after the results are written.
    os._exit(code)


main()
'''

CANARY_SOURCE = '''\
"""Service canary: the runner calls begin() before the tests and end() after them, under coverage."""


def begin():
    marker = "begin"
    return marker


def end():
    marker = "end"
    return marker
'''
CANARY_BEGIN_LINE = 5
CANARY_END_LINE = 10


@dataclass(frozen=True)
class Flag:
    """An integrity finding: something that could have faked a figure."""

    code: str
    message: str
    path: str | None = None

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "path": self.path}


@dataclass(frozen=True)
class TestCounts:
    """Outcomes from the JUnit report, one per test."""

    __test__ = False
    passed: int
    failed: int
    errors: int
    skipped: int
    total: int


@dataclass(frozen=True)
class FileCoverage:
    """Coverage of one learner source file, relative to the checkout."""

    path: str
    statements: int
    covered_lines: int
    missing_lines: list[int]
    branches: int
    covered_branches: int
    excluded_lines: int
    line_percent: float
    branch_percent: float


@dataclass(frozen=True)
class CoverageResult:
    """Line and branch coverage of the learner's packages, computed on the host from the original sources."""

    line_percent: float
    branch_percent: float
    excluded_lines: int
    statements: int
    covered_lines: int
    branches: int
    covered_branches: int
    files: list[FileCoverage]


@dataclass
class TestRun:
    """Everything one sandboxed test run produced, with untrustworthy figures already set to None."""

    __test__ = False
    tests: TestCounts | None
    coverage: CoverageResult | None
    sandbox: SandboxResult
    flags: list[Flag] = field(default_factory=list)
    output_tail: str = ""
    collected: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "tests": asdict(self.tests) if self.tests else None,
            "collected": self.collected,
            "coverage": asdict(self.coverage) if self.coverage else None,
            "sandbox": {
                "backend": self.sandbox.backend, "killed_by": self.sandbox.killed_by,
                "exit_code": self.sandbox.exit_code, "wall_seconds": self.sandbox.wall_seconds,
                "cpu_seconds": self.sandbox.cpu_seconds, "max_rss_mb": self.sandbox.max_rss_mb,
                "output_bytes_total": self.sandbox.output_bytes_total,
                "output_truncated": self.sandbox.output_truncated, "peak_processes": self.sandbox.peak_processes,
            },
            "flags": [flag.to_dict() for flag in self.flags],
            "notes": list(self.notes),
            "output_tail": self.output_tail,
        }


@dataclass(frozen=True)
class JunitSummary:
    """Counts read from a JUnit file; collection errors are kept apart from test results."""

    passed: int
    failed: int
    errors: int
    skipped: int
    collection_errors: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    @property
    def test_results(self) -> int:
        return self.total - self.collection_errors


class ResultFileError(Exception):
    """A result file in the sandbox's output directory is missing, too large, or not a plain file."""


class ResultChangedError(ResultFileError):
    """A result file differs from what the service's runner signed: something wrote it afterwards."""


# ---------------------------------------------------------------- static scan

def scan_for_gaming(root: Path) -> list[Flag]:
    """Findings from reading every Python file in the checkout (tests and conftest included)."""
    flags: dict[tuple[str, str | None], Flag] = {}
    for path in _scannable_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            source = path.read_bytes()
        except OSError:
            continue
        for code, message in _scan_source(source, relative):
            flags.setdefault((code, relative), Flag(code, message, relative))
    for flag in _shadowing_flags(root):
        flags.setdefault((flag.code, flag.path), flag)
    return list(flags.values())


def _scannable_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SCAN_SKIPPED_DIRS and not (here / d).is_symlink())
        for name in sorted(filenames):
            path = here / name
            if name.endswith(".py") and not path.is_symlink() and path.is_file() \
                    and path.stat().st_size <= MAX_SCANNED_FILE_BYTES:
                found.append(path)
                if len(found) >= MAX_SCANNED_FILES:
                    return found
    return found


def _scan_source(source: bytes, relative: str) -> list[tuple[str, str]]:
    try:
        tree = ast.parse(source, filename=relative)
    except (SyntaxError, ValueError, RecursionError):
        return []  # the same interpreter cannot import it either, so it never runs
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    findings: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Import):
            for alias in node.names:
                findings += _module_findings(alias.name, line)
        elif isinstance(node, ast.ImportFrom) and node.module:
            findings += _module_findings(node.module, line)
            for alias in node.names:
                findings += _name_findings(alias.name, line)
        elif isinstance(node, ast.Attribute):
            findings += _name_findings(node.attr, line)
        elif isinstance(node, ast.Name):
            findings += _name_findings(node.id, line, attribute_only=True)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "compile":
            findings.append(("code_forgery", f"compiles code at run time (line {line}): it can be attributed to "
                                             f"any source file"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in REPORT_HOOKS:
            findings.append(("report_hook", f"defines {node.name} (line {line}), which can rewrite test outcomes"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            findings += _string_findings(node.value, line)
    return findings


def _module_findings(module: str, line: object) -> list[tuple[str, str]]:
    if module == "coverage" or module.startswith("coverage."):
        return [("coverage_api", f"imports {module} (line {line}): code under test can stop or forge coverage")]
    if module.startswith(REPORTING_MODULES):
        return [("report_tampering", f"imports pytest internals {module} (line {line})")]
    if module.startswith(CODE_FORGERY_MODULES):
        return [("code_forgery", f"imports {module} (line {line}): bytecode can be attributed to any source")]
    return []


def _name_findings(name: str, line: object, attribute_only: bool = False) -> list[tuple[str, str]]:
    if name in TRACING_CALLS and not attribute_only:
        return [("tracing_api", f"uses {name} (line {line}): tracing hooks can switch coverage off")]
    if name == "_exit" and not attribute_only:
        return [("early_exit_call", f"calls _exit (line {line}): ends the process without reporting")]
    if name in REPORTING_INTERNALS:
        return [("report_tampering", f"refers to pytest's reporting internals ({name}, line {line})")]
    if name in CODE_FORGERY_NAMES:
        return [("code_forgery", f"uses {name} (line {line}): code can be made to look as if it ran elsewhere")]
    return []


def _string_findings(value: str, line: object) -> list[tuple[str, str]]:
    lowered = value.lower()
    findings = []
    if value == "coverage" or value.startswith("coverage."):
        findings.append(("coverage_api", f"names the module {value!r} in a string (line {line})"))
    if value.startswith(REPORTING_MODULES):
        findings.append(("report_tampering", f"names pytest internals {value!r} in a string (line {line})"))
    if ".coverage" in lowered or "coveragerc" in lowered or "COVERAGE_" in value:
        findings.append(("coverage_file_access", f"mentions coverage data or config files (line {line})"))
    if "junit" in lowered:
        findings.append(("junit_access", f"mentions JUnit results (line {line})"))
    return findings


def _shadowing_flags(root: Path) -> list[Flag]:
    flags = []
    for base in (root, root / "src"):
        if not base.is_dir() or base.is_symlink():
            continue
        for entry in base.iterdir():
            name = entry.name[:-3] if entry.name.endswith(".py") else entry.name
            if name in SHADOWED_TOOLS and (entry.is_dir() or entry.name.endswith(".py")):
                relative = entry.relative_to(root).as_posix()
                flags.append(Flag("shadowing_module", f"{relative} has the name of a tool the service runs "
                                                      f"(it is ignored: the tools load first)", relative))
    return flags


# ---------------------------------------------------------------- pytest configuration

def learner_addopts(project: Path) -> list[str]:
    """The addopts of the pytest config file pytest itself would pick in `project`."""
    candidates = [("pytest.ini", "pytest"), (".pytest.ini", "pytest"), ("pyproject.toml", None),
                  ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")]
    for name, section in candidates:
        path = project / name
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_SCANNED_FILE_BYTES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if section is None:
            found = _pyproject_addopts(text)
        else:
            found = _ini_addopts(text, section, always=name in ("pytest.ini", ".pytest.ini"))
        if found is not None:
            return found
    return []


def _pyproject_addopts(text: str) -> list[str] | None:
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return None
    pytest_table = tool.get("pytest") if isinstance(tool.get("pytest"), dict) else None
    if pytest_table is None:
        return None
    options = pytest_table.get("ini_options") if isinstance(pytest_table.get("ini_options"), dict) else pytest_table
    return _split_addopts(options.get("addopts", ""))


def _ini_addopts(text: str, section: str, always: bool) -> list[str] | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return [] if always else None
    if not parser.has_section(section):
        return [] if always else None
    return _split_addopts(parser.get(section, "addopts", fallback=""))


def _split_addopts(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    try:
        return shlex.split(str(value))
    except ValueError:
        return []


def filter_addopts(options: list[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): keep options that shape how tests run, drop any that select, stop or redirect them."""
    kept: list[str] = []
    dropped: list[str] = []
    index = 0
    while index < len(options):
        option = options[index]
        name, has_value, value = option.partition("=")
        if option in SAFE_ADDOPTS_FLAGS:
            kept.append(option)
        elif name in SAFE_ADDOPTS_WITH_VALUE and has_value and _safe_option_value(name, value):
            kept.append(option)
        elif option in SAFE_ADDOPTS_WITH_VALUE and index + 1 < len(options) \
                and _safe_option_value(option, options[index + 1]):
            kept += [option, options[index + 1]]
            index += 1
        elif option.startswith("-p") and len(option) > 2 and _safe_option_value("-p", option[2:]):
            kept.append(option)
        else:
            dropped.append(option)
        index += 1
    return kept, dropped


def _safe_option_value(name: str, value: str) -> bool:
    if name == "-p":
        return not value.startswith("no:") and re.fullmatch(r"[A-Za-z0-9_.]+", value) is not None
    return "\n" not in value


def pytest_arguments(*, project: Path, out_dir: Path, kept_addopts: list[str], collect: bool) -> list[str]:
    """The service's pytest options; they come after the learner's so the service's settings win."""
    overrides = ["addopts=", "junit_logging=no", "junit_log_passing_tests=false", "junit_family=xunit2",
                 "required_plugins=", "console_output_style=classic", "junit_suite_name=pytest"]
    args = [*kept_addopts]
    for override in overrides:
        args += ["-o", override]
    args += ["-p", "no:cacheprovider", f"--rootdir={project}", "--capture=fd", "--color=no",
             "--continue-on-collection-errors"]
    if not collect:
        args += ["-p", "junitxml", f"--junitxml={out_dir / 'junit.xml'}", "-rfE"]
    return args


# ---------------------------------------------------------------- result files

def read_result_file(out_dir: Path, name: str, max_bytes: int) -> bytes:
    """A result file the sandbox wrote, read without following links and only if it is small and plain."""
    try:
        directory = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise ResultFileError(f"output directory unusable: {error.strerror}") from None
    try:
        try:
            handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
        except FileNotFoundError:
            raise ResultFileError(f"{name} was not written") from None
        except OSError as error:
            raise ResultFileError(f"{name} could not be opened: {error.strerror}") from None
        try:
            info = os.fstat(handle)
            if not stat.S_ISREG(info.st_mode):
                raise ResultFileError(f"{name} is not a regular file")
            if info.st_size > max_bytes:
                raise ResultFileError(f"{name} is larger than {max_bytes} bytes")
            with os.fdopen(handle, "rb", closefd=False) as reader:
                data = reader.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise ResultFileError(f"{name} is larger than {max_bytes} bytes")
            return data
        finally:
            os.close(handle)
    finally:
        os.close(directory)


def read_json_result(out_dir: Path, name: str, max_bytes: int) -> dict:
    data = read_result_file(out_dir, name, max_bytes)
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise ResultFileError(f"{name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ResultFileError(f"{name} does not hold an object")
    return value


def parse_junit(data: bytes) -> JunitSummary:
    """Counts from a JUnit XML document; one outcome per test, the worst one when a test has several."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ResultFileError("junit.xml declares a DTD or entities, which pytest never writes")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise ResultFileError(f"junit.xml is not well-formed XML ({error})") from None
    ranks = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}
    outcomes: dict[tuple[str, str], str] = {}
    collection_errors: set[tuple[str, str]] = set()
    for case in root.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        outcome = "passed"
        for child in case:
            found = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(child.tag)
            if found and ranks[found] > ranks[outcome]:
                outcome = found
            if child.tag == "error" and child.get("message") == "collection failure":
                collection_errors.add(key)
        if key not in outcomes or ranks[outcome] > ranks[outcomes[key]]:
            outcomes[key] = outcome
    values = list(outcomes.values())
    return JunitSummary(passed=values.count("passed"), failed=values.count("failed"), errors=values.count("error"),
                        skipped=values.count("skipped"), collection_errors=len(collection_errors))


# ---------------------------------------------------------------- coverage

def measured_files(checkout: Path) -> list[str]:
    """Relative paths of the learner source files coverage is computed over: their packages' files."""
    packages = learner_packages(checkout)
    files = [path.relative_to(checkout).as_posix() for path in python_source_files(checkout)]
    if packages:
        files = [name for name in files
                 if any(name == package or name.startswith(package + "/") for package in packages)]
    # Larger files are generated or hostile (pathological parsing time); they are left out, not scored.
    return [name for name in files if (checkout / name).stat().st_size <= MAX_MEASURED_FILE_BYTES]


def coverage_rcfile(project: Path, files: list[str], canary: Path) -> str:
    include = "".join(f"\n    {project / name}" for name in files if SAFE_PATH.match(name))
    return (
        "[run]\nbranch = True\nparallel = False\n"
        f"include ={include}\n    {canary}\n"
        "disable_warnings = no-data-collected, module-not-measured, module-imported, include-ignored\n"
        f"[report]\nexclude_lines =\n    {PRAGMA_EXCLUDE}\n"
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


def check_coverage_data(exported: dict, *, project: Path, checkout: Path, files: list[str],
                        canary: Path) -> tuple[dict[str, list[tuple[int, int]]], list[Flag]]:
    """Arcs per relative path, plus findings: data for files never measured, impossible lines, a stopped tracer."""
    flags: list[Flag] = []
    by_sandbox_path = {str(project / name): name for name in files}
    arcs_by_file: dict[str, list[tuple[int, int]]] = {}
    canary_lines: set[int] = set()
    entries = exported.get("files")
    if not isinstance(entries, dict) or exported.get("has_arcs") is not True:
        return {}, [Flag("coverage_data_forged", "coverage data is not branch data from the service's tracer")]
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
        plausible, count = code_lines(checkout / relative)
        bad = sorted({line for pair in arcs for line in pair
                      if (line > 0 and line not in plausible) or abs(line) > count})
        if bad:
            flags.append(Flag("coverage_data_forged",
                              f"coverage data marks lines without code as run (e.g. {bad[:5]})", relative))
            continue
        arcs_by_file[relative] = arcs
    if CANARY_BEGIN_LINE not in canary_lines or CANARY_END_LINE not in canary_lines:
        flags.append(Flag("coverage_stopped", "coverage was not running for the whole test session "
                                              "(the service's canary lines were not recorded)"))
    return arcs_by_file, flags


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
    engine.clear_exclude()
    engine.exclude(PRAGMA_EXCLUDE)
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
    return _totals(per_file), notes


def _report_key(key: str) -> Path:
    return Path(key).resolve() if os.path.isabs(key) else (Path.cwd() / key).resolve()


def _file_coverage(name: str, entry: dict) -> FileCoverage:
    summary = entry["summary"]
    statements, covered = summary["num_statements"], summary["covered_lines"]
    branches, covered_branches = summary.get("num_branches", 0), summary.get("covered_branches", 0)
    return FileCoverage(
        path=name, statements=statements, covered_lines=covered, missing_lines=list(entry.get("missing_lines", [])),
        branches=branches, covered_branches=covered_branches, excluded_lines=len(entry.get("excluded_lines", [])),
        line_percent=_percent(covered, statements), branch_percent=_percent(covered_branches, branches),
    )


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 100.0


def _totals(files: list[FileCoverage]) -> CoverageResult:
    statements = sum(f.statements for f in files)
    covered = sum(f.covered_lines for f in files)
    branches = sum(f.branches for f in files)
    covered_branches = sum(f.covered_branches for f in files)
    return CoverageResult(
        line_percent=_percent(covered, statements), branch_percent=_percent(covered_branches, branches),
        excluded_lines=sum(f.excluded_lines for f in files), statements=statements, covered_lines=covered,
        branches=branches, covered_branches=covered_branches, files=files,
    )


# ---------------------------------------------------------------- the run

def copy_checkout(source: Path, destination: Path) -> None:
    """Copy the checkout so learner code cannot change what the host later reads and scans.

    Leaves out .git and any shipped bytecode (a .pyc can claim to be compiled from a source it does not match).
    """
    destination.mkdir(parents=True, exist_ok=True)
    try:
        for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
            here = Path(dirpath)
            target = destination / here.relative_to(source)
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and not (here == source and d == ".git")]
            for name in dirnames:
                path = here / name
                if path.is_symlink():
                    os.symlink(os.readlink(path), target / name)
                else:
                    (target / name).mkdir()
            for name in filenames:
                path = here / name
                if name.endswith((".pyc", ".pyo")):
                    continue
                if path.is_symlink():
                    os.symlink(os.readlink(path), target / name)
                elif path.is_file():
                    shutil.copyfile(path, target / name, follow_symlinks=False)
                    os.chmod(target / name, 0o755 if os.access(path, os.X_OK) else 0o644)
    except OSError as error:
        raise MeasureError(f"the checkout could not be copied into the work area: {error.strerror}") from None


def _write_control(control: Path, *, project: Path, files: list[str]) -> Path:
    control.mkdir(parents=True, exist_ok=True)
    os.chmod(control, 0o755)
    canary = control / "assessor_canary.py"
    contents = {
        "runner.py": RUNNER_SOURCE,
        "assessor_canary.py": CANARY_SOURCE,
        "coveragerc": coverage_rcfile(project, files, canary),
    }
    for name, text in contents.items():
        (control / name).write_text(text)
        os.chmod(control / name, 0o644)
    return canary


def _fresh_out_dir(out_dir: Path) -> bytes:
    """Empty the output directory and leave a new one-time token for the runner; nothing of a previous run stays."""
    for entry in out_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    token = secrets.token_bytes(32)
    (out_dir / "token").write_bytes(token)
    return token


def run_tests(checkout: Path, *, environment, work_dir: Path, limits: SandboxLimits,
              unsafe_no_sandbox: bool = False) -> TestRun:
    """Run the learner's tests in the sandbox and return checked counts, coverage and integrity flags.

    `environment` is an assessor.environment.Environment (its venv is bound read-only). `work_dir` must be a
    fresh directory for this run only; everything the learner's code wrote there is discarded afterwards.
    """
    checkout = checkout.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(work_dir, 0o711)
    work_dir = work_dir.resolve()
    if not SAFE_PATH.match(str(work_dir)):
        raise MeasureError(f"work directory {work_dir} has characters the coverage config cannot hold")
    files = measured_files(checkout)
    control, area = work_dir / "control", work_dir / "area"
    unmeasurable = [name for name in files if not SAFE_PATH.match(name)]
    notes = [f"{name}: its file name cannot be measured safely" for name in unmeasurable[:20]]
    project, out_dir = area / "project", area / OUT_DIR_NAME
    canary = _write_control(control, project=project, files=files)
    kept, dropped = filter_addopts(learner_addopts(checkout))
    if dropped:
        notes.append(f"ignored from the learner's pytest addopts: {' '.join(dropped)}"[:500])
    flags = scan_for_gaming(checkout)
    python = str(environment.python)
    env = {"PYTHONPATH": f"{project}:{project / 'src'}"}

    def run(mode: str) -> tuple[SandboxResult, bytes]:
        token = _fresh_out_dir(out_dir)
        arguments = pytest_arguments(project=project, out_dir=out_dir, kept_addopts=kept, collect=mode == "collect")
        argv = [python, "-I", str(control / "runner.py"), mode, str(control), str(out_dir), str(project), "--",
                *arguments]
        result = run_sandboxed(argv, workdir=area, venv=Path(environment.venv), limits=limits,
                               unsafe_no_sandbox=unsafe_no_sandbox, env=env, readonly_binds=(control,), cwd=project)
        return result, token

    # Results get their own small filesystem, so tests that fill the work area cannot crowd them out.
    with size_capped_dir(area, limits.workdir_mb), size_capped_dir(out_dir, RESULTS_AREA_MB):
        copy_checkout(checkout, project)
        collect_result, token = run("collect")
        collected = _collected(out_dir, token)
        if collect_result.killed_by:
            notes.append(f"collecting the tests was stopped by the {collect_result.killed_by} limit")
            return _finish(TestRun(tests=None, coverage=None, sandbox=collect_result, flags=flags, notes=notes))
        result, token = run("test")
        outcome = _read_outcome(out_dir, token=token, result=result, checkout=checkout, project=project,
                                files=files, canary=canary, collected=collected)
        outcome.flags += _modified_sources(checkout, project, files)
    return _finish(TestRun(tests=outcome.tests, coverage=outcome.coverage, sandbox=result,
                           flags=flags + outcome.flags, collected=collected, notes=notes + outcome.notes))


def _modified_sources(checkout: Path, project: Path, files: list[str]) -> list[Flag]:
    """Measured sources the run rewrote: coverage of a rewritten file says nothing about the original."""
    flags = []
    for name in files:
        copy = project / name
        try:
            same = not copy.is_symlink() and copy.is_file() and copy.read_bytes() == (checkout / name).read_bytes()
        except OSError:
            same = False
        if not same:
            flags.append(Flag("source_modified", "the tests changed or removed a measured source file", name))
    return flags


def read_signed_status(out_dir: Path, name: str, token: bytes) -> dict:
    """The runner's status, only if its signature holds (learner code never sees the token)."""
    status = read_json_result(out_dir, name, MAX_STATUS_BYTES)
    mac = status.pop("mac", None)
    payload = json.dumps(status, sort_keys=True).encode()
    if not isinstance(mac, str) or not hmac.compare_digest(mac, hmac.new(token, payload, hashlib.sha256).hexdigest()):
        raise ResultChangedError(f"{name} is not signed by the service's runner")
    return status


def read_checked_result(out_dir: Path, name: str, max_bytes: int, status: dict) -> bytes:
    """A result file, only if it is exactly what the runner saw when it signed its status."""
    data = read_result_file(out_dir, name, max_bytes)
    digests = status.get("files") if isinstance(status.get("files"), dict) else {}
    if digests.get(name) != hashlib.sha256(data).hexdigest():
        raise ResultChangedError(f"{name} was changed after the runner finished")
    return data


def _collected(out_dir: Path, token: bytes) -> int | None:
    try:
        status = read_signed_status(out_dir, "collect-status.json", token)
    except ResultFileError:
        return None
    value = status.get("collected")
    return value if status.get("finished") is True and type(value) is int and value >= 0 else None


@dataclass
class _Outcome:
    tests: TestCounts | None = None
    coverage: CoverageResult | None = None
    flags: list[Flag] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_outcome(out_dir: Path, *, token: bytes, result: SandboxResult, checkout: Path, project: Path,
                  files: list[str], canary: Path, collected: int | None) -> _Outcome:
    outcome = _Outcome()
    if result.killed_by:
        outcome.notes.append(f"the test run was stopped by the {result.killed_by} limit")
        return outcome
    try:
        status = read_signed_status(out_dir, "status.json", token)
    except ResultFileError as error:
        code = "results_forged" if isinstance(error, ResultChangedError) else "early_exit"
        outcome.flags.append(Flag(code, f"the service's runner did not report (exit code {result.exit_code}): "
                                        f"{error}; nothing the run wrote is trusted"))
        return outcome
    if status.get("finished") is not True:
        outcome.flags.append(Flag("early_exit", f"the test session was cut short ({status.get('error', 'unknown')}); "
                                                f"nothing it reported is trusted"))
        return outcome
    if status.get("exit_code") != result.exit_code:
        outcome.flags.append(Flag("exit_code_mismatch", f"pytest returned {status.get('exit_code')} but the process "
                                                        f"exited with {result.exit_code}"))
    _read_tests(outcome, out_dir, status=status, collected=collected)
    _read_coverage(outcome, out_dir, status=status, checkout=checkout, project=project, files=files, canary=canary)
    return outcome


def _read_tests(outcome: _Outcome, out_dir: Path, *, status: dict, collected: int | None) -> None:
    if status.get("exit_code") in (3, 4):
        outcome.notes.append("pytest could not run the session (usage or internal error); see the output")
        return
    try:
        junit = parse_junit(read_checked_result(out_dir, "junit.xml", MAX_JUNIT_BYTES, status))
    except ResultChangedError as error:
        outcome.flags.append(Flag("results_forged", f"test results unusable: {error}"))
        return
    except ResultFileError as error:
        code = "junit_missing" if "not written" in str(error) else "junit_invalid"
        outcome.flags.append(Flag(code, f"test results unusable: {error}"))
        return
    observed = status.get("counts") if isinstance(status.get("counts"), dict) else {}
    if (observed.get("passed"), observed.get("failed"), observed.get("error"), observed.get("skipped")) != \
            (junit.passed, junit.failed, junit.errors, junit.skipped):
        outcome.flags.append(Flag("junit_inconsistent", "the JUnit report disagrees with what the service's runner "
                                                        "saw during the run"))
        return
    errors = junit.errors
    expected = collected if collected is not None else status.get("collected")
    if type(expected) is int:
        if junit.test_results > expected:
            outcome.flags.append(Flag("results_exceed_collected", f"{junit.test_results} results for {expected} "
                                                                  f"collected tests"))
            return
        if junit.test_results < expected:
            missing = expected - junit.test_results
            outcome.flags.append(Flag("results_missing", f"{missing} of {expected} collected tests have no result; "
                                                         f"they are counted as errors"))
            errors += missing
    outcome.tests = TestCounts(passed=junit.passed, failed=junit.failed, errors=errors, skipped=junit.skipped,
                               total=junit.passed + junit.failed + errors + junit.skipped)


def _read_coverage(outcome: _Outcome, out_dir: Path, *, status: dict, checkout: Path, project: Path,
                   files: list[str], canary: Path) -> None:
    try:
        data = read_checked_result(out_dir, "coverage.json", MAX_COVERAGE_JSON_BYTES, status)
        exported = json.loads(data)
    except ResultChangedError as error:
        outcome.flags.append(Flag("results_forged", f"coverage data unusable: {error}"))
        return
    except ResultFileError as error:
        outcome.flags.append(Flag("coverage_data_missing", f"coverage data unusable: {error}"))
        return
    except (ValueError, RecursionError):
        outcome.flags.append(Flag("coverage_data_missing", "coverage data is not valid JSON"))
        return
    if not isinstance(exported, dict):
        outcome.flags.append(Flag("coverage_data_missing", "coverage data is not an object"))
        return
    arcs_by_file, flags = check_coverage_data(exported, project=project, checkout=checkout, files=files,
                                              canary=canary)
    outcome.flags += flags
    outcome.coverage, notes = coverage_report(checkout, files, arcs_by_file)
    outcome.notes += notes


def _finish(run: TestRun) -> TestRun:
    """Apply the flags: a figure any finding makes untrustworthy is dropped, never kept as a score."""
    voided = set().union(*(FLAG_VOIDS.get(flag.code, frozenset()) for flag in run.flags))
    if "tests" in voided:
        run.tests = None
    if "coverage" in voided:
        run.coverage = None
    clean = run.sandbox.exit_code in (0, 5) and run.sandbox.killed_by is None and run.tests is not None \
        and run.tests.failed == 0 and run.tests.errors == 0
    run.output_tail = "" if clean else run.sandbox.output[-OUTPUT_TAIL_CHARS:]
    return run
