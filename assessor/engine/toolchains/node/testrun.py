"""Run a Node.js capstone's tests in the sandbox with the service's coverage, and keep only figures that hold up."""

import importlib.resources
import json
import os
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from assessor.engine.measure.outcomes import (
    Flag, Outcome, TestCounts, TestRun, absent_server_verdict, channel_message, checked_coverage_data,
    coverage_totals, finish_run, suspect_flags, unavailable_note,
)
from assessor.engine.measure.resultfiles import MAX_JUNIT_BYTES, ResultFileError, clear_out_dir, parse_junit
from assessor.engine.measure.strength import (
    MIN_MUTANT_SECONDS, MIN_MUTATION_BUDGET_SECONDS, MUTANT_TIME_FACTOR, MUTATION_BUDGET_FACTOR, Mutant,
    MutantResult, StrengthResult, choose_sample,
)
from assessor.engine.measure.workspace import copy_checkout, modified_sources
from assessor.engine.sandbox import SYSTEM_PYTHON, SandboxLimits, SandboxResult, run_sandboxed, size_capped_dir
from assessor.engine.services import ServicePlan, blame_for
from assessor.engine.services.runtime import prepare_services, read_status
from assessor.engine.measure.planted import restore as restore_planted
from assessor.engine.toolchains.node import canaries
from assessor.engine.toolchains.node.packages import Environment
from assessor.engine.toolchains.node.integrity import scan_for_gaming
from assessor.engine.toolchains.node.project import TestCommand, has_runtime_code
from assessor.engine.toolchains.node.mutants import TOOL as MUTATION_TOOL, MutantsError, mutants_for_files
from assessor.engine.toolchains.node.runners import (
    MAX_JEST_JSON_BYTES, c8_config, command, coverage_from_istanbul, mutant_command, parse_jest_json,
)

OUT_DIR_NAME = ".assessor-out"
RESULTS_AREA_MB = 128
MAX_COVERAGE_JSON_BYTES = 64 * 1024 * 1024
NODE_ADDRESS_SPACE_MB = 256 * 1024


@dataclass(frozen=True)
class NodeTestRequest:
    checkout: Path
    root: Path
    test: TestCommand
    sources: list[str]                  # relative to root
    test_files: list[str]               # relative to root
    ignore_comments: dict[str, int] = field(default_factory=dict)
    services: ServicePlan = field(default_factory=ServicePlan)
    cache_dir: Path | None = None
    shared_dir: Path | None = None
    mutants: int = 0                    # how many sampled changes to test for strength (0: none)
    seed: str = ""                      # what picks the sample (the commit)


