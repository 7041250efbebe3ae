"""The Python toolchain: pytest under coverage.py in the sandbox, dependencies through uv, complexity with radon."""

from dataclasses import dataclass, field
from pathlib import Path

from assessor.engine.manifest import Manifest
from assessor.engine.measure.complexity import ComplexityResult, measure_complexity as radon_complexity
from assessor.engine.measure.outcomes import TestRun
from assessor.engine.sandbox import SandboxLimits
from assessor.engine.services import ServicePlan, ServicePolicy, choose_test_step, plan_services, read_declarations
from assessor.engine.toolchains.base import Detection, any_file, find_root
from assessor.engine.toolchains.python.coverage_data import measured_files
from assessor.engine.toolchains.python.dependencies import LearnerRequirements, read_requirements
from assessor.engine.toolchains.python.environment import Environment, build_environment
from assessor.engine.toolchains.python.interpreters import (
    InterpreterChoice, choose_interpreter, declared_python, find_interpreters,
)
from assessor.engine.toolchains.python.pytest_config import (
    PytestConfig, TestSelection, learner_pytest_config, selection_from_command, test_file_patterns,
)
from assessor.engine.toolchains.python.sources import SKIPPED_DIRS, is_test_file
from assessor.engine.toolchains.python.testrun import TestRunRequest, run_tests as run_pytest

NAME = "python"
LABEL = "Python"
MUTATION_TOOL = "mutmut's operators"  # what samples test strength; None where nothing does yet
PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "poetry.lock", "uv.lock", "pdm.lock",
                 "manage.py")


@dataclass(frozen=True)
class Plan:
    """What the Python toolchain will do with one checkout, decided before anything is installed or run."""

    checkout: Path
    root: Path
    detection: Detection
    declared: LearnerRequirements
    pytest_config: PytestConfig
    selection: TestSelection
    services: ServicePlan
    notes: list[str] = field(default_factory=list)
    python: InterpreterChoice | None = None  # None: the worker's default, nothing declared or looked for

    @property
    def blocker(self) -> str | None:
        """Why the tests cannot run here (no interpreter fits); pytest otherwise always runs."""
        if self.python is not None and self.python.interpreter is None:
            return f"{self.python.reason}, so the tests could not be run"
        return None

    @property
    def test_patterns(self) -> tuple[str, ...]:
        return test_file_patterns(self.pytest_config, self.selection)


def project_markers(folder: Path) -> tuple[str, ...]:
    """The files that make `folder` a Python project."""
    found = [name for name in PROJECT_FILES if (folder / name).is_file()]
    found += sorted(path.name for path in folder.glob("requirements*.txt") if path.is_file())
    if (folder / "requirements").is_dir() and any((folder / "requirements").glob("*.txt")):
        found.append("requirements/")
    return tuple(found)


def _top_level_python(folder: Path) -> tuple[str, ...]:
    """Python code at the top of `folder` without any declaration: modules, or packages (their __init__.py)."""
    modules = sorted(path.name for path in folder.glob("*.py") if path.is_file() and not path.is_symlink())
    packages = sorted(f"{path.parent.name}/__init__.py" for path in folder.glob("*/__init__.py")
                      if path.is_file() and path.parent.name not in SKIPPED_DIRS - {"tests", "test"})
    return tuple(modules + packages)[:3]


def has_tests(folder: Path) -> bool:
    return any_file(folder, lambda name, _here: is_test_file(name) and name != "conftest.py",
                    skip_dirs=SKIPPED_DIRS - {"tests", "test", "testing"})


def detect(checkout: Path, *, root_hint: str | None = None) -> Detection | None:
    """A Python project at the top of the checkout or in one folder (declarations, or .py files at the top)."""
    choice = find_root(checkout, markers=project_markers, has_tests=has_tests, hint=root_hint,
                       kind="Python project")
    if choice.root is None and not choice.notes:
        top = _top_level_python(checkout)
        if top:
            return Detection(NAME, ".", top, has_tests=has_tests(checkout))
        return None
    if choice.root is None:
        return Detection(NAME, None, (), notes=choice.notes)  # several projects, none chosen
    markers = choice.markers or _top_level_python(checkout / choice.root)
    return Detection(NAME, choice.root, markers, has_tests=has_tests(checkout / choice.root), notes=choice.notes)


