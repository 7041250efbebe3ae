"""Each Node test runner's command line with the service's coverage settings, and reading back what it wrote."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from assessor.engine.measure.outcomes import FileCoverage, percent
from assessor.engine.measure.resultfiles import MAX_FAILURE_MESSAGE, MAX_FAILURES_KEPT, ResultFileError, TestFailure

MAX_JEST_JSON_BYTES = 20 * 1024 * 1024
# Where a runner may write its own caches: the sandbox's /tmp, never the project.
CACHE_DIR = "/tmp/runner-cache"


@dataclass(frozen=True)
class RunnerCommand:
    argv: list[str]
    report: str        # junit.xml or jest.json, in the output folder
    coverage: str = "coverage/coverage-final.json"


def command(runner: str, *, root: Path, out_dir: Path, sources: list[str], paths: tuple[str, ...], tools: Path,
            typescript: str | None, test_files: list[str], control: Path) -> RunnerCommand:
    """The runner's command: the learner's tests with the service's coverage over `sources` (paths relative to
    `root`), whatever the learner's own coverage configuration says."""
    node_modules = root / "node_modules"
    coverage_dir = out_dir / "coverage"
    if runner == "jest":
        argv = ["node", str(node_modules / "jest/bin/jest.js"), "--ci", "--watchAll=false", "--coverage",
                "--coverageReporters=json", f"--coverageDirectory={coverage_dir}",
                "--coveragePathIgnorePatterns=/node_modules/", "--coverageThreshold={}", "--json",
                f"--outputFile={out_dir / 'jest.json'}", f"--cacheDirectory={CACHE_DIR}", "--passWithNoTests"]
        argv += [f"--collectCoverageFrom={glob}" for glob in _jest_coverage_globs(sources)] \
            or ["--collectCoverageFrom=!**"]
        return RunnerCommand([*argv, *paths], "jest.json")
    if runner == "vitest":
        argv = ["node", str(node_modules / "vitest/vitest.mjs"), "run", "--coverage.enabled=true",
                "--coverage.reporter=json", f"--coverage.reportsDirectory={coverage_dir}", "--coverage.clean=true",
                "--coverage.exclude=**/node_modules/**", "--coverage.reportOnFailure=true", "--coverage.thresholds.lines=0",
                "--coverage.thresholds.branches=0", "--coverage.thresholds.functions=0",
                "--coverage.thresholds.statements=0", "--coverage.all=true", "--reporter=default", "--reporter=junit",
                f"--outputFile.junit={out_dir / 'junit.xml'}", "--passWithNoTests", "--watch=false"]
        argv += [f"--coverage.include={_literal_glob(source)}" for source in sources] \
            or ["--coverage.include=__none__"]
        return RunnerCommand([*argv, *paths], "junit.xml")
    c8 = ["node", str(tools / "node_modules/c8/bin/c8.js"), f"--config={control / 'c8.json'}"]
    loader = {"tsx": ["--import", "tsx"], "ts-node": ["--require", "ts-node/register"]}.get(typescript or "", [])
    if runner == "mocha":
        argv = [*c8, "node", *loader, str(node_modules / "mocha/bin/mocha.js"), "--reporter=xunit",
                f"--reporter-option=output={out_dir / 'junit.xml'}", "--exit"]
        return RunnerCommand([*argv, *paths], "junit.xml")
    # node's own test runner; TypeScript test files are named, since node 20 discovers only .js ones.
    files = list(paths) or ([name for name in test_files if name.endswith((".ts", ".mts", ".cts", ".tsx"))]
                            if typescript else [])
    argv = [*c8, "node", *loader, "--test", "--test-reporter=junit",
            f"--test-reporter-destination={out_dir / 'junit.xml'}", "--test-reporter=spec",
            "--test-reporter-destination=stdout"]
    return RunnerCommand([*argv, *files], "junit.xml")


_GLOB_SPECIAL = re.compile(r"([\\*?\[\]{}()!+@])")


def _literal_glob(path: str) -> str:
    """A path as a glob that matches only itself (route files are named like `[id].ts` or `(group)/page.ts`)."""
    return _GLOB_SPECIAL.sub(r"\\\1", path)


def _jest_coverage_globs(sources: list[str]) -> list[str]:
    """Jest matches `collectCoverageFrom` against a file's path from its config's rootDir, which a project may set
    below its root (Nest's `"rootDir": "src"`), so each source is also given from each of its folders; what is
    measured is narrowed back to exactly `sources` when the report is read."""
    globs = []
    for source in sources:
        parts = source.split("/")
        globs.extend(_literal_glob("/".join(parts[index:])) for index in range(len(parts)))
    return list(dict.fromkeys(globs))


