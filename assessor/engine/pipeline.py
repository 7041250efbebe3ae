"""The one orchestrator: source → clone → measure → install → test in the sandbox → score → report."""

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from assessor.engine import facts, sources, toolchains
from assessor.engine.authorship import HistoryLimits
from assessor.errors import EnvironmentBuildError, SandboxError
from assessor.engine.intake import CloneLimits, GitCredentials, SourcePolicy, check_source, clone
from assessor.engine.manifest import merged, read_manifest
from assessor.engine.measure.artifacts import check_artifacts
from assessor.engine.report import Report, RubricRef, integrity_section
from assessor.engine.rubric import Rubric
from assessor.engine.sandbox import SandboxLimits, bubblewrap_available
from assessor.engine.scoring import CriterionScore, decide, score_measured, score_pending
from assessor.engine.services import ServicePolicy
from assessor.engine.services.runtime import warm_up
from assessor.engine.toolchains import Unrecognised
from assessor.engine.toolchains.base import Detection

JOB_PREFIX = "job-"
# Beside the job dirs: what sandboxed runs may read and every job reuses (build environments).
SHARED_DIR = "shared"
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
    keep_sources: bool = False  # the text files at the commit, for the code view (Report.sources)
    history: HistoryLimits | None = field(default_factory=HistoryLimits)  # None: the commit alone, no authorship


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
           progress: Progress = _ignore_progress, credentials: GitCredentials | None = None) -> Report:
    """Assess one capstone against one rubric. Raises the stage's AssessorError for bad input."""
    check_source(source, settings.source_policy)
    runs_tests = any(criterion.kind in ("tests", "coverage") for criterion in rubric.criteria)
    if runs_tests:
        require_sandbox(settings.unsafe_no_sandbox)
    settings.work_root.mkdir(parents=True, exist_ok=True)
    shared_dir = settings.work_root / SHARED_DIR
    shared_dir.mkdir(exist_ok=True)
    os.chmod(shared_dir, 0o711)
    job_dir = Path(tempfile.mkdtemp(prefix=JOB_PREFIX, dir=settings.work_root))
    in_use = _hold_lock(job_dir / IN_USE_FILE)
    clock = _StageClock(progress)
    try:
        with clock.stage("cloning", f"cloning {source}" + (f" at {ref}" if ref else "")):
            checkout = clone(source, job_dir / "checkout", ref=ref, policy=settings.source_policy,
                             limits=settings.clone_limits, history=settings.history, credentials=credentials)
            # Read before any learner code runs, so what the code view shows is exactly the assessed commit.
            source_files = sources.snapshot(checkout.path) if settings.keep_sources else None
        with clock.stage("measuring", f"measuring commit {checkout.commit[:12]}"):
            project = _recognise(checkout.path, rubric)
            complexity = project.toolchain.measure_complexity(project.plan) if project.plan else None
            artifacts = {
                criterion.id: check_artifacts(checkout.path, criterion.artifacts)
                for criterion in rubric.criteria if criterion.kind == "artifact"
            }
        test_run = environment = None
        if project.plan is not None and project.plan.blocker:
            project.not_run = project.plan.blocker
        elif runs_tests and project.plan is not None:
            with clock.stage("installing", "installing the capstone's dependencies"), \
                    ThreadPoolExecutor(max_workers=1) as ahead:
                # The servers' data folders are made while the dependencies install: neither needs the other.
                ahead.submit(warm_up, project.plan.services, cache_dir=settings.cache_dir, shared_dir=shared_dir,
                             unsafe_no_sandbox=settings.unsafe_no_sandbox)
                try:
                    environment = project.toolchain.install(project.plan, job_dir=job_dir,
                                                            cache_dir=settings.cache_dir, shared_dir=shared_dir,
                                                            unsafe_no_sandbox=settings.unsafe_no_sandbox,
                                                            as_of=checkout.committed_at)
                except EnvironmentBuildError as error:
                    project.not_run = f"the dependencies could not be installed: {error}"
            if environment is not None:
                with clock.stage("testing", "running the capstone's tests in the sandbox"):
                    test_run = project.toolchain.run_tests(
                        project.plan, environment, work_dir=job_dir / "run",
                        limits=sandbox_limits(rubric, settings.wall_seconds), cache_dir=settings.cache_dir,
                        shared_dir=shared_dir, unsafe_no_sandbox=settings.unsafe_no_sandbox,
                        mutants=rubric.mutants, seed=checkout.commit,
                    )
        with clock.stage("scoring", "scoring against the rubric"):
            criterion_scores = [
                _score_criterion(criterion, complexity, artifacts, test_run, project)
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
            complexity=complexity.to_dict() if complexity else None,
            artifacts=tuple(
                {"criterion": criterion_id, **result.to_dict()}
                for criterion_id, results in artifacts.items() for result in results
            ),
            tests=run_data.get("tests"),
            coverage=run_data.get("coverage"),
            sandbox=run_data.get("sandbox"),
            environment=environment.to_dict() if environment else (
                {"problems": [project.not_run]} if project.not_run else None),
            flags=tuple(run_data.get("flags", ())),
            output_tail=run_data.get("output_tail", ""),
            stage_seconds=clock.seconds,
            toolchain=project.detection.to_dict() if project.detection else None,
            notes=tuple(_notes(project, environment, test_run)),
            services=_services_summary(project, test_run),
            failures=tuple(run_data.get("failures", ())),
            sources=source_files,
            tree=checkout.tree,
            integrity=integrity_section(authorship=checkout.authorship, evidence=run_data.get("evidence", ())),
            strength=run_data.get("strength"),
        )
    finally:
        if not settings.keep_work_dir:
            shutil.rmtree(job_dir, ignore_errors=True)
        os.close(in_use)


