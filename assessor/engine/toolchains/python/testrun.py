"""Run a Python capstone's tests in the sandbox under the service's coverage, and keep only figures that hold up."""

import json
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from assessor.errors import MeasureError
from assessor.engine.measure.outcomes import (
    Flag, Outcome, TestCounts, TestRun, absent_server_verdict, channel_message, checked_coverage_data, finish_run,
    suspect_flags, unavailable_note,
)
from assessor.engine.measure.resultfiles import MAX_JUNIT_BYTES, ResultFileError, clear_out_dir, parse_junit
from assessor.engine.measure.strength import (
    MIN_MUTANT_SECONDS, MIN_MUTATION_BUDGET_SECONDS, MUTANT_TIME_FACTOR, MUTATION_BUDGET_FACTOR, Mutant,
    MutantResult, StrengthResult, choose_sample, verdict_of,
)
from assessor.engine.measure.workspace import copy_checkout, modified_sources
from assessor.engine.sandbox import SandboxLimits, SandboxResult, run_sandboxed, size_capped_dir
from assessor.engine.services import ServicePlan, blame_for
from assessor.engine.services.runtime import prepare_services, read_status
from assessor.engine.measure.planted import restore as restore_planted
from assessor.engine.toolchains.python import canaries
from assessor.engine.toolchains.python.coverage_data import (
    SAFE_PATH, CheckedCoverage, check_coverage_data, coverage_rcfile, coverage_report, exclusion_notes,
    measured_files,
)
from assessor.engine.toolchains.python.integrity import scan_evidence, scan_for_gaming
from assessor.engine.toolchains.python.mutants import TOOL as MUTATION_TOOL, mutants_for
from assessor.engine.toolchains.python.pytest_config import (
    PytestConfig, TestSelection, filter_addopts, learner_pytest_config, pytest_arguments, python_files_for,
    test_file_patterns,
)
from assessor.engine.toolchains.python.runner import CANARY_SOURCE, RUNNER_SOURCE
from assessor.engine.toolchains.python.sources import test_files

MAX_COVERAGE_JSON_BYTES = 64 * 1024 * 1024
OUT_DIR_NAME = ".assessor-out"
RESULTS_AREA_MB = 128
NO_TESTS_EXIT = 5  # pytest's "no tests collected"


@dataclass(frozen=True)
class TestRunRequest:
    """Everything one sandboxed test run of a Python project needs, besides its environment."""

    __test__ = False
    checkout: Path
    root: Path                                   # the project folder: the checkout or one folder in it
    pytest_config: PytestConfig = field(default_factory=PytestConfig)
    selection: TestSelection = field(default_factory=TestSelection)
    services: ServicePlan = field(default_factory=ServicePlan)
    cache_dir: Path | None = None                # for the services' prepared data folders
    shared_dir: Path | None = None
    mutants: int = 0                             # how many sampled changes to test for strength (0: none)
    seed: str = ""                               # what picks the sample (the commit): the same commit, the same sample


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