def mutant_command(runner: str, *, root: Path, out_dir: Path, paths: tuple[str, ...], typescript: str | None,
                   test_files: list[str], changed: str) -> RunnerCommand:
    """The runner's command for one sampled change to `changed` (relative to `root`): no coverage, and only the
    tests that depend on the file where the runner can tell (Jest, Vitest). Every test runs: stopping at the
    first failure would keep Jest from writing its report."""
    node_modules = root / "node_modules"
    target = str(root / changed)
    if runner == "jest":
        return RunnerCommand(["node", str(node_modules / "jest/bin/jest.js"), "--ci", "--watchAll=false", "--json",
                              f"--outputFile={out_dir / 'jest.json'}", f"--cacheDirectory={CACHE_DIR}",
                              "--passWithNoTests", "--findRelatedTests", target], "jest.json")
    if runner == "vitest":
        return RunnerCommand(["node", str(node_modules / "vitest/vitest.mjs"), "related", target, "--run",
                              "--reporter=default", "--reporter=junit", f"--outputFile.junit={out_dir / 'junit.xml'}",
                              "--passWithNoTests"], "junit.xml")
    loader = {"tsx": ["--import", "tsx"], "ts-node": ["--require", "ts-node/register"]}.get(typescript or "", [])
    if runner == "mocha":
        return RunnerCommand(["node", *loader, str(node_modules / "mocha/bin/mocha.js"), "--reporter=xunit",
                              f"--reporter-option=output={out_dir / 'junit.xml'}", "--exit", *paths],
                             "junit.xml")
    files = list(paths) or ([name for name in test_files if name.endswith((".ts", ".mts", ".cts", ".tsx"))]
                            if typescript else [])
    return RunnerCommand(["node", *loader, "--test", "--test-reporter=junit",
                          f"--test-reporter-destination={out_dir / 'junit.xml'}", *files], "junit.xml")


def c8_config(*, root: Path, out_dir: Path, sources: list[str]) -> dict:
    """The service's c8 configuration (given with --config, so no .c8rc or package.json "c8" of the learner's
    is read): every source file counts, loaded or not."""
    return {"all": True, "include": sources or ["__none__"], "exclude": ["**/node_modules/**"],
            "exclude-node-modules": True, "reporter": ["json"], "report-dir": str(out_dir / "coverage"),
            "temp-directory": "/tmp/c8-raw", "src": [str(root)], "clean": True, "check-coverage": False,
            "skip-full": False}


# ---------------------------------------------------------------- results

@dataclass(frozen=True)
class JestCounts:
    passed: int
    failed: int
    errors: int      # test files that could not run (a syntax error, a failing import)
    skipped: int
    failures: tuple[TestFailure, ...]
    # Failing tests whose failure shows an absent server: (their outcome, the server), counted above too.
    unavailable: tuple[tuple[str, str], ...] = ()
    left_out: str | None = None   # the status of the test the service added, None if absent


def parse_jest_json(data: bytes, *, root: Path, blame=None, leave_out: str | None = None) -> JestCounts:
    """Counts from Jest's own JSON report, one per test; a test file that failed to run is one error.
    `blame(text)`: the absent server a failure's text shows was unreachable, or None; `leave_out`: the title of
    a test the service added, not counted."""
    try:
        report = json.loads(data)
    except (ValueError, RecursionError):
        raise ResultFileError("jest.json is not valid JSON") from None
    if not isinstance(report, dict) or not isinstance(report.get("testResults"), list):
        raise ResultFileError("jest.json is not Jest's report")
    passed = failed = errors = skipped = 0
    left_out = None
    failures: list[TestFailure] = []
    unavailable: list[tuple[str, str]] = []
    for suite in report["testResults"]:
        if not isinstance(suite, dict):
            raise ResultFileError("jest.json holds a malformed test file result")
        results = suite.get("assertionResults") if isinstance(suite.get("assertionResults"), list) else []
        file = _relative(suite.get("name"), root)
        if not results and suite.get("status") == "failed":
            errors += 1
            server = blame(str(suite.get("message") or suite.get("failureMessage") or "")) if blame else None
            if server:
                unavailable.append(("error", server))
            elif len(failures) < MAX_FAILURES_KEPT:
                failures.append(TestFailure(name="(test file)", classname=file or "", outcome="error",
                                            message=_short(suite.get("message") or suite.get("failureMessage")),
                                            file=file))
            continue
        for result in results:
            status = result.get("status") if isinstance(result, dict) else None
            if leave_out is not None and isinstance(result, dict) and result.get("title") == leave_out:
                left_out = status if isinstance(status, str) else "unknown"
                continue
            if status == "passed":
                passed += 1
            elif status == "failed":
                failed += 1
                messages = result.get("failureMessages") if isinstance(result.get("failureMessages"), list) else []
                server = blame("\n".join(map(str, messages))) if blame else None
                if server:
                    unavailable.append(("failed", server))
                elif len(failures) < MAX_FAILURES_KEPT:
                    location = result.get("location") if isinstance(result.get("location"), dict) else {}
                    failures.append(TestFailure(
                        name=str(result.get("fullName") or result.get("title") or "")[:300],
                        classname=file or "", outcome="failed", message=_short(messages[0] if messages else ""),
                        file=file, line=location.get("line") if isinstance(location.get("line"), int) else None))
            elif status in ("pending", "skipped", "todo", "disabled", "focused"):
                skipped += 1
            else:
                raise ResultFileError(f"jest.json has a test with the unknown status {status!r}")
    return JestCounts(passed, failed, errors, skipped, tuple(failures), tuple(unavailable), left_out)


