"""The one orchestrator: source → clone → measure → install → test in the sandbox → score → report."""

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from assessor import facts
from assessor.environment import build_environment
from assessor.errors import EnvironmentBuildError, SandboxError
from assessor.intake import CloneLimits, SourcePolicy, check_source, clone
from assessor.measure.artifacts import check_artifacts
from assessor.measure.complexity import measure_complexity
from assessor.measure.testrun import run_tests
from assessor.report import Report, RubricRef
from assessor.rubric import Rubric
from assessor.sandbox import SandboxLimits, bubblewrap_available
from assessor.scoring import CriterionScore, decide, score_measured, score_pending

JOB_PREFIX = "job-"
IN_USE_FILE = ".in-use"  # flocked while the job runs; the lock dies with its process, even on SIGKILL
# A job dir younger than this may be one whose process has not taken its lock yet.
STALE_AFTER_SECONDS = 60.0

# The stages a person watching an assessment sees, in order.
STAGES = ("cloning", "measuring", "installing", "testing", "scoring")

Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class PipelineSettings:
    work_root: Path
    cache_dir: Path
    source_policy: SourcePolicy = field(default_factory=SourcePolicy)
    clone_limits: CloneLimits = field(default_factory=CloneLimits)
    unsafe_no_sandbox: bool = False
    wall_seconds: float | None = None  # one run's override of the rubric's wall-clock limit
    keep_work_dir: bool = False


def _ignore_progress(stage: str, message: str) -> None:
    pass


def sandbox_limits(rubric: Rubric, wall_seconds_override: float | None = None) -> SandboxLimits:
    """The default limits, adjusted by the rubric's [limits] table and a one-run wall-clock override."""
    overrides: dict[str, Any] = {key: value for key, value in rubric.limits.items() if key != "output_kb"}
    if "output_kb" in rubric.limits:
        overrides["output_bytes"] = rubric.limits["output_kb"] * 1024
    if wall_seconds_override is not None:
        overrides["wall_seconds"] = wall_seconds_override
    return SandboxLimits(**overrides)


def require_sandbox(unsafe_no_sandbox: bool) -> None:
    if not unsafe_no_sandbox and not bubblewrap_available():
        raise SandboxError(
            "bubblewrap (bwrap) is not installed, so learner code cannot be run safely; install it "
            "(apt-get install bubblewrap) or, only for your own code on your own machine, pass --unsafe-no-sandbox"
        )


class _StageClock:
    def __init__(self, progress: Progress):
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        self.progress(name, message)
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - started, 3)