def run_tests(request: NodeTestRequest, environment: Environment, *, work_dir: Path, limits: SandboxLimits,
              unsafe_no_sandbox: bool = False) -> TestRun:
    checkout = request.checkout.resolve()
    relative_root = request.root.resolve().relative_to(checkout)
    work_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(work_dir, 0o711)
    work_dir = work_dir.resolve()
    control, area = work_dir / "control", work_dir / "area"
    project = area / "project"
    project_root = project / relative_root
    out_dir = area / OUT_DIR_NAME
    control.mkdir(parents=True, exist_ok=True)
    os.chmod(control, 0o755)
    supervisor = control / "supervisor.py"
    supervisor.write_text(importlib.resources.files("assessor.engine.toolchains.node").joinpath("supervisor.py").read_text())
    (control / "c8.json").write_text(json.dumps(c8_config(root=project_root, out_dir=out_dir,
                                                          sources=request.sources)))
    for path in (supervisor, control / "c8.json"):
        os.chmod(path, 0o644)
    runner = command(request.test.runner, root=project_root, out_dir=out_dir, sources=request.sources,
                     paths=request.test.paths, tools=environment.tools, typescript=request.test.typescript,
                     test_files=request.test_files, control=control)
    found = scan_for_gaming(checkout)
    # A results processor alone is no verdict (the canary judges what it did): it is shown as evidence.
    evidence = [{"kind": "report_hook", "file": flag.path, "line": None, "detail": flag.message}
                for flag in found if flag.code == "report_hook"]
    flags = [flag for flag in found if flag.code != "report_hook"]
    notes = list(request.test.notes)
    env = {**request.services.env, "CI": "true", "NODE_ENV": request.services.env.get("NODE_ENV", "test"),
           "PATH": f"{project_root / 'node_modules/.bin'}:/usr/local/bin:/usr/bin:/bin", "FORCE_COLOR": "0",
           "NO_COLOR": "1", "npm_config_cache": "/tmp/npm-cache"}
    measured = [(relative_root / source).as_posix() for source in request.sources]

    # V8 reserves address space far beyond what it uses (about 10 GB for each WebAssembly instance, which
    # esbuild, rollup and es-module-lexer all start): the memory limit is on what the run really uses instead.
    limits = replace(limits, address_space_mb=max(limits.memory_mb, NODE_ADDRESS_SPACE_MB))
    modules = work_dir / "modules"
    # Tests may write into node_modules (caches): each run writes into its own copy, bounded like the work area.
    modules_mb, modules_files = _tree_size(environment.node_modules)
    with size_capped_dir(area, limits.workdir_mb), size_capped_dir(out_dir, RESULTS_AREA_MB), \
            size_capped_dir(modules, modules_mb + limits.workdir_mb, inodes=2 * modules_files + 65536):
        copy_checkout(checkout, project, skip_dirs=("node_modules",))
        (project_root / "node_modules").mkdir(exist_ok=True)
        subprocess.run(["cp", "-a", str(environment.node_modules), str(modules / "node_modules")], check=True,
                       timeout=300)
        services, problems = prepare_services(request.services, control=control / "services", area=area,
                                              cache_dir=request.cache_dir or work_dir / "cache",
                                              shared_dir=request.shared_dir or work_dir / "shared",
                                              unsafe_no_sandbox=unsafe_no_sandbox)
        notes += problems
        test_canary = canaries.plant_test(project_root, request.test_files)
        code_canaries = canaries.plant_code(project_root, request.sources)

        def run(runner_argv: list[str], run_limits: SandboxLimits) -> SandboxResult:
            clear_out_dir(out_dir)
            (out_dir / "coverage").mkdir()
            argv = [str(SYSTEM_PYTHON), "-I", "-S", str(supervisor), str(out_dir), "--", *runner_argv]
            hosts, tmpfs_dirs, tools = (), (), ()
            if services is not None:  # fresh servers for every run: no state carries over
                services.reset()
                argv = services.command(argv, out_dir)
                hosts, tmpfs_dirs, tools = services.hosts, services.tmpfs_dirs, services.readonly
                run_limits = services.limits(run_limits)
            return run_sandboxed(argv, workdir=area, venv=None, limits=run_limits,
                                 unsafe_no_sandbox=unsafe_no_sandbox, env=env, cwd=project_root, hosts=hosts,
                                 tmpfs_dirs=tmpfs_dirs, readonly_binds=(control, environment.tools, *tools),
                                 binds=((modules / "node_modules", project_root / "node_modules"),),
                                 results_channel=True)

        result = run(runner.argv, limits)
        restore_planted(project_root, [*code_canaries, *([test_canary] if test_canary else [])])
        statuses = read_status(out_dir) if services is not None else []
        absent = request.services.absent(statuses)
        blame = blame_for(absent)
        outcome = _read_outcome(result=result, report=runner.report, request=request, project_root=project_root,
                                blame=blame, planted=_Planted(test_canary, tuple(code_canaries)))
        outcome.flags += modified_sources(checkout, project, measured)
        strength = None
        if request.mutants > 0:
            strength = _sample_strength(request, environment, outcome, run=run, limits=limits,
                                        project_root=project_root, out_dir=out_dir,
                                        suite_seconds=result.wall_seconds)
            outcome.flags += suspect_flags(strength, outcome.tests)
    ignored = sum(request.ignore_comments.values())
    if ignored:
        notes.append(f"{ignored} coverage-ignore comment{'s' if ignored != 1 else ''} (istanbul/c8/v8 ignore) in "
                     f"{len(request.ignore_comments)} file{'s' if len(request.ignore_comments) != 1 else ''}: the code "
                     f"they mark is left out of coverage, as the coverage tools do")
    notes += request.services.absence_notes(statuses)
    notes += [note for note in [unavailable_note(outcome.tests)] if note]
    return finish_run(TestRun(tests=outcome.tests, coverage=outcome.coverage, sandbox=result,
                              flags=flags + outcome.flags, notes=notes + outcome.notes, services=statuses,
                              failures=outcome.failures, evidence=evidence, strength=strength,
                              unmeasurable=absent_server_verdict(outcome.tests, absent, result.output, blame,
                                                                 result.killed_by)),
                      clean_exit_codes=frozenset({0, 1}) if test_canary else frozenset({0}),
                      scrub=lambda output: _scrub(output, test_canary))