@dataclass
class _Sandbox:
    """One project copy with its servers: runs the service's runner in a fresh sandboxed process each time."""

    python: str
    control: Path
    area: Path
    project: Path                                # the copy of the checkout
    out_dir: Path
    project_root: Path
    environment: object
    env: dict
    limits: SandboxLimits
    services: object
    unsafe_no_sandbox: bool
    kept: list[str]
    python_files: tuple[str, ...] | None
    paths: tuple[str, ...]

    def run(self, mode: str, *, tests: tuple[str, ...] = (), limits: SandboxLimits | None = None) -> SandboxResult:
        clear_out_dir(self.out_dir)
        arguments = pytest_arguments(root=self.project_root, out_dir=self.out_dir, kept_addopts=self.kept,
                                     collect=mode != "test", python_files=self.python_files,
                                     paths=() if mode in ("mutant", "mutants") else self.paths)
        if mode == "mutant":  # only the tests that ran the changed line; the first failure is enough
            arguments += ["--maxfail=1", *tests]
        argv = [self.python, "-I", str(self.control / "runner.py"), mode, str(self.control), str(self.out_dir),
                str(self.project_root), "--", *arguments]
        hosts, tmpfs_dirs, tools, run_limits = (), (), (), limits or self.limits
        if self.services is not None:  # its launcher and spec are in `control`, bound read-only
            self.services.reset()
            argv = self.services.command(argv, self.out_dir)
            hosts, tmpfs_dirs, tools = self.services.hosts, self.services.tmpfs_dirs, self.services.readonly
            run_limits = self.services.limits(run_limits)
        home = self.environment.interpreter_home
        return run_sandboxed(argv, workdir=self.area, venv=Path(self.environment.venv), limits=run_limits,
                             unsafe_no_sandbox=self.unsafe_no_sandbox, env=self.env, cwd=self.project_root,
                             readonly_binds=(self.control, *tools, *([home] if home else [])),
                             hosts=hosts, tmpfs_dirs=tmpfs_dirs, results_channel=True)


def run_tests(checkout: Path, *, environment, work_dir: Path, limits: SandboxLimits,
              unsafe_no_sandbox: bool = False, request: TestRunRequest | None = None) -> TestRun:
    """Run the learner's tests in the sandbox and return checked counts, coverage and integrity flags.

    `environment` is the toolchain's built Environment (its venv is bound read-only). `work_dir` must be a fresh
    directory for this run only; everything the learner's code wrote there is discarded afterwards.
    """
    checkout = checkout.resolve()
    request = request or TestRunRequest(checkout=checkout, root=checkout,
                                        pytest_config=learner_pytest_config(checkout))
    root = request.root.resolve()
    relative_root = root.relative_to(checkout)
    work_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(work_dir, 0o711)
    work_dir = work_dir.resolve()
    if not SAFE_PATH.match(str(work_dir)):
        raise MeasureError(f"work directory {work_dir} has characters the coverage config cannot hold")
    patterns = test_file_patterns(request.pytest_config, request.selection)
    files = measured_files(checkout, root, test_patterns=patterns)
    control, area = work_dir / "control", work_dir / "area"
    notes = [f"{name}: its file name cannot be measured safely" for name in files if not SAFE_PATH.match(name)][:20]
    notes += list(request.selection.notes)
    project, out_dir = area / "project", area / OUT_DIR_NAME
    project_root = project / relative_root
    canary = _write_control(control, project=project, files=files)
    kept, dropped = filter_addopts([*request.pytest_config.addopts, *request.selection.options])
    if dropped:
        notes.append(f"ignored from your pytest addopts: {' '.join(dropped)} (they would select, stop or redirect "
                     f"tests)"[:500])
    notes += exclusion_notes(root, checkout, files)
    flags = scan_for_gaming(checkout, project_root=root)
    evidence = scan_evidence(checkout)
    env = {**request.services.env, "PYTHONPATH": f"{project_root}:{project_root / 'src'}",
           **environment.sandbox_env()}

    # Results get their own small filesystem, so tests that fill the work area cannot crowd them out.
    with size_capped_dir(area, limits.workdir_mb), size_capped_dir(out_dir, RESULTS_AREA_MB):
        copy_checkout(checkout, project)
        services, problems = prepare_services(request.services, control=control / "services", area=area,
                                              cache_dir=request.cache_dir or work_dir / "cache",
                                              shared_dir=request.shared_dir or work_dir / "shared",
                                              unsafe_no_sandbox=unsafe_no_sandbox)
        notes += problems
        box = _Sandbox(python=str(environment.python), control=control, area=area, project=project, out_dir=out_dir,
                       project_root=project_root, environment=environment, env=env, limits=limits,
                       services=services, unsafe_no_sandbox=unsafe_no_sandbox, kept=kept,
                       python_files=python_files_for(request.pytest_config, request.selection),
                       paths=request.selection.paths)

        collect_result = box.run("collect")
        collection = _collection(collect_result)
        collected = collection.get("collected")
        if collect_result.killed_by:
            notes.append(f"collecting the tests was stopped by the {collect_result.killed_by.replace('_', ' ')} "
                         f"limit")
            absent = request.services.absent(read_status(out_dir) if services is not None else [])
            return finish_run(TestRun(tests=None, coverage=None, sandbox=collect_result, flags=flags, notes=notes,
                                      evidence=evidence,
                                      unmeasurable=absent_server_verdict(None, absent, collect_result.output,
                                                                         blame_for(absent),
                                                                         collect_result.killed_by)))
        # What the collect run reports is the learner process's word: when it names no file, the host's own
        # discovery places the canary, so a forged collection cannot keep it out. None collected, none planted:
        # results from a run that then claims tests are refused as more than were collected.
        candidates = collection.get("files") or (test_files(root, patterns=patterns) if collected != 0 else [])
        test_canary = canaries.plant_test(project_root, collected_files=candidates, ini=collection.get("ini") or {})
        code_canaries = canaries.plant_code(project, checkout, files)
        result = box.run("test")
        restore_planted(project, code_canaries)
        restore_planted(project_root, [test_canary] if test_canary else [])
        statuses = read_status(out_dir) if services is not None else []
        absent = request.services.absent(statuses)
        blame = blame_for(absent)
        reading = _Reading(checkout=checkout, project=project, files=files, canary=canary, collected=collected,
                           root=relative_root.as_posix(), blame=blame, test_canary=test_canary,
                           code_canaries=code_canaries)
        outcome, checked, message = _read_outcome(result, reading)
        evidence += _hook_evidence(message, project=project, checkout=checkout)
        outcome.flags += modified_sources(checkout, project, files)
        strength = None
        if request.mutants > 0:
            strength = _sample_strength(box, request, checked, outcome, suite_seconds=result.wall_seconds)
            outcome.flags += suspect_flags(strength, outcome.tests)
    notes += request.services.absence_notes(statuses)
    notes += [note for note in [unavailable_note(outcome.tests)] if note]
    # The planted test fails on purpose, so pytest's exit code is 1 for a suite that otherwise passed.
    return finish_run(TestRun(tests=outcome.tests, coverage=outcome.coverage, sandbox=result,
                              flags=flags + outcome.flags, collected=collected, notes=notes + outcome.notes,
                              services=statuses, failures=outcome.failures, evidence=evidence, strength=strength,
                              unmeasurable=absent_server_verdict(outcome.tests, absent, result.output, blame,
                                                                 result.killed_by)),
                      clean_exit_codes=frozenset({0, 1}) if test_canary else frozenset({0}),
                      scrub=lambda output: canaries.scrub_output(output, test_canary))



