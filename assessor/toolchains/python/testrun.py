"""Run a Python capstone's tests in the sandbox under the service's coverage, and keep only figures that hold up."""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from assessor.errors import MeasureError
from assessor.measure.outcomes import (
    Flag, Outcome, TestCounts, TestRun, absent_server_verdict, checked_coverage_data, checked_status, finish_run,
    unavailable_note,
)
from assessor.measure.resultfiles import (
    MAX_JUNIT_BYTES, ResultChangedError, ResultFileError, fresh_out_dir, parse_junit, read_checked_result,
    read_signed_status,
)
from assessor.measure.workspace import copy_checkout, modified_sources
from assessor.sandbox import SandboxLimits, SandboxResult, run_sandboxed, size_capped_dir
from assessor.services import ServicePlan, blame_for
from assessor.services.runtime import prepare_services, read_status
from assessor.toolchains.python.coverage_data import (
    SAFE_PATH, check_coverage_data, coverage_rcfile, coverage_report, exclusion_notes, measured_files,
)
from assessor.toolchains.python.integrity import scan_for_gaming
from assessor.toolchains.python.pytest_config import (
    PytestConfig, TestSelection, filter_addopts, learner_pytest_config, pytest_arguments, python_files_for,
    test_file_patterns,
)
from assessor.toolchains.python.runner import CANARY_SOURCE, RUNNER_SOURCE

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
    python = str(environment.python)
    env = {**request.services.env, "PYTHONPATH": f"{project_root}:{project_root / 'src'}",
           **environment.sandbox_env()}
    python_files = python_files_for(request.pytest_config, request.selection)

    # Results get their own small filesystem, so tests that fill the work area cannot crowd them out.
    with size_capped_dir(area, limits.workdir_mb), size_capped_dir(out_dir, RESULTS_AREA_MB):
        copy_checkout(checkout, project)
        services, problems = prepare_services(request.services, control=control / "services", area=area,
                                              cache_dir=request.cache_dir or work_dir / "cache",
                                              shared_dir=request.shared_dir or work_dir / "shared",
                                              unsafe_no_sandbox=unsafe_no_sandbox)
        notes += problems

        def run(mode: str) -> tuple[SandboxResult, bytes]:
            token = fresh_out_dir(out_dir)
            arguments = pytest_arguments(root=project_root, out_dir=out_dir, kept_addopts=kept,
                                         collect=mode == "collect", python_files=python_files,
                                         paths=request.selection.paths)
            argv = [python, "-I", str(control / "runner.py"), mode, str(control), str(out_dir), str(project_root),
                    "--", *arguments]
            hosts, tmpfs_dirs, tools, run_limits = (), (), (), limits
            if services is not None:  # its launcher and spec are in `control`, bound read-only
                services.reset()
                argv = services.command(argv, out_dir)
                hosts, tmpfs_dirs, tools = services.hosts, services.tmpfs_dirs, services.readonly
                run_limits = services.limits(limits)
            home = environment.interpreter_home
            result = run_sandboxed(argv, workdir=area, venv=Path(environment.venv), limits=run_limits,
                                   unsafe_no_sandbox=unsafe_no_sandbox, env=env, cwd=project_root,
                                   readonly_binds=(control, *tools, *([home] if home else [])),
                                   hosts=hosts, tmpfs_dirs=tmpfs_dirs)
            return result, token

        collect_result, token = run("collect")
        collected = _collected(out_dir, token)
        if collect_result.killed_by:
            notes.append(f"collecting the tests was stopped by the {collect_result.killed_by.replace('_', ' ')} "
                         f"limit")
            absent = request.services.absent(read_status(out_dir) if services is not None else [])
            return finish_run(TestRun(tests=None, coverage=None, sandbox=collect_result, flags=flags, notes=notes,
                                      unmeasurable=absent_server_verdict(None, absent, collect_result.output,
                                                                         blame_for(absent),
                                                                         collect_result.killed_by)))
        result, token = run("test")
        statuses = read_status(out_dir) if services is not None else []
        absent = request.services.absent(statuses)
        blame = blame_for(absent)
        outcome = _read_outcome(out_dir, token=token, result=result, checkout=checkout, project=project,
                                files=files, canary=canary, collected=collected, root=relative_root.as_posix(),
                                blame=blame)
        outcome.flags += modified_sources(checkout, project, files)
    notes += request.services.absence_notes(statuses)
    notes += [note for note in [unavailable_note(outcome.tests)] if note]
    return finish_run(TestRun(tests=outcome.tests, coverage=outcome.coverage, sandbox=result,
                              flags=flags + outcome.flags, collected=collected, notes=notes + outcome.notes,
                              services=statuses, failures=outcome.failures,
                              unmeasurable=absent_server_verdict(outcome.tests, absent, result.output, blame,
                                                                 result.killed_by)))