def _short(text: object) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip() and not line.strip().startswith("at ")]
    return " ".join(lines[:3])[:MAX_FAILURE_MESSAGE]


def _relative(path: object, root: Path) -> str | None:
    if not isinstance(path, str):
        return None
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


def coverage_from_istanbul(data: dict, *, root: Path, relative_root: str, sources: list[str],
                           line_counts: dict[str, int], ignore_comments: dict[str, int] | None = None) \
        -> tuple[list[FileCoverage], list[str]]:
    """Per-file figures the way istanbul reports them (a line is covered when a statement starting on it ran; a
    branch when that arm ran), for exactly the learner's `sources`; anything else in the data is ignored.

    Returns the files and the sources the data says nothing plausible about (left out, with a note)."""
    by_path = {}
    for key, entry in data.items():
        if not isinstance(entry, dict):
            continue
        name = entry.get("path", key)
        relative = _relative(name, root) if isinstance(name, str) else None
        if relative is not None:
            by_path[relative] = entry
    files, problems = [], []
    for source in sources:
        entry = by_path.get(source)
        prefix = source if relative_root in ("", ".") else f"{relative_root}/{source}"
        if entry is None:
            problems.append(source)
            continue
        figures = _file_figures(entry, line_counts.get(source, 0))
        if figures is None:
            problems.append(source)
            continue
        statements, covered, branches, covered_branches, missing, partial = figures
        files.append(FileCoverage(path=prefix, statements=statements, covered_lines=covered, missing_lines=missing,
                                  branches=branches, covered_branches=covered_branches, partial_lines=partial,
                                  excluded_lines=(ignore_comments or {}).get(source, 0),
                                  line_percent=percent(covered, statements),
                                  branch_percent=percent(covered_branches, branches)))
    return files, problems


def _file_figures(entry: dict, line_count: int):
    """(lines, covered lines, branches, covered branches, missing lines, lines with an untaken branch), or None
    when the entry is malformed or names lines the file does not have."""
    statement_map, counts = entry.get("statementMap"), entry.get("s")
    branch_map, branch_counts = entry.get("branchMap"), entry.get("b")
    if not all(isinstance(value, dict) for value in (statement_map, counts, branch_map, branch_counts)):
        return None
    lines: dict[int, int] = {}
    for key, count in counts.items():
        location = statement_map.get(key)
        if not isinstance(location, dict) or not isinstance(count, int) or count < 0:
            return None
        line = (location.get("start") or {}).get("line")
        if not isinstance(line, int) or not 0 < line <= max(line_count, 1):
            return None
        lines[line] = max(lines.get(line, 0), count)
    branches = covered_branches = 0
    partial: set[int] = set()
    for key, arms in branch_counts.items():
        if key not in branch_map or not isinstance(arms, list) or not all(isinstance(n, int) for n in arms):
            return None
        branches += len(arms)
        covered_branches += sum(1 for count in arms if count > 0)
        line = _branch_line(branch_map[key])
        if line is not None and 0 < line <= max(line_count, 1) and any(count == 0 for count in arms):
            partial.add(line)
    missing = sorted(line for line, count in lines.items() if count == 0)
    partial -= set(missing)
    return (len(lines), sum(1 for count in lines.values() if count > 0), branches, covered_branches, missing,
            sorted(partial))


def _branch_line(branch: object) -> int | None:
    if not isinstance(branch, dict):
        return None
    start = (branch.get("loc") or {}).get("start") if isinstance(branch.get("loc"), dict) else None
    line = start.get("line") if isinstance(start, dict) else branch.get("line")
    return line if isinstance(line, int) else None