def _collection(result: SandboxResult) -> dict:
    """What the collect-only run found: the count, the test files, pytest's naming settings."""
    try:
        message = channel_message(Outcome(), result, reporter="runner")
    except ResultFileError:
        return {}
    if not message or message.get("finished") is not True:
        return {}
    value = message.get("collected")
    files = message.get("files") if isinstance(message.get("files"), list) else []
    ini = message.get("ini") if isinstance(message.get("ini"), dict) else {}
    return {"collected": value if type(value) is int and value >= 0 else None,
            "files": [name for name in files if isinstance(name, str)][:5000],
            "ini": {key: [item for item in value if isinstance(item, str)] for key, value in ini.items()
                    if isinstance(value, list)}}


@dataclass(frozen=True)
class _Reading:
    """What the host knows, and learner code does not, for reading one run's message."""

    checkout: Path
    project: Path
    files: list[str]
    canary: Path
    collected: int | None
    root: str = "."
    blame: object = None
    test_canary: canaries.TestCanary | None = None
    code_canaries: tuple | list = ()


def _read_outcome(result: SandboxResult, reading: _Reading) -> tuple[Outcome, CheckedCoverage | None, dict]:
    outcome = Outcome()
    message = channel_message(outcome, result, reporter="runner")
    if message is None:
        return outcome, None, {}
    if message.get("finished") is not True or message.get("mode") != "test":
        outcome.flags.append(Flag("early_exit", f"the test session was cut short ({message.get('error', 'unknown')}); "
                                                f"nothing it reported is trusted"))
        return outcome, None, message
    if message.get("exit_code") != result.exit_code:
        outcome.flags.append(Flag("exit_code_mismatch", f"pytest returned {message.get('exit_code')} but the process "
                                                        f"exited with {result.exit_code}"))
    _check_test_canary(outcome, message, reading.test_canary)
    _read_tests(outcome, message, collected=reading.collected, output=result.output, root=reading.root,
                blame=reading.blame, test_canary=reading.test_canary)
    checked = _read_coverage(outcome, message, reading)
    return outcome, checked, message


