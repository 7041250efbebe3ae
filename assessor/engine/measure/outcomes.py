"""What a sandboxed test run produced, in the same shape for every toolchain, with untrustworthy figures voided."""

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from assessor.engine.measure.resultfiles import ResultChangedError, ResultFileError, read_channel_message
from assessor.engine.measure.strength import StrengthResult, suspect
from assessor.engine.sandbox import SandboxResult

OUTPUT_TAIL_CHARS = 8000

# What each integrity finding makes untrustworthy. A voided figure is reported as null, never as a score.
FLAG_VOIDS: dict[str, frozenset[str]] = {
    "coverage_api": frozenset({"coverage"}),
    "tracing_api": frozenset({"coverage"}),
    "coverage_file_access": frozenset({"coverage"}),
    "coverage_stopped": frozenset({"coverage"}),
    "coverage_data_forged": frozenset({"coverage"}),
    "coverage_data_missing": frozenset({"coverage"}),
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
    "canary_passed": frozenset({"tests", "coverage"}),
    "canary_code_run": frozenset({"tests", "coverage"}),
    "canary_missing": frozenset({"tests"}),
    "results_missing": frozenset(),        # the missing results are counted as errors instead
    "early_exit_call": frozenset(),        # os._exit in the code; harmful only if the run ended early
    "shadowing_module": frozenset(),       # the runner imports its tools before the learner's paths
    "exit_code_mismatch": frozenset(),
    "figures_suspect": frozenset(),        # mutation sampling: evidence for the mentor, the figures stand
}


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
    """Outcomes from the JUnit report, one per test. `total` counts the tests that could run; the ones that failed
    only because a declared server was absent are `unavailable`, by server, and in no other count."""

    __test__ = False
    passed: int
    failed: int
    errors: int
    skipped: int
    total: int
    unavailable: int = 0
    needs: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, *, passed: int, failed: int, errors: int, skipped: int,
           unavailable: Sequence[tuple[str, str]] = ()) -> "TestCounts":
        """Counts from a runner's raw ones, with the tests an absent server explains taken out of the failures."""
        failed -= sum(1 for outcome, _ in unavailable if outcome == "failed")
        errors -= sum(1 for outcome, _ in unavailable if outcome == "error")
        needs: dict[str, int] = {}
        for _, server in unavailable:
            needs[server] = needs.get(server, 0) + 1
        return cls(passed=passed, failed=failed, errors=errors, skipped=skipped,
                   total=passed + failed + errors + skipped, unavailable=len(unavailable), needs=needs)

    def to_dict(self) -> dict:
        """The counts; the tests an absent server explains only when there are some."""
        counts = asdict(self)
        if not self.unavailable:
            del counts["unavailable"], counts["needs"]
        return counts

    @property
    def ran(self) -> int:
        """Tests that ran to a verdict of their own (skipped ones did not)."""
        return self.passed + self.failed + self.errors


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
    partial_lines: list[int] = field(default_factory=list)  # lines where a branch was never taken


@dataclass(frozen=True)
class CoverageResult:
    """Line and branch coverage of the learner's source files, computed on the host from the original sources."""

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
    services: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)   # failing and erroring tests, from the JUnit report
    # Why the figures cannot be scored even though the run happened (a service the tests need was missing).
    unmeasurable: str | None = None
    # For the mentor, not a verdict: report hooks the learner's code registered, reaches into frames, gc, ctypes.
    evidence: list[dict] = field(default_factory=list)
    strength: StrengthResult | None = None      # mutation sampling, when the rubric asks for it

    def to_dict(self) -> dict:
        return {
            "tests": self.tests.to_dict() if self.tests else None,
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
            "services": list(self.services),
            "failures": list(self.failures),
            "output_tail": self.output_tail,
            "evidence": list(self.evidence),
            "strength": self.strength.to_dict() if self.strength else None,
        }


def absent_server_verdict(tests: TestCounts | None, absent: Sequence, output: str, blame,
                          killed_by: str | None = None) -> str | None:
    """Why a run's figures cannot be scored because of servers it did not have: no test could run without them,
    or the run was stopped by a limit while its tests may have been waiting for them. A run with some tests that
    could run is scored on those, and says which could not."""
    if not absent:
        return None
    labels = ", ".join(dict.fromkeys(service.label for service in absent))
    if tests is None and killed_by:
        return (f"the test run was stopped by the {killed_by.replace('_', ' ')} limit while {labels}, which the "
                f"tests declare, was not available here: tests waiting for it may have used the time, so the "
                f"results cannot be scored")
    if tests is not None and tests.unavailable and tests.ran == 0:
        return (f"none of the tests could run without {labels}, which this run did not have ({tests.unavailable} "
                f"needed it), so their results cannot be scored")
    if tests is None and blame is not None and blame(output[-OUTPUT_TAIL_CHARS:]):
        return f"the tests could not start without {labels}, which this run did not have, so they cannot be scored"
    return None