@dataclass(frozen=True)
class _Planted:
    """The canaries of one run, known to the host only."""

    test: canaries.TestCanary | None = None
    code: tuple[canaries.CodeCanary, ...] = ()


def _scrub(output: str, test_canary: canaries.TestCanary | None) -> str:
    """The runner's output without the lines about the planted test (its counts in summaries are left as printed)."""
    if test_canary is None:
        return output
    error = test_canary.appended.decode().split('Error("', 1)[-1].split('"', 1)[0]
    return "\n".join(line for line in output.split("\n") if test_canary.title not in line and error not in line)


def _tree_size(folder: Path) -> tuple[int, int]:
    """(size of a folder's files in MB, rounded up; how many entries it holds), links not followed."""
    total = entries = 0
    for directory, folders, files in os.walk(folder):
        entries += len(folders) + len(files)
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                continue
    return total // (1024 * 1024) + 1, entries


def _read_outcome(*, result: SandboxResult, report: str, request: NodeTestRequest, project_root: Path,
                  blame=None, planted: _Planted = _Planted()) -> Outcome:
    outcome = Outcome()
    status = channel_message(outcome, result, reporter="supervisor")
    if status is None:
        return outcome
    if status.get("finished") is not True:
        outcome.notes.append(f"the test runner could not be started: {status.get('error', 'unknown')}")
        return outcome
    files = status.get("files") if isinstance(status.get("files"), dict) else {}
    _read_tests(outcome, files.get(report), status=status, report=report, project_root=project_root,
                output=result.output, blame=blame, test_canary=planted.test)
    _read_coverage(outcome, files.get("coverage/coverage-final.json"), request=request, project_root=project_root,
                   code_canaries=planted.code)
    return outcome


def _read_tests(outcome: Outcome, text: object, *, status: dict, report: str, project_root: Path,
                output: str, blame=None, test_canary: canaries.TestCanary | None = None) -> None:
    if not isinstance(text, str):
        outcome.notes.append(f"the test runner wrote no results (exit code {status.get('exit_code')}): "
                             f"{_last_error(output)}")
        return
    limit = MAX_JEST_JSON_BYTES if report == "jest.json" else MAX_JUNIT_BYTES
    data = text.encode()
    if not text or len(data) > limit:
        outcome.flags.append(Flag("junit_invalid", f"test results unusable: {report} is empty or larger than {limit} bytes"))
        return
    try:
        title = test_canary.title if test_canary else None
        if report == "jest.json":
            counts = parse_jest_json(data, root=project_root, blame=blame, leave_out=title)
        else:
            counts = parse_junit(data, blame=blame, leave_out=(None, title) if title else None)
    except ResultFileError as error:
        outcome.flags.append(Flag("junit_invalid", f"test results unusable: {error}"))
        return
    if test_canary is not None and status.get("exit_code") in (0, 1):
        _check_test_canary(outcome, counts.left_out)
    outcome.tests = TestCounts.of(passed=counts.passed, failed=counts.failed, errors=counts.errors,
                                  skipped=counts.skipped, unavailable=counts.unavailable)
    if outcome.tests.total + outcome.tests.unavailable == 0:
        outcome.notes.append(f"the test runner found no tests ({_last_error(output)}): name test files *.test.js, "
                             f"*.spec.ts or put them in test/, or give the test command in capstone.toml")
    outcome.failures = [failure.to_dict() for failure in counts.failures]