def plan(checkout: Path, detection: Detection, *, manifest: Manifest, policy: ServicePolicy) -> Plan:
    root = (checkout / detection.root).resolve()
    notes = list(detection.notes)
    declarations = read_declarations(checkout, root)

    def step_selection(run: str, source: str, folder: str | None) -> TestSelection | None:
        base = _inside(checkout, folder) if folder else checkout
        return selection_from_command(run, root=root, source=source, base=base, checkout=checkout)

    step = None if manifest.test else choose_test_step(
        declarations, lambda run, folder: step_selection(run, "", folder) is not None)
    selection = TestSelection()
    if manifest.test:
        selection = selection_from_command(manifest.test, root=root, source=manifest.source or "capstone.toml",
                                           checkout=checkout) \
            or TestSelection(notes=(f"{manifest.source}: test = {manifest.test!r} is not a pytest or unittest "
                                    f"command; the tests were found by pytest's discovery",))
    elif step is not None:
        selection = step_selection(step.run, step.source, step.working_directory) or TestSelection()
    services = plan_services(declarations, manifest=manifest, policy=policy, test_step=step)
    declared = read_requirements(root)
    wanted = declared_python(root, checkout)
    python = choose_interpreter(wanted, find_interpreters())
    notes += wanted.notes
    if python.interpreter is not None and (wanted.pinned or wanted.ranges):
        notes.append(f"the tests ran on {python.reason}")
    if not declared.requirements and not declared.needs_metadata_build and not declared.constraints:
        notes.append("no dependency declaration was found (pyproject.toml, requirements*.txt, Pipfile, setup.cfg, "
                     "setup.py): only pytest and coverage were installed")
    return Plan(checkout=checkout, root=root, detection=detection, declared=declared,
                pytest_config=learner_pytest_config(root), selection=selection, services=services,
                notes=notes + list(services.notes), python=python)


def _inside(checkout: Path, folder: str) -> Path:
    """A workflow's working directory inside the checkout (the checkout itself when it points elsewhere)."""
    target = (checkout / folder.removeprefix("./")).resolve()
    return target if target == checkout.resolve() or checkout.resolve() in target.parents else checkout


def measure_complexity(plan: Plan) -> ComplexityResult:
    """radon over the project's application code (never tests or packaging files); paths from the checkout."""
    # The very files coverage is computed over, so the two figures describe the same code.
    names = measured_files(plan.checkout, plan.root, test_patterns=plan.test_patterns)
    files = [plan.checkout / name for name in names]
    return radon_complexity(plan.checkout, files=files)


def install(plan: Plan, *, job_dir: Path, cache_dir: Path, shared_dir: Path, unsafe_no_sandbox: bool = False,
            as_of: str | None = None) -> Environment:
    return build_environment(plan.root, job_dir / "install", cache_dir=cache_dir, declared=plan.declared,
                             shared_dir=shared_dir, unsafe_no_sandbox=unsafe_no_sandbox, as_of=as_of,
                             interpreter=plan.python)


def run_tests(plan: Plan, environment: Environment, *, work_dir: Path, limits: SandboxLimits, cache_dir: Path,
              shared_dir: Path, unsafe_no_sandbox: bool = False, mutants: int = 0, seed: str = "") -> TestRun:
    """`mutants`: how many changes to covered lines to sample for test strength, picked by `seed` (the commit)."""
    request = TestRunRequest(checkout=plan.checkout, root=plan.root, pytest_config=plan.pytest_config,
                             selection=plan.selection, services=plan.services, cache_dir=cache_dir,
                             shared_dir=shared_dir, mutants=mutants, seed=seed)
    return run_pytest(plan.checkout, environment=environment, work_dir=work_dir, limits=limits,
                      unsafe_no_sandbox=unsafe_no_sandbox, request=request)