def unavailable_note(tests: TestCounts | None) -> str | None:
    """The line a reader sees about the tests that could not run: how many, and which server each needed."""
    if tests is None or not tests.unavailable:
        return None
    needs = "; ".join(f"{count} need{'s' if count == 1 else ''} {server} (not available here)"
                      for server, count in tests.needs.items())
    return (f"{needs}: counted apart, not as failures; tests and coverage are scored on the {tests.total} test"
            f"{'' if tests.total == 1 else 's'} that could run")


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 100.0


def coverage_totals(files: list[FileCoverage]) -> CoverageResult:
    statements = sum(f.statements for f in files)
    covered = sum(f.covered_lines for f in files)
    branches = sum(f.branches for f in files)
    covered_branches = sum(f.covered_branches for f in files)
    return CoverageResult(
        line_percent=percent(covered, statements), branch_percent=percent(covered_branches, branches),
        excluded_lines=sum(f.excluded_lines for f in files), statements=statements, covered_lines=covered,
        branches=branches, covered_branches=covered_branches, files=files,
    )


def suspect_flags(strength: StrengthResult | None, tests: TestCounts | None) -> list[Flag]:
    """Covered lines whose changes no test noticed, with a suite that passed everything: the figures are suspect
    (evidence for the mentor; every toolchain's sampling ends here)."""
    all_passed = tests is not None and tests.total > 0 and tests.failed == 0 and tests.errors == 0
    if strength is None or not suspect(strength, all_passed=all_passed):
        return []
    return [Flag("figures_suspect", f"{strength.summary()} although every test passed: the covered lines' figures "
                                    f"are suspect")]


def finish_run(run: TestRun, *, clean_exit_codes: frozenset[int] = frozenset({0}),
               scrub: Callable[[str], str] | None = None) -> TestRun:
    """Apply the flags: a figure any finding makes untrustworthy is dropped, never kept as a score.

    The output's tail is kept whenever the run was not clean, so the learner can see what went wrong.
    """
    voided = set().union(*(FLAG_VOIDS.get(flag.code, frozenset()) for flag in run.flags))
    if "tests" in voided:
        run.tests = None
        run.failures = []
    if "coverage" in voided:
        run.coverage = None
    clean = run.sandbox.exit_code in clean_exit_codes and run.sandbox.killed_by is None and run.tests is not None \
        and run.tests.failed == 0 and run.tests.errors == 0 and run.tests.total > 0
    output = scrub(run.sandbox.output) if scrub else run.sandbox.output  # what the service added, taken out
    run.output_tail = "" if clean else output[-OUTPUT_TAIL_CHARS:]
    return run


@dataclass
class Outcome:
    """What the host made of one run's result files, before the flags are applied."""

    tests: TestCounts | None = None
    coverage: CoverageResult | None = None
    flags: list[Flag] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    covered: dict[str, list[int]] = field(default_factory=dict)   # per file, the lines that ran (Node sampling)


def channel_message(outcome: Outcome, result: SandboxResult, *, reporter: str) -> dict | None:
    """What the service's `reporter` (runner or supervisor) sent down the results channel, or None with the reason
    recorded: the run was stopped by a limit, or what came cannot be trusted."""
    if result.killed_by:
        outcome.notes.append(f"the test run was stopped by the {result.killed_by.replace('_', ' ')} limit")
        return None
    try:
        return read_channel_message(result.results, overflow=result.results_overflow)
    except ResultFileError as error:
        code = "results_forged" if isinstance(error, ResultChangedError) else "early_exit"
        outcome.flags.append(Flag(code, f"the service's {reporter} did not report (exit code {result.exit_code}): "
                                        f"{error}; nothing the run produced is trusted"))
        return None


def checked_coverage_data(outcome: Outcome, data: object, *, max_bytes: int) -> dict | None:
    """Coverage data as the channel carried it (an object, or a file's text), or None with the flag saying why."""
    if data is None:
        outcome.flags.append(Flag("coverage_data_missing", "coverage data unusable: it was not written"))
        return None
    if isinstance(data, str):
        if len(data) > max_bytes:
            outcome.flags.append(Flag("coverage_data_missing", f"coverage data is larger than {max_bytes} bytes"))
            return None
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            outcome.flags.append(Flag("coverage_data_missing", "coverage data is not valid JSON"))
            return None
    if not isinstance(data, dict):
        outcome.flags.append(Flag("coverage_data_missing", "coverage data is not an object"))
        return None
    return data