def _check_test_canary(outcome: Outcome, seen: str | None) -> None:
    """The planted test must have a result and must not pass; anything else means the results were rewritten."""
    if seen == "passed":
        outcome.flags.append(Flag("canary_passed", "a test the service added, which must fail, was reported as "
                                                   "passed: test results were altered inside the test process"))
    elif seen is None:
        outcome.flags.append(Flag("canary_missing", "a test the service added to your tests has no result: test "
                                                    "results were filtered inside the test process"))


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "rror" in line or line.startswith(("No test", "FAIL"))]
    return (errors[-1] if errors else (lines[-1] if lines else "no output"))[:300]


def _read_coverage(outcome: Outcome, text: object, *, request: NodeTestRequest, project_root: Path,
                   code_canaries: tuple[canaries.CodeCanary, ...] = ()) -> None:
    if not request.sources:
        outcome.notes.append("no application source file was found (tests, configuration and dependencies are "
                             "not measured), so there is nothing to measure coverage on")
        return
    data = checked_coverage_data(outcome, text if isinstance(text, str) and text else None,
                                 max_bytes=MAX_COVERAGE_JSON_BYTES)
    if data is None:
        return
    data = _without_code_canaries(outcome, data, project_root=project_root, code_canaries=code_canaries)
    line_counts = {}
    for source in request.sources:
        try:
            line_counts[source] = (request.root / source).read_bytes().count(b"\n") + 1
        except OSError:
            line_counts[source] = 0
    relative_root = request.root.resolve().relative_to(request.checkout.resolve()).as_posix()
    files, unreadable = coverage_from_istanbul(data, root=project_root, relative_root=relative_root,
                                               sources=request.sources, line_counts=line_counts,
                                               ignore_comments=request.ignore_comments)
    unreadable = [source for source in unreadable if has_runtime_code(request.root / source)]  # types only
    if unreadable:
        outcome.notes.append(f"no coverage data for {', '.join(unreadable[:5])}"
                             f"{' and more' if len(unreadable) > 5 else ''}: left out of coverage (not JavaScript or "
                             f"TypeScript the runner could load?)")
    outcome.coverage = coverage_totals(files) if files else None
    outcome.covered = _covered_lines(data, project_root=project_root, sources=request.sources)


def _without_code_canaries(outcome: Outcome, data: dict, *, project_root: Path,
                           code_canaries: tuple[canaries.CodeCanary, ...]) -> dict:
    """The coverage data with the planted functions taken out, flagging any of their lines reported as run."""
    planted = {canary.file: canary for canary in code_canaries}
    cleaned = {}
    for key, entry in data.items():
        name = entry.get("path", key) if isinstance(entry, dict) else key
        relative = _relative_to(name, project_root)
        canary = planted.get(relative) if relative else None
        if canary is None or not isinstance(entry, dict):
            cleaned[key] = entry
            continue
        entry, ran = canaries.strip_canary(entry, canary)
        if ran:
            outcome.flags.append(Flag("canary_code_run", f"code the service added and nothing calls was reported as "
                                                         f"run (lines {ran[:3]} of its copy): coverage was altered "
                                                         f"inside the test process", relative))
        cleaned[key] = entry
    return cleaned


def _relative_to(name: object, root: Path) -> str | None:
    if not isinstance(name, str):
        return None
    try:
        return Path(name).relative_to(root).as_posix()
    except ValueError:
        return None


def _covered_lines(data: dict, *, project_root: Path, sources: list[str]) -> dict[str, list[int]]:
    """Per source file (relative to the project root), the lines where a statement ran."""
    wanted = set(sources)
    covered: dict[str, list[int]] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict):
            continue
        relative = _relative_to(entry.get("path", key), project_root)
        statements, counts = entry.get("statementMap"), entry.get("s")
        if relative not in wanted or not isinstance(statements, dict) or not isinstance(counts, dict):
            continue
        lines = {((statements.get(name) or {}).get("start") or {}).get("line") for name, count in counts.items()
                 if isinstance(count, int) and count > 0}
        covered[relative] = sorted(line for line in lines if isinstance(line, int))
    return covered