def _check_test_canary(outcome: Outcome, message: dict, test_canary: canaries.TestCanary | None) -> None:
    """The planted test must be collected and must fail; anything else means the results were rewritten."""
    if test_canary is None or message.get("exit_code") not in (0, 1):
        return  # pytest did not get to run tests (a usage or internal error): nothing is counted anyway
    outcomes = message.get("outcomes") if isinstance(message.get("outcomes"), dict) else {}
    seen = outcomes.get(test_canary.nodeid)
    if seen in ("failed", "error", "skipped"):  # your fixtures may error or skip it honestly; never pass it
        return
    if seen == "passed":
        outcome.flags.append(Flag("canary_passed", "a test the service added, which must fail, was reported as "
                                                   "passed: test results were altered inside the test process"))
    else:
        outcome.flags.append(Flag("canary_missing", "a test the service added next to your tests has no result: "
                                                    "test results were filtered inside the test process"))


def _read_tests(outcome: Outcome, message: dict, *, collected: int | None, output: str, root: str = ".",
                blame=None, test_canary: canaries.TestCanary | None = None) -> None:
    if message.get("exit_code") in (3, 4):
        outcome.notes.append(f"pytest could not run the tests: {_last_error(output)}")
        return
    junit_text = message.get("junit")
    if not isinstance(junit_text, str):
        outcome.flags.append(Flag("junit_missing", "test results unusable: junit.xml was not written"))
        return
    try:
        junit = parse_junit(junit_text.encode()[:MAX_JUNIT_BYTES + 1], first_line=0, blame=blame,
                            leave_out=_junit_key(test_canary))
    except ResultFileError as error:
        outcome.flags.append(Flag("junit_invalid", f"test results unusable: {error}"))
        return
    observed = _observed_counts(message, test_canary)
    if observed != (junit.passed, junit.failed, junit.errors, junit.skipped):
        outcome.flags.append(Flag("junit_inconsistent", "the JUnit report disagrees with what the service's runner "
                                                        "saw during the run"))
        return
    errors = junit.errors
    expected = collected if collected is not None else message.get("collected")
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
    if message.get("exit_code") == NO_TESTS_EXIT or junit.total == 0:
        outcome.notes.append(f"pytest collected no tests ({_last_line(output)}): name test files test_*.py, "
                             f"*_test.py or tests.py, or give the test command in capstone.toml")
    outcome.tests = TestCounts.of(passed=junit.passed, failed=junit.failed, errors=errors, skipped=junit.skipped,
                                  unavailable=junit.unavailable)
    # pytest names files from its rootdir, the project; the code view names them from the checkout.
    outcome.failures = [{**failure.to_dict(), "file": f"{root}/{failure.file}" if failure.file and root != "." else
                         failure.file} for failure in junit.failures]


def _junit_key(test_canary: canaries.TestCanary | None) -> tuple[str, str] | None:
    """The canary's (classname, name) as pytest's xunit1 report writes them."""
    if test_canary is None:
        return None
    return test_canary.file.removesuffix(".py").replace("/", "."), test_canary.function


