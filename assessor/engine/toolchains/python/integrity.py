"""Read every Python file of a checkout for ways to stop coverage, rewrite test outcomes or forge results."""

import ast
import os
from pathlib import Path

from assessor.engine.measure.outcomes import Flag

MAX_SCANNED_FILE_BYTES = 1024 * 1024
MAX_SCANNED_FILES = 5000
SCAN_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "env", ".tox", ".nox", "node_modules",
                               "site-packages", "__pycache__"})
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
# Ways to reach into the running process from a test: shown to the mentor as evidence, never a verdict on their
# own (the canaries and the mutants say whether figures were changed).
REACH_IN_ATTRIBUTES = {
    "_getframe": "reads the call stack's frames (sys._getframe)",
    "currentframe": "reads the call stack's frames (inspect.currentframe)",
    "getouterframes": "reads the call stack's frames (inspect.getouterframes)",
    "_current_frames": "reads every thread's frames (sys._current_frames)",
    "f_back": "walks up the call stack (f_back)",
    "f_locals": "reads or changes another frame's variables (f_locals)",
    "tb_frame": "reads frames from a traceback (tb_frame)",
    "get_objects": "walks every object the garbage collector tracks (gc.get_objects)",
    "get_referrers": "finds objects through the garbage collector (gc.get_referrers)",
    "get_referents": "finds objects through the garbage collector (gc.get_referents)",
    "pythonapi": "calls the interpreter's C API (ctypes.pythonapi)",
    "PyFrame_LocalsToFast": "writes another frame's variables through the C API",
    "pluginmanager": "reaches pytest's plugin manager",
}
REACH_IN_MODULES = {"ctypes": "loads ctypes (raw memory and C calls)", "_pytest": "imports pytest's internals",
                    "pluggy": "imports pytest's hook machinery"}
MAX_EVIDENCE = 60


def scan_for_gaming(root: Path, *, project_root: Path | None = None) -> list[Flag]:
    """Findings from reading every Python file in the checkout (tests and conftest included); modules that
    would shadow the service's tools are looked for where the project puts its code on the path."""
    flags: dict[tuple[str, str | None], Flag] = {}
    for path in _scannable_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            source = path.read_bytes()
        except OSError:
            continue
        for code, message in _scan_source(source, relative):
            if code != "report_hook":  # the runner lists the hooks really registered; the canary judges them
                flags.setdefault((code, relative), Flag(code, message, relative))
    for flag in _shadowing_flags(project_root or root, root):
        flags.setdefault((flag.code, flag.path), flag)
    return list(flags.values())


def scan_evidence(root: Path) -> list[dict]:
    """Every place the checkout's Python reaches into frames, the garbage collector, ctypes or pytest's machinery,
    with file and line: evidence for the mentor, not a verdict."""
    found: list[dict] = []
    for path in _scannable_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_bytes(), filename=relative)
        except (OSError, SyntaxError, ValueError, RecursionError):
            continue
        for node in ast.walk(tree):
            detail = None
            if isinstance(node, ast.Attribute):
                detail = REACH_IN_ATTRIBUTES.get(node.attr)
            elif isinstance(node, ast.Import):
                detail = next((REACH_IN_MODULES[a.name.split(".")[0]] for a in node.names
                               if a.name.split(".")[0] in REACH_IN_MODULES), None)
            elif isinstance(node, ast.ImportFrom) and node.module:
                detail = REACH_IN_MODULES.get(node.module.split(".")[0]) or next(
                    (REACH_IN_ATTRIBUTES[a.name] for a in node.names if a.name in REACH_IN_ATTRIBUTES), None)
            if detail:
                found.append({"kind": "reach_in", "file": relative, "line": getattr(node, "lineno", None),
                              "detail": detail})
                if len(found) >= MAX_EVIDENCE:
                    return found
    return found


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


def _shadowing_flags(project_root: Path, root: Path) -> list[Flag]:
    flags = []
    for base in (project_root, project_root / "src"):
        if not base.is_dir() or base.is_symlink():
            continue
        for entry in base.iterdir():
            name = entry.name[:-3] if entry.name.endswith(".py") else entry.name
            if name in SHADOWED_TOOLS and (entry.is_dir() or entry.name.endswith(".py")):
                relative = entry.relative_to(root).as_posix()
                flags.append(Flag("shadowing_module", f"{relative} has the name of a tool the service runs "
                                                      f"(it is ignored: the tools load first)", relative))
    return flags

