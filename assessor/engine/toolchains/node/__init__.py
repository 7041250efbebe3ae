"""The Node.js toolchain (JavaScript and TypeScript): Jest, Vitest, Mocha or node --test with the service's
coverage, packages from the lock file with install scripts in the sandbox, complexity with lizard."""

from dataclasses import dataclass, field
from pathlib import Path

from assessor.engine.manifest import Manifest
from assessor.engine.measure.complexity import ComplexityResult, measure_complexity as analyse_complexity
from assessor.engine.measure.outcomes import TestRun
from assessor.engine.sandbox import SandboxLimits
from assessor.engine.services import ServicePlan, ServicePolicy, choose_test_step, plan_services, read_declarations
from assessor.engine.toolchains.base import Detection, find_root
from assessor.engine.toolchains.node import packages as installer
from assessor.engine.toolchains.node.packages import Environment
from assessor.engine.toolchains.node.project import (
    PackageJson, TestCommand, find_test_command, find_test_files, ignore_comments, lock_file, read_package_json,
    source_files,
)
from assessor.engine.toolchains.node.testrun import NodeTestRequest, run_tests as run_runner

NAME = "node"
MUTATION_TOOL = "Stryker's operators"  # what samples test strength
LABEL = "Node.js"
# The coverage provider Vitest needs, added by the service when the project lacks it (same version as Vitest).
VITEST_COVERAGE = "@vitest/coverage-v8"


@dataclass(frozen=True)
class Plan:
    checkout: Path
    root: Path
    detection: Detection
    package: PackageJson
    lock: str | None
    manager: str
    test: TestCommand | None
    services: ServicePlan
    notes: list[str] = field(default_factory=list)

    @property
    def blocker(self) -> str | None:
        """Why the tests cannot be run at all (nothing to run), or None."""
        return None if self.test is not None else "no test runner and no test files were found"


def project_markers(folder: Path) -> tuple[str, ...]:
    return ("package.json",) if (folder / "package.json").is_file() and not (folder / "package.json").is_symlink() \
        else ()


def has_tests(folder: Path) -> bool:
    return bool(find_test_files(folder))


def detect(checkout: Path, *, root_hint: str | None = None) -> Detection | None:
    """A package.json at the top of the checkout or in the one folder that holds the service."""
    choice = find_root(checkout, markers=project_markers, has_tests=has_tests, hint=root_hint,
                       kind="Node.js project")
    if choice.root is None:
        return Detection(NAME, None, (), notes=choice.notes) if choice.notes else None
    root = checkout / choice.root
    if not choice.markers:
        return None
    lock, _manager = lock_file(root)
    found = list(choice.markers) + ([f"{choice.root}/{lock}".removeprefix("./")] if lock else [])
    return Detection(NAME, choice.root, tuple(found), has_tests=has_tests(root), notes=choice.notes)


def _runs_tests(run: str, package: PackageJson) -> bool:
    words = run.replace("\n", " ").split()
    return any(word in ("jest", "vitest", "mocha", "--test") for word in words) or \
        any(command in run for command in ("npm test", "npm run test", "yarn test", "pnpm test", "npm t ",
                                           "yarn run test", "pnpm run test"))


def plan(checkout: Path, detection: Detection, *, manifest: Manifest, policy: ServicePolicy) -> Plan:
    root = (checkout / detection.root).resolve()
    package = read_package_json(root) or PackageJson()
    lock, manager = lock_file(root)
    declarations = read_declarations(checkout, root)
    step = None if manifest.test else choose_test_step(
        declarations, lambda run, folder: _runs_tests(run, package))
    declared = manifest.test or (step.run if step else None)
    source = (manifest.source or "capstone.toml") if manifest.test else (step.source if step else "")
    test = find_test_command(root, package, declared=declared, declared_source=source)
    services = plan_services(declarations, manifest=manifest, policy=policy, test_step=step)
    notes = [*detection.notes, *package.problems]
    own_scripts = [name for name in ("preinstall", "install", "postinstall", "prepare") if name in package.scripts]
    if own_scripts:
        notes.append(f"package.json's own {', '.join(own_scripts)} script{'s were' if len(own_scripts) > 1 else ' was'} "
                     f"not run: the service installs your dependencies, never runs your project's install scripts")
    if test is None:
        notes.append("no test runner and no test files were found (Jest, Vitest, Mocha or node --test with *.test.js "
                     "or *.spec.ts files): name one in package.json's scripts.test")
    return Plan(checkout=checkout, root=root, detection=detection, package=package, lock=lock, manager=manager,
                test=test, services=services, notes=notes + list(services.notes))


def measure_complexity(plan: Plan) -> ComplexityResult:
    """lizard over the project's application code (never tests, configuration or dependencies)."""
    return analyse_complexity(plan.checkout, files=source_files(plan.root), analyser="lizard")


def install(plan: Plan, *, job_dir: Path, cache_dir: Path, shared_dir: Path, unsafe_no_sandbox: bool = False,
            as_of: str | None = None) -> Environment:
    extra = {}
    if plan.test is not None and plan.test.runner == "vitest" and VITEST_COVERAGE not in plan.package.all_dependencies:
        version = plan.package.all_dependencies.get("vitest", "").lstrip("^~>=<v ").split(" ")[0]
        extra[VITEST_COVERAGE] = version or "latest"
    environment = installer.build_environment(plan.root, job_dir / "node-install", package=plan.package,
                                              lock=plan.lock, manager=plan.manager, cache_dir=cache_dir,
                                              shared_dir=shared_dir, extra_packages=extra,
                                              unsafe_no_sandbox=unsafe_no_sandbox)
    note = installer.engines_note(environment.node, environment.tools, plan.package.engines_node)
    if note:
        environment.notes.append(note)
    if extra:
        environment.notes.append(f"{VITEST_COVERAGE} was added for the coverage run (your project does not "
                                 f"list it)")
    return environment


def run_tests(plan: Plan, environment: Environment, *, work_dir: Path, limits: SandboxLimits, cache_dir: Path,
              shared_dir: Path, unsafe_no_sandbox: bool = False, mutants: int = 0, seed: str = "") -> TestRun:
    """`mutants`: how many changes to covered lines to sample for test strength, picked by `seed` (the commit)."""
    sources = [path.relative_to(plan.root).as_posix() for path in source_files(plan.root)]
    tests = [path.relative_to(plan.root).as_posix() for path in find_test_files(plan.root, package=plan.package)]
    request = NodeTestRequest(checkout=plan.checkout, root=plan.root, test=plan.test, sources=sources,
                              test_files=tests, ignore_comments=ignore_comments(plan.root, source_files(plan.root)),
                              services=plan.services, cache_dir=cache_dir, shared_dir=shared_dir, mutants=mutants,
                              seed=seed)
    return run_runner(request, environment, work_dir=work_dir, limits=limits, unsafe_no_sandbox=unsafe_no_sandbox)