def _observed_counts(message: dict, test_canary: canaries.TestCanary | None) -> tuple:
    outcomes = message.get("outcomes") if isinstance(message.get("outcomes"), dict) else {}
    totals = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for nodeid, outcome in outcomes.items():
        if outcome in totals and not (test_canary and nodeid == test_canary.nodeid):
            totals[outcome] += 1
    return totals["passed"], totals["failed"], totals["error"], totals["skipped"]


def _last_line(output: str) -> str:
    lines = [line.strip(" =") for line in output.strip().splitlines() if line.strip(" =")]
    return lines[-1][:200] if lines else "no output"


# A line naming the exception that stopped pytest ("E   ModuleNotFoundError: ..."), and lines that only add a
# hint or a link after it.
_EXCEPTION_LINE = re.compile(r"^(?:E\s+)?(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b|ERROR:|[\w.-]+: error:)")
_HINT_LINE = re.compile(r"^E\s+(?:Hint:|For further information|See |Did you mean|https?://)|^E$")


def _last_error(output: str) -> str:
    """What stopped pytest, in its own words: the last exception line, never a hint or a link after it."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    exceptions = [line for line in lines if _EXCEPTION_LINE.match(line)]
    errors = [line for line in lines if line.startswith(("ERROR", "error", "E ")) and not _HINT_LINE.match(line)]
    chosen = exceptions[-1] if exceptions else errors[-1] if errors else lines[-1] if lines else "no output"
    return re.sub(r"^E\s+", "", chosen)[:300]


def _read_coverage(outcome: Outcome, message: dict, reading: _Reading) -> CheckedCoverage | None:
    exported = checked_coverage_data(outcome, message.get("coverage"), max_bytes=MAX_COVERAGE_JSON_BYTES)
    if exported is None:
        return None
    checked = check_coverage_data(exported, project=reading.project, checkout=reading.checkout, files=reading.files,
                                  canary=reading.canary, code_canaries=reading.code_canaries)
    outcome.flags += checked.flags
    outcome.coverage, notes = coverage_report(reading.checkout, reading.files, checked.arcs_by_file)
    outcome.notes += notes
    return checked


def _hook_evidence(message: dict, *, project: Path, checkout: Path) -> list[dict]:
    """The report hooks pytest's plugin manager held from outside the installed tools, named from the checkout."""
    hooks = message.get("hooks") if isinstance(message.get("hooks"), list) else []
    found = []
    for hook in hooks[:50]:
        if not isinstance(hook, dict) or not isinstance(hook.get("file"), str):
            continue
        path = hook["file"]
        relative = path[len(str(project)) + 1:] if path.startswith(str(project) + "/") else None
        where = relative if relative and (checkout / relative).is_file() else "code built at run time"
        line = hook.get("line") if type(hook.get("line")) is int else None
        found.append({"kind": "report_hook", "file": where if relative else None,
                      "line": line if relative else None,
                      "detail": f"{hook.get('hook', '?')} implemented by {str(hook.get('function', '?'))[:80]}"
                                f"{' (a wrapper)' if hook.get('wrapper') else ''}"
                                f"{'' if relative else f' in {where} ({path[:80]})'}"})
    return found