def _collected(out_dir: Path, token: bytes) -> int | None:
    try:
        status = read_signed_status(out_dir, "collect-status.json", token)
    except ResultFileError:
        return None
    value = status.get("collected")
    return value if status.get("finished") is True and type(value) is int and value >= 0 else None


def _read_outcome(out_dir: Path, *, token: bytes, result: SandboxResult, checkout: Path, project: Path,
                  files: list[str], canary: Path, collected: int | None, root: str = ".", blame=None) -> Outcome:
    outcome = Outcome()
    status = checked_status(outcome, out_dir, token=token, result=result, reporter="runner")
    if status is None:
        return outcome
    if status.get("finished") is not True:
        outcome.flags.append(Flag("early_exit", f"the test session was cut short ({status.get('error', 'unknown')}); "
                                                f"nothing it reported is trusted"))
        return outcome
    if status.get("exit_code") != result.exit_code:
        outcome.flags.append(Flag("exit_code_mismatch", f"pytest returned {status.get('exit_code')} but the process "
                                                        f"exited with {result.exit_code}"))
    _read_tests(outcome, out_dir, status=status, collected=collected, output=result.output,
                root=root, blame=blame)
    _read_coverage(outcome, out_dir, status=status, checkout=checkout, project=project, files=files, canary=canary)
    return outcome


def _read_tests(outcome: Outcome, out_dir: Path, *, status: dict, collected: int | None, output: str,
                root: str = ".", blame=None) -> None:
    if status.get("exit_code") in (3, 4):
        outcome.notes.append(f"pytest could not run the tests: {_last_error(output)}")
        return
    try:
        junit = parse_junit(read_checked_result(out_dir, "junit.xml", MAX_JUNIT_BYTES, status), first_line=0,
                            blame=blame)
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
    if status.get("exit_code") == NO_TESTS_EXIT or junit.total == 0:
        outcome.notes.append(f"pytest collected no tests ({_last_line(output)}): name test files test_*.py, "
                             f"*_test.py or tests.py, or give the test command in capstone.toml")
    outcome.tests = TestCounts.of(passed=junit.passed, failed=junit.failed, errors=errors, skipped=junit.skipped,
                                  unavailable=junit.unavailable)
    # pytest names files from its rootdir, the project; the code view names them from the checkout.
    outcome.failures = [{**failure.to_dict(), "file": f"{root}/{failure.file}" if failure.file and root != "." else
                         failure.file} for failure in junit.failures]


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


def _read_coverage(outcome: Outcome, out_dir: Path, *, status: dict, checkout: Path, project: Path,
                   files: list[str], canary: Path) -> None:
    exported = checked_coverage_data(outcome, out_dir, "coverage.json", max_bytes=MAX_COVERAGE_JSON_BYTES,
                                     status=status)
    if exported is None:
        return
    arcs_by_file, flags = check_coverage_data(exported, project=project, checkout=checkout, files=files,
                                              canary=canary)
    outcome.flags += flags
    outcome.coverage, notes = coverage_report(checkout, files, arcs_by_file)
    outcome.notes += notes