@dataclass
class _Project:
    """The toolchain that assesses a checkout and its plan, or why there is none."""

    toolchain: ModuleType | None = None
    detection: Detection | None = None
    plan: Any = None
    unrecognised: str | None = None
    not_run: str | None = None       # why the tests were not run although the project was recognised
    notes: list[str] = field(default_factory=list)


def _recognise(checkout: Path, rubric: Rubric) -> _Project:
    manifest = read_manifest(checkout)
    found = toolchains.detect(checkout, manifest=manifest, root_hint=rubric.project_root)
    if isinstance(found, Unrecognised):
        return _Project(unrecognised=found.reason, notes=[*manifest.problems, *found.notes])
    module, detection = found
    if detection.root != ".":
        manifest = merged(manifest, read_manifest(checkout / detection.root, label_prefix=f"{detection.root}/"))
    policy = ServicePolicy(require=rubric.services.require, forbid=rubric.services.forbid,
                           start_seconds=rubric.services.start_seconds, env=dict(rubric.env))
    plan = module.plan(checkout, detection, manifest=manifest, policy=policy)
    return _Project(toolchain=module, detection=detection, plan=plan, notes=[*manifest.problems, *plan.notes])


def _notes(project: _Project, environment, test_run) -> list[str]:
    """Every note of the run, in the order it arose, each once: what was found, what was ignored, what failed."""
    notes = list(project.notes)
    if project.unrecognised:
        notes.append(project.unrecognised)
    if environment is not None:
        notes += environment.problems + environment.notes
    if project.not_run:
        notes.append(project.not_run)
    if test_run is not None:
        notes += test_run.notes
        if test_run.unmeasurable:
            notes.append(test_run.unmeasurable)
    return list(dict.fromkeys(notes))


def _services_summary(project: _Project, test_run) -> dict | None:
    services = getattr(project.plan, "services", None)
    if services is None or not (services.needs or services.env):
        return None
    return {**services.to_dict(), "started": list(test_run.services) if test_run else []}


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


def _score_criterion(criterion, complexity, artifacts, test_run, project: _Project) -> CriterionScore:
    if criterion.kind == "manual":
        return score_pending(criterion)
    if criterion.kind == "artifact":
        measured, evidence = facts.artifact_facts(artifacts[criterion.id])
        return score_measured(criterion, measured, evidence)
    if project.unrecognised:
        return score_measured(criterion, None, not_measured_reason=project.unrecognised)
    toolchain = project.toolchain.NAME
    if criterion.kind == "complexity":
        measured, evidence = facts.complexity_facts(complexity)
        return score_measured(criterion, measured, evidence, toolchain=toolchain,
                              not_measured_reason=f"no {project.toolchain.LABEL} application code to measure")
    if test_run is None:
        return score_measured(criterion, None, not_measured_reason=project.not_run or "tests not run")
    if criterion.kind == "strength" and project.toolchain.MUTATION_TOOL is None:
        return score_measured(criterion, None, not_measured_reason=f"test strength is not sampled for "
                                                                   f"{project.toolchain.LABEL} capstones yet")
    if criterion.kind == "strength":
        measured, evidence = facts.strength_facts(test_run)
        if measured is None:
            return score_measured(criterion, None, evidence, not_measured_reason=test_run.unmeasurable
                                  or facts.strength_unmeasured(test_run))
        return score_measured(criterion, measured, evidence, toolchain=toolchain)
    if criterion.kind == "tests":
        measured, evidence = facts.test_facts(test_run)
    else:
        measured, evidence = facts.coverage_facts(test_run)
    if test_run.unmeasurable:
        return score_measured(criterion, None, evidence, not_measured_reason=test_run.unmeasurable)
    no_coverage = facts.coverage_unmeasured(test_run) if criterion.kind == "coverage" else None
    if no_coverage:
        return score_measured(criterion, None, evidence, not_measured_reason=no_coverage)
    return score_measured(criterion, measured, evidence, toolchain=toolchain)