def _sample_strength(request: NodeTestRequest, environment: Environment, outcome: Outcome, *, run, limits,
                     project_root: Path, out_dir: Path, suite_seconds: float) -> StrengthResult | None:
    """Each sampled change in a fresh sandboxed run of the tests that depend on the changed file."""
    if outcome.coverage is None or outcome.tests is None or outcome.tests.passed == 0 or not outcome.covered:
        return None
    started = time.monotonic()
    notes: list[str] = []
    try:
        made = mutants_for_files(request.root, outcome.covered, tools=environment.tools,
                                 node=str(environment.node))
    except MutantsError as error:
        return StrengthResult(results=(), seed=request.seed, tool=MUTATION_TOOL, seconds=time.monotonic() - started,
                              notes=(str(error),))
    # The runner cannot tell which test ran a line: every covered line counts as run by the tests of its file.
    covered = {name: {line: ("related tests",) for line in lines} for name, lines in outcome.covered.items()}
    sample = choose_sample(covered, size=request.mutants, seed=request.seed or "unseeded",
                           mutants_for=lambda name, lines: made.get(name, {}))
    failing = {(failure["classname"], failure["name"]) for failure in outcome.failures}
    seconds = min(limits.wall_seconds, max(MIN_MUTANT_SECONDS, MUTANT_TIME_FACTOR * suite_seconds))
    budget = max(MIN_MUTATION_BUDGET_SECONDS, MUTATION_BUDGET_FACTOR * suite_seconds)
    results = []
    for mutant in sample:
        if time.monotonic() - started > budget:
            results.append(MutantResult(mutant, "not_run", "the time for sampling ran out"))
            continue
        results.append(_run_mutant(request, mutant, run=run, limits=replace(limits, wall_seconds=seconds),
                                   project_root=project_root, out_dir=out_dir, failing=failing))
    if not sample:
        notes.append("no covered line had a change to try")
    if any(result.detail == "the time for sampling ran out" for result in results):
        notes.append(f"sampling stopped after {budget:.0f} s; the changes left were not run")
    # Named from the checkout, as the code view names files.
    prefix = request.root.resolve().relative_to(request.checkout.resolve())
    results = [MutantResult(replace(result.mutant, file=(prefix / result.mutant.file).as_posix()), result.verdict,
                            result.detail) for result in results]
    return StrengthResult(results=tuple(results), seed=request.seed, tool=MUTATION_TOOL,
                          seconds=time.monotonic() - started, notes=tuple(notes))


def _run_mutant(request: NodeTestRequest, mutant: Mutant, *, run, limits: SandboxLimits, project_root: Path,
                out_dir: Path, failing: set[tuple[str, str]]) -> MutantResult:
    target = project_root / mutant.file
    if target.is_symlink():
        return MutantResult(mutant, "not_run", "the file is a link")
    original = (request.root / mutant.file).read_bytes()
    runner = mutant_command(request.test.runner, root=project_root, out_dir=out_dir, paths=request.test.paths,
                            typescript=request.test.typescript, test_files=request.test_files, changed=mutant.file)
    target.write_bytes(mutant.source)
    try:
        result = run(runner.argv, limits)
    finally:
        target.write_bytes(original)
    if result.killed_by == "wall_time":
        return MutantResult(mutant, "timed_out", f"the tests ran longer than {limits.wall_seconds:.0f} s")
    checked = Outcome()
    status = channel_message(checked, result, reporter="supervisor")
    files = (status or {}).get("files") if isinstance((status or {}).get("files"), dict) else {}
    text = files.get(runner.report)
    if not isinstance(text, str) or not text:
        return MutantResult(mutant, "not_run", "the runner wrote no results")
    try:
        counts = parse_jest_json(text.encode(), root=project_root) if runner.report == "jest.json" else \
            parse_junit(text.encode())
    except ResultFileError:
        return MutantResult(mutant, "not_run", "the runner's results could not be read")
    # A test that already failed without the change says nothing about it.
    newly = [failure for failure in counts.failures if (failure.classname, failure.name) not in failing]
    if newly:
        return MutantResult(mutant, "noticed", f"{newly[0].name[:100]} failed")
    if len(counts.failures) < counts.failed + counts.errors:
        return MutantResult(mutant, "noticed", "more tests failed than without the change")
    if counts.passed:
        return MutantResult(mutant, "survived", "every test that depends on the file passed")
    return MutantResult(mutant, "not_run", "no test depends on the file")