def _sample_strength(box: _Sandbox, request: TestRunRequest, checked: CheckedCoverage | None, outcome: Outcome, *,
                     suite_seconds: float) -> StrengthResult | None:
    """Run the sampled mutants one by one, each in a fresh sandboxed process with only the tests that ran its line."""
    if checked is None or outcome.coverage is None or outcome.tests is None or outcome.tests.passed == 0:
        return None
    started = time.monotonic()
    sample = choose_sample(checked.tests_by_line, size=request.mutants, seed=request.seed or "unseeded",
                           mutants_for=lambda name, lines: mutants_for(request.checkout, name, lines))
    mutant_limits = replace(box.limits, wall_seconds=min(box.limits.wall_seconds,
                                                         max(MIN_MUTANT_SECONDS, MUTANT_TIME_FACTOR * suite_seconds)))
    budget = max(MIN_MUTATION_BUDGET_SECONDS, MUTATION_BUDGET_FACTOR * suite_seconds)
    results: list[MutantResult] = []
    notes: list[str] = []
    if box.services is None and sample:
        results = _run_mutants_forked(box, sample, seconds=mutant_limits.wall_seconds, budget=budget)
    for mutant in sample if box.services is not None else ():
        # Servers keep state between tests: each change gets a fresh sandbox with freshly started servers.
        if time.monotonic() - started > budget:
            results.append(MutantResult(mutant, "not_run", "the time for sampling ran out"))
            continue
        results.append(_run_mutant(box, request.checkout, mutant, mutant_limits))
    if not sample:
        notes.append("no covered line had a change to try")
    if any(result.detail == "the time for sampling ran out" for result in results):
        notes.append(f"sampling stopped after {budget:.0f} s; the changes left were not run")
    return StrengthResult(results=tuple(results), seed=request.seed, tool=MUTATION_TOOL,
                          seconds=time.monotonic() - started, notes=tuple(notes))


def _run_mutants_forked(box: _Sandbox, sample: list[Mutant], *, seconds: float, budget: float) -> list[MutantResult]:
    """All the changes in one sandbox: the runner forks a fresh process per change from one that has loaded only
    the tools, so each costs the learner's imports and tests, not a sandbox and an interpreter."""
    plan = {"budget_seconds": budget, "mutants": [
        {"path": str(box.project / mutant.file), "source": mutant.source.decode("utf-8", "surrogateescape"),
         "tests": list(mutant.tests), "seconds": seconds} for mutant in sample]}
    path = box.control / "mutants.json"
    path.write_text(json.dumps(plan))
    os.chmod(path, 0o644)
    limits = replace(box.limits, wall_seconds=min(box.limits.wall_seconds, budget + seconds + 30))
    try:
        result = box.run("mutants", limits=limits)
    finally:
        path.unlink(missing_ok=True)
    message = channel_message(Outcome(), result, reporter="runner")
    reported = (message or {}).get("results") if isinstance((message or {}).get("results"), list) else []
    results = []
    for index, mutant in enumerate(sample):
        item = reported[index] if index < len(reported) and isinstance(reported[index], dict) else {}
        verdict = item.get("verdict")
        if verdict == "timed_out":
            results.append(MutantResult(mutant, "timed_out", f"the tests ran longer than {seconds:.0f} s"))
        elif verdict == "ran" and isinstance(item.get("outcomes"), dict):
            results.append(MutantResult(mutant, *verdict_of(item["outcomes"], mutant.tests)))
        else:
            detail = item.get("detail") if isinstance(item.get("detail"), str) else "the run did not report"
            results.append(MutantResult(mutant, "not_run", detail[:200]))
    return results


def _run_mutant(box: _Sandbox, checkout: Path, mutant: Mutant, limits: SandboxLimits) -> MutantResult:
    target = box.project / mutant.file
    original = (checkout / mutant.file).read_bytes()
    if target.is_symlink():
        return MutantResult(mutant, "not_run", "the file is a link")
    target.write_bytes(mutant.source)
    try:
        result = box.run("mutant", tests=mutant.tests, limits=limits)
    finally:
        target.write_bytes(original)
    if result.killed_by == "wall_time":
        return MutantResult(mutant, "timed_out", f"the tests ran longer than {limits.wall_seconds:.0f} s")
    outcome = Outcome()
    message = channel_message(outcome, result, reporter="runner")
    if not message or message.get("finished") is not True or not isinstance(message.get("outcomes"), dict):
        return MutantResult(mutant, "not_run", "the run did not report")
    verdict, detail = verdict_of(message["outcomes"], mutant.tests)
    return MutantResult(mutant, verdict, detail)