def assess(source: str, rubric: Rubric, *, settings: PipelineSettings, ref: str | None = None,
           progress: Progress = _ignore_progress) -> Report:
    """Assess one capstone against one rubric. Raises the stage's AssessorError for bad input."""
    check_source(source, settings.source_policy)
    runs_tests = any(criterion.kind in ("tests", "coverage") for criterion in rubric.criteria)
    if runs_tests:
        require_sandbox(settings.unsafe_no_sandbox)
    settings.work_root.mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(prefix=JOB_PREFIX, dir=settings.work_root))
    in_use = _hold_lock(job_dir / IN_USE_FILE)
    clock = _StageClock(progress)
    try:
        with clock.stage("cloning", f"cloning {source}" + (f" at {ref}" if ref else "")):
            checkout = clone(source, job_dir / "checkout", ref=ref, policy=settings.source_policy,
                             limits=settings.clone_limits)
        with clock.stage("measuring", f"measuring commit {checkout.commit[:12]}"):
            complexity = measure_complexity(checkout.path)
            artifacts = {
                criterion.id: check_artifacts(checkout.path, criterion.artifacts)
                for criterion in rubric.criteria if criterion.kind == "artifact"
            }
        test_run = environment = None
        environment_problem = None
        if runs_tests:
            with clock.stage("installing", "installing the capstone's dependencies"):
                try:
                    environment = build_environment(checkout.path, job_dir / "venv", cache_dir=settings.cache_dir)
                except EnvironmentBuildError as error:
                    environment_problem = str(error)
            if environment is not None:
                with clock.stage("testing", "running the capstone's tests in the sandbox"):
                    test_run = run_tests(
                        checkout.path, environment=environment, work_dir=job_dir / "run",
                        limits=sandbox_limits(rubric, settings.wall_seconds),
                        unsafe_no_sandbox=settings.unsafe_no_sandbox,
                    )
        with clock.stage("scoring", "scoring against the rubric"):
            criterion_scores = [
                _score_criterion(criterion, complexity, artifacts, test_run, environment_problem)
                for criterion in rubric.criteria
            ]
            gates, score = decide(rubric, criterion_scores)
        run_data = test_run.to_dict() if test_run else {}
        return Report(
            source=checkout.source,
            ref=ref,
            commit=checkout.commit,
            rubric=RubricRef.of(rubric),
            assessed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            criteria=tuple(criterion_scores),
            gates=tuple(gates),
            score=score,
            complexity=complexity.to_dict(),
            artifacts=tuple(
                {"criterion": criterion_id, **result.to_dict()}
                for criterion_id, results in artifacts.items() for result in results
            ),
            tests=run_data.get("tests"),
            coverage=run_data.get("coverage"),
            sandbox=run_data.get("sandbox"),
            environment=environment.to_dict() if environment else (
                {"problems": [environment_problem]} if environment_problem else None),
            flags=tuple(run_data.get("flags", ())),
            output_tail=run_data.get("output_tail", ""),
            stage_seconds=clock.seconds,
        )
    finally:
        if not settings.keep_work_dir:
            shutil.rmtree(job_dir, ignore_errors=True)
        os.close(in_use)


def _hold_lock(path: Path) -> int:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor


def _mount_points_under(directory: Path) -> list[Path]:
    """Mount points inside `directory`, deepest first (from /proc/self/mountinfo, octal escapes decoded)."""
    prefix = str(directory) + "/"
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            raw = line.split()[4]
            point = raw.encode().decode("unicode_escape") if "\\" in raw else raw
            if point.startswith(prefix):
                found.append(Path(point))
    return sorted(found, key=lambda point: len(point.parts), reverse=True)


def clean_stale_job_dirs(work_root: Path) -> list[Path]:
    """Remove job dirs whose process died (a killed worker): unmount their sandbox areas, then delete them.

    A job that is still running holds its lock, so it is never touched, whichever process runs it.
    """
    removed: list[Path] = []
    if not work_root.is_dir():
        return removed
    for job_dir in sorted(work_root.glob(f"{JOB_PREFIX}*")):
        if job_dir.is_symlink() or not job_dir.is_dir():
            continue
        if time.time() - job_dir.stat().st_mtime < STALE_AFTER_SECONDS:
            continue
        try:
            lock = os.open(job_dir / IN_USE_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        try:
            for point in _mount_points_under(job_dir.resolve()):
                subprocess.run(["umount", "--lazy", str(point)], capture_output=True, timeout=30)
            shutil.rmtree(job_dir, ignore_errors=True)
            removed.append(job_dir)
        finally:
            os.close(lock)
    return removed


def _score_criterion(criterion, complexity, artifacts, test_run, environment_problem) -> CriterionScore:
    if criterion.kind == "manual":
        return score_pending(criterion)
    if criterion.kind == "complexity":
        measured, evidence = facts.complexity_facts(complexity)
        return score_measured(criterion, measured, evidence, not_measured_reason="no Python source to measure")
    if criterion.kind == "artifact":
        measured, evidence = facts.artifact_facts(artifacts[criterion.id])
        return score_measured(criterion, measured, evidence)
    if test_run is None:
        reason = f"tests not run: {environment_problem}" if environment_problem else "tests not run"
        return score_measured(criterion, None, not_measured_reason=reason)
    if criterion.kind == "tests":
        measured, evidence = facts.test_facts(test_run)
    else:
        measured, evidence = facts.coverage_facts(test_run)
    return score_measured(criterion, measured, evidence)
