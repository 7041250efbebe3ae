"""Install a Python capstone's dependencies into a fresh virtualenv: wheels through uv on the host, anything that
must be built from source (sdist-only packages, a setup.py project's metadata) built inside the sandbox."""

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.parser import Parser
from pathlib import Path

from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename, InvalidWheelFilename
from packaging.version import InvalidVersion, Version

from assessor.engine import registries
from assessor.engine.filelock import exclusive_lock
from assessor.errors import EnvironmentBuildError, SandboxError
from assessor.engine.sandbox import SandboxLimits, open_to_sandbox, run_sandboxed, size_capped_dir
from assessor.engine.toolchains.base import run_tool
from assessor.engine.toolchains.python.dependencies import (
    TEST_EXTRAS, LearnerRequirements, check_requirement, normalize_name, read_requirements, requirement_name,
    requirement_specifier,
)
from assessor.engine.toolchains.python.interpreters import Interpreter, InterpreterChoice

# The interpreter learner venvs are built from: it must be readable by the unprivileged sandbox uid
# (a Python under /root is not), and it is the system's, not one the learner chose.
SYSTEM_PYTHON = Path("/usr/bin/python3")
# The runner drives pytest through hooks that are the same in pytest 7, 8 and 9: a learner's pin in that range is
# honoured; without one the resolver picks the newest that fits the learner's other pins.
PYTEST_RANGE = ">=7.0,<10"
PYTEST_DEFAULT = "9.2.0"
DEFAULT_INDEX = "https://pypi.org/simple"
# The runner's tools and what they depend on: exempt from the commit-date cut-off.
RUNNER_PACKAGES = ("pytest", "coverage", "pluggy", "iniconfig", "packaging", "exceptiongroup", "tomli", "pygments",
                   "colorama")
NO_CUTOFF = "2999-01-01T00:00:00Z"
MAX_SDIST_BYTES = 100 * 1024 * 1024
MAX_WHEEL_BYTES = 200 * 1024 * 1024
MAX_METADATA_BYTES = 1024 * 1024
# Rounds of "resolve, build the next package that has no wheel": a project with more sdist-only packages than
# this is reported rather than built.
MAX_BUILD_ROUNDS = 12
# Built environments kept for reuse (each some tens of MB), and how recently used one must be to be kept anyway.
MAX_CACHED_VENVS = 24
RECENT_VENV_SECONDS = 3600
# A commit older than this gets a note that its dependencies were resolved as of its date.
STALE_COMMIT_DAYS = 30
DOWNLOAD_TIMEOUT_SECONDS = 60
# Builds of learner-chosen source need more room than a test run's defaults on small rubrics.
BUILD_LIMITS = SandboxLimits(wall_seconds=300, cpu_seconds=280, memory_mb=3072, processes=128, tmp_mb=1024,
                             workdir_mb=2048, file_size_mb=512)
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")
# Operator settings passed through to uv: which registry to use and how to reach it, never the learner's.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"


@dataclass(frozen=True)
class Environment:
    """A built virtualenv ready to be bound read-only into the sandbox."""

    venv: Path
    python: Path
    requirements: list[str]
    installed: list[str]
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    built_from_source: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    interpreter: dict = field(default_factory=dict)   # version, path, origin and why it was chosen
    interpreter_home: Path | None = None              # a copy outside /usr the sandbox must see read-only

    def sandbox_env(self) -> dict[str, str]:
        """What a copied interpreter needs in the sandbox: its own libpython (built --enable-shared, its run
        path names the original's folder, which the sandbox cannot see)."""
        return interpreter_env(self.interpreter_home)

    def to_dict(self) -> dict:
        return {
            "venv": str(self.venv), "python": str(self.python), "interpreter": dict(self.interpreter),
            "requirements": list(self.requirements),
            "constraints": list(self.constraints), "installed": list(self.installed),
            "built_from_source": list(self.built_from_source), "problems": list(self.problems),
            "notes": list(self.notes), "seconds": self.seconds,
        }


@dataclass
class _Request:
    """What one uv run is asked to install; changed between rounds as sdists are built and pins are dropped."""

    requirements: list[str]
    constraints: list[str]
    overrides: list[str]
    find_links: Path
    as_of: str | None = None  # resolve with the versions published before this date (uv --exclude-newer)
    fresh: list[str] = field(default_factory=list)  # packages whose versions of that date have no wheel here
    python: Path = SYSTEM_PYTHON  # the interpreter resolved for and installed into


def service_pins(python_minor: str | None = None) -> list[str]:
    """The tracer the service trusts, forced over whatever the learner (or a plugin) pinned: the service's own
    version on its own Python, the newest coverage 7 on another (the runner exports the data either way)."""
    if python_minor is None or python_minor == _host_minor():
        return [f"coverage=={importlib.metadata.version('coverage')}"]
    return ["coverage>=7.0,<8"]


def runner_requirements(python_minor: str | None = None) -> list[str]:
    """What the runner needs installed besides the learner's dependencies."""
    return [f"pytest{PYTEST_RANGE}", *service_pins(python_minor)]


def uv_binary() -> str:
    try:
        return registries.uv_binary()
    except registries.RegistryToolError as error:
        raise EnvironmentBuildError(str(error)) from None


def build_environment(project_dir: Path, work_dir: Path, *, cache_dir: Path, timeout_seconds: float = 600,
                      declared: LearnerRequirements | None = None, shared_dir: Path | None = None,
                      unsafe_no_sandbox: bool = False, as_of: str | None = None,
                      interpreter: InterpreterChoice | None = None) -> Environment:
    """A virtualenv with the learner's dependencies plus pytest and coverage; `work_dir` is the job's own
    scratch space (source builds happen there).

    Wheels come through uv (learner config ignored, files copied out of the service-owned cache so nothing in one
    job's venv shares an inode with another's). A package with no wheel is downloaded as an sdist and built into a
    wheel inside the sandbox, with no network; so is a setup.py project's own metadata. Nothing the learner chose
    ever runs on the host. Raises EnvironmentBuildError naming every package that could not be installed.

    `shared_dir` holds build environments reused across assessments; it must be outside the instance folder,
    because the sandbox reads them. Without a lock file, versions are first resolved `as_of` the commit's date
    (the versions the learner had then), and afresh when that cannot be installed here. `interpreter` is the
    Python chosen for the project (the worker's default when None); one outside /usr is copied once into
    `shared_dir`, where the sandbox can read it.
    """
    started = time.monotonic()
    deadline = started + timeout_seconds
    declared = declared or read_requirements(project_dir)
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(cache_dir, 0o700)
    work_dir.mkdir(parents=True, exist_ok=True)
    shared_dir = shared_dir or work_dir / "shared"
    python, home, minor = _sandbox_python(interpreter, shared_dir)
    builder = _Builder(cache_dir=cache_dir, shared_dir=shared_dir, build_dir=work_dir / "builds",
                       unsafe_no_sandbox=unsafe_no_sandbox, deadline=deadline, python=python, python_home=home)
    problems = list(declared.problems)
    notes = list(declared.notes)
    requirements = list(declared.requirements)
    if declared.needs_metadata_build:
        found, message = builder.project_requirements(project_dir)
        if message:
            problems.append(message)
        else:
            notes.append(f"setup.py declares {len(found)} dependenc{'y' if len(found) == 1 else 'ies'} "
                         f"(read by building the project's metadata in the sandbox)")
        requirements += [requirement for requirement in found if requirement not in requirements]
    requirements, constraints, pin_notes = _fit_runner_pins(requirements, declared.constraints)
    notes += pin_notes
    request = _Request(requirements=[*requirements, *runner_requirements(minor)], constraints=constraints,
                       overrides=service_pins(minor), find_links=builder.wheel_dir,
                       as_of=as_of if declared.lock is None else None, python=python)
    failures: list[str] = []
    for _round in range(MAX_BUILD_ROUNDS + 1):
        pinned, failure = _resolve(request, cache_dir=cache_dir, deadline=deadline)
        if failure is None:
            notes += _as_of_notes(request, declared)
            break
        next_step = _next_step(failure, request, declared, builder, notes, failures)
        if next_step is None:
            raise EnvironmentBuildError("; ".join([*failures, explain_uv_failure(failure)]))
    else:
        names = ", ".join(sorted(builder.attempted)[:12])
        raise EnvironmentBuildError("; ".join([*failures, f"more than {MAX_BUILD_ROUNDS} packages have no wheel "
                                                          f"for Python {minor or _host_minor()} here ({names}): "
                                                          f"were they locked for another Python?"]))
    if failures:
        raise EnvironmentBuildError("; ".join(failures))
    venv_dir = VenvCache(builder.shared_dir / "venvs").get(
        pinned, lambda target: _create_venv(target, pinned, request, cache_dir=cache_dir, deadline=deadline),
        python=python)
    python = venv_dir / "bin" / "python"
    installed = installed_packages(venv_dir)
    built = sorted(set(installed) & builder.cached_wheels())
    for package in built:
        if package not in builder.built:  # built by an earlier assessment, reused from the cache
            notes.append(f"{package.replace('==', ' ')} has no wheel; a wheel built from its source in the sandbox "
                         f"was reused")
    return Environment(
        venv=venv_dir, python=venv_dir / "bin" / "python", requirements=list(request.requirements),
        constraints=list(request.constraints), installed=installed, problems=problems,
        notes=notes + builder.notes, seconds=round(time.monotonic() - started, 3), built_from_source=built,
        interpreter=interpreter.to_dict() if interpreter else {}, interpreter_home=home,
    )


def interpreter_env(home: Path | None) -> dict[str, str]:
    if home is None or not any((home / "lib").glob("libpython3*.so*")):
        return {}
    return {"LD_LIBRARY_PATH": str(home / "lib")}


def _host_minor() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _sandbox_python(choice: InterpreterChoice | None, shared_dir: Path) -> tuple[Path, Path | None, str | None]:
    """(the executable to build venvs from, its copied home when it is not under /usr, its minor version)."""
    if choice is None or choice.interpreter is None:
        if not SYSTEM_PYTHON.exists():
            raise EnvironmentBuildError(f"{SYSTEM_PYTHON} is missing: learner environments are built from it")
        return SYSTEM_PYTHON, None, None
    interpreter = choice.interpreter
    if interpreter.path.resolve().is_relative_to("/usr"):
        return interpreter.path, None, interpreter.minor
    home = copy_interpreter(interpreter, shared_dir / "pythons")
    return home / "bin" / interpreter.path.name, home, interpreter.minor


def copy_interpreter(interpreter: Interpreter, folder: Path) -> Path:
    """A read-only copy of an interpreter installed where the sandbox cannot see it (pyenv or uv under a home
    folder), made once per worker: its home inside `folder`."""
    key = hashlib.sha256(str(interpreter.home).encode()).hexdigest()[:12]
    target = folder / f"{interpreter.origin}-{interpreter.version}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o711)
    with exclusive_lock(folder / f"{target.name}.lock"):
        if not (target / ".complete").is_file():
            shutil.rmtree(target, ignore_errors=True)
            # The interpreter's own test suite is a third of its size and never imported.
            skip = f"python{interpreter.minor}"
            shutil.copytree(interpreter.home, target, symlinks=True,
                            ignore=lambda where, names: ["test"] if Path(where).name == skip else [])
            open_to_sandbox(target)
            (target / ".complete").write_text(f"{interpreter.path}\n")
    return target


def _uv_common(cache_dir: Path) -> list[str]:
    """Options of every uv call: the service's cache, no learner configuration, no interpreter downloads."""
    return ["--no-config", "--cache-dir", str(cache_dir), "--no-python-downloads", "--quiet"]


def _fit_runner_pins(requirements: list[str], constraints: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Keep a learner's pytest pin when the runner supports it; drop it, saying so, when it does not."""
    supported = SpecifierSet(PYTEST_RANGE)
    notes = []

    def fits(requirement: str) -> bool:
        spec = requirement_specifier(requirement)
        try:
            wanted = SpecifierSet(spec)
        except InvalidSpecifier:
            return True
        mentioned = []
        for clause in wanted:
            try:
                mentioned.append(Version(clause.version.rstrip(".*")))
            except InvalidVersion:
                continue
        return any(version in wanted and version in supported for version in [*_PYTEST_RELEASES, *mentioned])

    kept = []
    for requirement in requirements:
        if requirement_name(requirement) == "pytest" and not fits(requirement):
            notes.append(f"you ask for {requirement.split(';')[0].strip()}, but the service runs pytest "
                         f"{PYTEST_RANGE.replace(',', ' and ')}; your tests ran with the newest pytest that fits "
                         f"your other dependencies")
            continue
        kept.append(requirement)
    kept_constraints = []
    for constraint in constraints:
        if requirement_name(constraint) == "pytest" and not fits(constraint):
            notes.append(f"your lock file pins {constraint}, outside the pytest the service runs "
                         f"({PYTEST_RANGE}); that pin was not used")
            continue
        if requirement_name(constraint) == "coverage":
            continue  # the service's own coverage is always installed
        kept_constraints.append(constraint)
    return kept, kept_constraints, notes


# Releases the runner is tested against; enough to tell whether a pin's range meets the supported one.
_PYTEST_RELEASES = [Version(v) for v in ("6.2.5", "7.0.0", "7.1.3", "7.2.2", "7.3.2", "7.4.4", "8.0.2", "8.1.2",
                                         "8.2.2", "8.3.5", "8.4.2", "9.0.0", "9.1.0", "9.2.0")]


def _resolve(request: _Request, *, cache_dir: Path, deadline: float) -> tuple[list[str], str | None]:
    """(the exact versions to install, None), or ([], uv's stderr) when the request cannot be resolved."""
    with tempfile.TemporaryDirectory(prefix="assessor-uv-") as scratch:
        scratch_dir = Path(scratch)
        files = {"requirements.txt": request.requirements, "constraints.txt": request.constraints,
                 "overrides.txt": request.overrides}
        for name, lines in files.items():
            (scratch_dir / name).write_text("".join(f"{line}\n" for line in lines))
        request.find_links.mkdir(parents=True, exist_ok=True)
        try:
            output = _run_uv(["pip", "compile", *_uv_common(cache_dir), "--python", str(request.python),
                              "--only-binary", ":all:", "--find-links", str(request.find_links),
                              "--overrides", str(scratch_dir / "overrides.txt"),
                              "--constraints", str(scratch_dir / "constraints.txt"),
                              "--no-header", "--no-annotate", *_as_of_options(request.as_of, request.fresh),
                              str(scratch_dir / "requirements.txt")],
                             cwd=scratch_dir, cache_dir=cache_dir, deadline=deadline)
        except _UvFailed as failed:
            return [], failed.stderr
    pinned = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith(("#", "-"))]
    return sorted(pinned), None


def _create_venv(target: Path, pinned: list[str], request: _Request, *, cache_dir: Path, deadline: float) -> None:
    """A venv at `target` with exactly `pinned` installed (files copied, never linked to the uv cache),
    byte-compiled and readable by the sandbox."""
    _run_uv(["venv", *_uv_common(cache_dir), "--python", str(request.python), str(target)],
            cache_dir=cache_dir, deadline=deadline)
    with tempfile.TemporaryDirectory(prefix="assessor-uv-") as scratch:
        listing = Path(scratch) / "pinned.txt"
        listing.write_text("".join(f"{line}\n" for line in pinned))
        try:
            _run_uv(["pip", "install", *_uv_common(cache_dir), "--python", str(target / "bin" / "python"),
                     "--only-binary", ":all:", "--no-deps", "--link-mode", "copy",
                     "--find-links", str(request.find_links), "-r", str(listing)],
                    cache_dir=cache_dir, deadline=deadline)
        except _UvFailed as failed:
            raise EnvironmentBuildError(explain_uv_failure(failed.stderr)) from None
    _compile_bytecode(target, request.python)
    open_to_sandbox(target)


class VenvCache:
    """Built environments kept by the exact set of versions they hold, reused read-only by later assessments.

    The sandbox binds a venv read-only and the host never writes to one after it is complete, so one venv can
    serve every job that resolves to the same versions; most resubmissions do. Old ones are removed beyond
    `MAX_CACHED_VENVS`, never one used in the last hour (a job may be running in it).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, pinned: list[str], create, python: Path = SYSTEM_PYTHON) -> Path:
        key = hashlib.sha256("\n".join([str(python.resolve()), _uv_version(), *pinned]).encode()).hexdigest()[:24]
        venv = self.folder / key
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o711)
        with exclusive_lock(self.folder / f"{key}.lock"):
            if not (venv / ".complete").is_file():
                shutil.rmtree(venv, ignore_errors=True)
                create(venv)
                (venv / ".complete").write_text("\n".join(pinned) + "\n")
            os.utime(venv / ".complete")
        self._evict(keep=venv)
        return venv

    def _evict(self, *, keep: Path) -> None:
        complete = sorted((path for path in self.folder.glob("*/.complete")), key=lambda path: path.stat().st_mtime)
        excess = len(complete) - MAX_CACHED_VENVS
        for marker in complete[:max(excess, 0)]:
            venv = marker.parent
            if venv == keep or time.time() - marker.stat().st_mtime < RECENT_VENV_SECONDS:
                continue
            with exclusive_lock(self.folder / f"{venv.name}.lock"):
                shutil.rmtree(venv, ignore_errors=True)


def _uv_version() -> str:
    try:
        return importlib.metadata.version("uv")
    except importlib.metadata.PackageNotFoundError:
        return "uv"


def _days_ago(moment: str) -> float:
    try:
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (datetime.now(timezone.utc) - when).total_seconds() / 86400


def _as_of_notes(request: _Request, declared: LearnerRequirements) -> list[str]:
    """What the reader should know about versions chosen by the commit's date."""
    if not request.as_of:
        return []
    notes = []
    if request.fresh:
        several = len(request.fresh) > 1
        notes.append(f"{', '.join(request.fresh)} had no wheel installable here among the versions of your "
                     f"commit's date ({request.as_of[:10]}): "
                     + ("the newest versions that fit your declarations were used for them" if several else
                        "the newest version that fits your declarations was used for it")
                     + "; every other package is as of that date")
    if _days_ago(request.as_of) > STALE_COMMIT_DAYS:
        if declared.requirements and all(_exactly_pinned(requirement) for requirement in declared.requirements):
            notes.append(f"you pin every package you name; the packages they depend on were resolved as they were "
                         f"on the commit's date ({request.as_of[:10]})")
        else:
            notes.append(f"no lock file: dependencies were resolved as they were on the commit's date "
                         f"({request.as_of[:10]}), the versions you would have had; commit a lock file "
                         f"(uv.lock, poetry.lock, Pipfile.lock or pdm.lock) to choose them yourself")
    return notes


def _exactly_pinned(requirement: str) -> bool:
    """`name==1.2.3`: one version, no wildcard."""
    specifier = requirement_specifier(requirement)
    return bool(re.fullmatch(r"===?[^,*\s]+", specifier.replace(" ", "")))


def _as_of_options(as_of: str | None, fresh: list[str] = ()) -> list[str]:
    """uv's date cut-off, except for the runner's own tools, which must be the versions the service supports,
    and for the packages whose versions of that date cannot be installed here."""
    if not as_of:
        return []
    options = ["--exclude-newer", as_of]
    for package in [*RUNNER_PACKAGES, *fresh]:
        options += ["--exclude-newer-package", f"{package}={NO_CUTOFF}"]
    return options


def _next_step(failure: str, request: _Request, declared: LearnerRequirements, builder: "_Builder",
               notes: list[str], failures: list[str]) -> bool | None:
    """Change `request` so the next round can get further (build a wheel, drop a clashing pin): True, or None
    when nothing more can be tried."""
    no_wheel = _no_wheel_package(failure)
    if no_wheel is not None:
        name, version = no_wheel
        if name in builder.attempted:
            return None
        direct = [requirement for requirement in request.requirements if requirement_name(requirement) == name]
        pinned = [constraint for constraint in request.constraints if requirement_name(constraint) == name]
        if pinned:
            # A locked version without a wheel for this Python: a newer one in the declared range may have one.
            request.constraints = [c for c in request.constraints if requirement_name(c) != name]
            notes.append(f"{pinned[0]} from {declared.lock} has no wheel for this Python; the newest version your "
                         f"declarations allow was installed instead")
            return True
        if request.as_of and name not in request.fresh and \
                not any(requirement_specifier(r).startswith("==") for r in direct):
            request.fresh.append(name)  # that day's versions of this one package have no wheels: newer ones may
            return True
        specifiers = [requirement_specifier(requirement) for requirement in direct]
        specifiers += [requirement_specifier(constraint) for constraint in request.constraints
                       if requirement_name(constraint) == name]
        specifiers += re.findall(rf"depends on {re.escape(name)}((?:[<>=!~]=?[^\s,]+,?)+)", failure, re.IGNORECASE)
        if version:
            specifiers.append(f"=={version}")
        message = builder.build_sdist(name, specifiers)
        if message is None:
            return True
        failures.append(message)
        if direct:
            # Drop it and carry on, so that every package that cannot be installed is named, not just the first.
            request.requirements = [r for r in request.requirements if requirement_name(r) != name]
            return True
        return None
    if "pytest" in failure and not any(override.startswith("pytest") for override in request.overrides):
        request.overrides.append(f"pytest=={PYTEST_DEFAULT}")
        notes.append(f"your dependencies cannot be resolved together with pytest {PYTEST_RANGE} "
                     f"({explain_uv_failure(failure)}); the tests ran with pytest {PYTEST_DEFAULT} forced, which "
                     f"some of your pytest plugins may not support")
        return True
    if request.as_of:
        request.as_of = None
        notes.append("no lock file: dependencies were resolved with the newest versions that fit your "
                     "declarations (those of your commit's date cannot be installed together here)")
        return True
    if declared.lock and request.constraints and "pytest" not in failure:
        notes.append(f"the versions pinned in {declared.lock} cannot be installed here "
                     f"({explain_uv_failure(failure)}); they were resolved afresh from your declarations")
        request.constraints = []
        return True
    return None


def _no_wheel_package(stderr: str) -> tuple[str, str | None] | None:
    """(name, version or None) of the package uv could not find a wheel for."""
    match = re.search(rf"Because (?:all versions of |only )?({_NAME})(?:==(\S+?))?,? (?:has|have) no (?:usable )?wheels",
                      stderr)
    if match:
        return normalize_name(match.group(1)), match.group(2)
    match = re.search(r"Wheels are required for `([^`]+)`", stderr)
    if match:
        return normalize_name(match.group(1)), None
    return None


def explain_uv_failure(stderr: str) -> str:
    """Why uv failed, in uv's own words (its `cause:` lines name the clash), on one line."""
    no_wheel = _no_wheel_package(stderr)
    if no_wheel:
        return (f"no installable wheel for {no_wheel[0]}, and it could not be built from source")
    missing = re.search(rf"Because ({_NAME}) was not found in the package registry", stderr)
    if missing:
        return f"dependency {missing.group(1)} was not found in the package registry"
    lines = []
    for line in stderr.splitlines():
        text = line.strip().lstrip("×╰─▶ ").strip()
        if not text or text.startswith(("Using Python", "hint:")):
            continue
        lines.append(text.removeprefix("error:").removeprefix("cause:").strip())
    if lines:
        return ("installing the dependencies failed: " + " ".join(lines))[:800]
    return "installing the dependencies failed (uv gave no reason)"


class _UvFailed(Exception):
    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


def _run_uv(args: list[str], *, cache_dir: Path, deadline: float, cwd: Path | None = None) -> str:
    done = run_tool([uv_binary(), *args], env=registries.uv_env(cache_dir), cwd=cwd or "/", deadline=deadline,
                    what="installing the dependencies")
    if done.returncode != 0:
        raise _UvFailed(done.stderr)
    return done.stdout


def _compile_bytecode(venv_dir: Path, python: Path = SYSTEM_PYTHON) -> None:
    """Byte-compile the venv with its own interpreter (-S: no .pth file of any installed package runs here)."""
    for site_packages in venv_dir.glob("lib/python3*/site-packages"):
        subprocess.run([str(python), "-I", "-S", "-m", "compileall", "-q", "-j", "0", str(site_packages)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
                       env={"PATH": "/usr/bin:/bin"}, cwd="/")


def installed_packages(venv_dir: Path) -> list[str]:
    """"name==version" for every distribution in the venv, read from metadata files (no code runs)."""
    found = set()
    for site_packages in venv_dir.glob("lib/python3*/site-packages"):
        for distribution in importlib.metadata.distributions(path=[str(site_packages)]):
            name = distribution.metadata["Name"]
            if name:
                found.add(f"{normalize_name(name)}=={distribution.version}")
    return sorted(found)


# ---------------------------------------------------------------- building from source, in the sandbox

class _Builder:
    """Builds wheels from sdists, and reads setup.py projects' metadata, in the sandbox with no network.

    Build environments (the backend's requirements, wheels only) are kept in `shared_dir`, built wheels in the
    service-owned cache, both keyed by what went into them: an sdist from the registry builds the same for every
    learner, and no learner file is part of either.
    """

    def __init__(self, *, cache_dir: Path, shared_dir: Path, build_dir: Path, unsafe_no_sandbox: bool,
                 deadline: float, python: Path = SYSTEM_PYTHON, python_home: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.shared_dir = shared_dir
        self.build_dir = build_dir
        self.unsafe_no_sandbox = unsafe_no_sandbox
        self.deadline = deadline
        self.python = python
        self.python_home = python_home
        # Wheels built for another Python are kept apart: the cache is looked up by name and version only.
        self.wheel_dir = cache_dir / ("built-wheels" if python == SYSTEM_PYTHON else
                                      f"built-wheels-{hashlib.sha256(str(python).encode()).hexdigest()[:12]}")
        self.attempted: set[str] = set()
        self.built: list[str] = []
        self.notes: list[str] = []

    def build_sdist(self, name: str, specifiers: list[str]) -> str | None:
        """Build `name`'s sdist into the wheel cache; None when done, else why it could not be."""
        self.attempted.add(name)
        try:
            release = _pick_sdist(name, specifiers)
            cached = self._cached_wheel(release)
            if cached is None:
                archive = self._download(release)
                requires = _sdist_build_requires(archive)
                cached = self._build_wheel(release, archive, requires)
        except _BuildFailed as failed:
            return f"{name} has no wheel and could not be built from source: {failed}"
        self.built.append(f"{release.name}=={release.version}")
        self.notes.append(f"{release.name} {release.version} has no wheel; it was built from source in the sandbox")
        return None

    def project_requirements(self, project_dir: Path) -> tuple[list[str], str | None]:
        """The learner's setup.py-only project's dependencies (and test extras), from metadata built in the
        sandbox: ([requirements], None), or ([], why it could not be read)."""
        try:
            requires = _project_build_requires(project_dir)
            environment = self._build_environment(requires)
            metadata = self._sandboxed("metadata", environment, source=project_dir, name="project",
                                       result="METADATA", max_bytes=MAX_METADATA_BYTES)
        except _BuildFailed as failed:
            return [], f"setup.py: the project's dependencies could not be read: {failed}"
        return requirements_from_metadata(metadata.decode("utf-8", errors="replace")), None

    def cached_wheels(self) -> set[str]:
        """"name==version" of every wheel built from source so far, by any assessment."""
        found = set()
        for wheel in self.wheel_dir.glob("*.whl") if self.wheel_dir.is_dir() else ():
            try:
                name, version, _build, _tags = parse_wheel_filename(wheel.name)
            except InvalidWheelFilename:
                continue
            found.add(f"{canonicalize_name(name)}=={version}")
        return found

    def _cached_wheel(self, release: "_Release") -> Path | None:
        """A wheel built earlier from this very sdist (the folder is flat: uv's --find-links reads one level)."""
        if not self.wheel_dir.is_dir():
            return None
        for wheel in sorted(self.wheel_dir.glob("*.whl")):
            try:
                name, version, _build, _tags = parse_wheel_filename(wheel.name)
            except InvalidWheelFilename:
                continue
            source = wheel.with_name(wheel.name + ".source")
            if canonicalize_name(name) == canonicalize_name(release.name) and version == Version(release.version) \
                    and source.is_file() and source.read_text().strip() == release.sha256:
                return wheel
        return None

    def _download(self, release: "_Release") -> Path:
        self.build_dir.mkdir(parents=True, exist_ok=True)
        target = self.build_dir / release.filename
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(release.url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, \
                    target.open("wb") as sink:
                size = 0
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                    if size > MAX_SDIST_BYTES:
                        raise _BuildFailed(f"its sdist is larger than {MAX_SDIST_BYTES // (1 << 20)} MB")
                    digest.update(chunk)
                    sink.write(chunk)
        except OSError as error:
            raise _BuildFailed(f"its sdist could not be downloaded ({error})") from None
        if release.sha256 and digest.hexdigest() != release.sha256:
            raise _BuildFailed("its sdist does not match the registry's checksum")
        return target

    def _build_environment(self, requires: list[str]) -> Path:
        """A venv with `build` and the backend's requirements, wheels only, kept like any other by its versions."""
        request = _Request(requirements=sorted({*requires, "build"}), constraints=[], overrides=[],
                           find_links=self.wheel_dir, python=self.python)
        try:
            pinned, failure = _resolve(request, cache_dir=self.cache_dir, deadline=self.deadline)
            if failure is not None:
                raise _BuildFailed(f"its build requirements ({', '.join(requires)}) could not be installed: "
                                   f"{explain_uv_failure(failure)}")
            return VenvCache(self.shared_dir / "venvs").get(
                pinned, lambda target: _create_venv(target, pinned, request, cache_dir=self.cache_dir,
                                                    deadline=self.deadline), python=self.python)
        except EnvironmentBuildError as error:
            raise _BuildFailed(str(error)) from None

    def _build_wheel(self, release: "_Release", archive: Path, requires: list[str]) -> Path:
        environment = self._build_environment(requires)
        data = self._sandboxed("wheel", environment, source=archive, name=release.name, result=".whl",
                               max_bytes=MAX_WHEEL_BYTES)
        wheel_name, data = data
        try:
            name, version, _build, _tags = parse_wheel_filename(wheel_name)
        except InvalidWheelFilename:
            raise _BuildFailed(f"the build wrote {wheel_name!r}, which is not a wheel") from None
        if canonicalize_name(name) != canonicalize_name(release.name) or version != Version(release.version):
            raise _BuildFailed(f"the build wrote a wheel for {name} {version}, not {release.name} {release.version}")
        self.wheel_dir.mkdir(parents=True, exist_ok=True)
        scratch = self.wheel_dir / f".{wheel_name}.partial"
        scratch.write_bytes(data)
        try:
            with zipfile.ZipFile(scratch) as wheel:
                wheel.testzip()
        except (zipfile.BadZipFile, OSError):
            scratch.unlink(missing_ok=True)
            raise _BuildFailed("the built wheel is not a valid zip file") from None
        target = self.wheel_dir / wheel_name
        target.with_name(wheel_name + ".source").write_text(release.sha256 + "\n")
        scratch.replace(target)  # atomic: another worker's uv never sees half a wheel
        return target

    def _sandboxed(self, mode: str, environment: Path, *, source: Path, name: str, result: str, max_bytes: int):
        """Run the build script in the sandbox and read back its one result file (a wheel or METADATA)."""
        self.build_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.build_dir, 0o711)
        work = Path(tempfile.mkdtemp(prefix=f"build-{re.sub(r'[^a-z0-9-]', '', name)}-", dir=self.build_dir))
        os.chmod(work, 0o711)
        control = work / "control"
        control.mkdir()
        script = control / "build.py"
        script.write_text(importlib.resources.files("assessor.engine.toolchains.python")
                          .joinpath("sandboxed_build.py").read_text())
        os.chmod(control, 0o755)
        os.chmod(script, 0o644)
        area = work / "area"
        limits = replace(BUILD_LIMITS, wall_seconds=max(10.0, min(BUILD_LIMITS.wall_seconds,
                                                                   self.deadline - time.monotonic())))
        try:
            with size_capped_dir(area, limits.workdir_mb):
                out_dir = area / "out"
                out_dir.mkdir()
                if source.is_dir():
                    inside = area / "project"
                    shutil.copytree(source, inside, symlinks=True, ignore=shutil.ignore_patterns(".git"))
                else:
                    inside = area / source.name
                    shutil.copyfile(source, inside)
                try:
                    run = run_sandboxed([str(environment / "bin" / "python"), "-I", str(script), mode, str(inside),
                                         str(out_dir)], workdir=area, venv=environment, limits=limits,
                                        readonly_binds=(control, *([self.python_home] if self.python_home else [])),
                                        unsafe_no_sandbox=self.unsafe_no_sandbox,
                                        env={"TMPDIR": "/tmp", "PIP_NO_INDEX": "1",
                                             **interpreter_env(self.python_home)})
                except SandboxError as error:
                    raise _BuildFailed(str(error)) from None
                if run.killed_by or run.exit_code != 0:
                    raise _BuildFailed(_build_reason(run))
                return _read_output(out_dir, result, max_bytes)
        finally:
            shutil.rmtree(work, ignore_errors=True)


class _BuildFailed(Exception):
    """Why one package (or the project's metadata) could not be built; a one-line message."""


@dataclass(frozen=True)
class _Release:
    name: str
    version: str
    filename: str
    url: str
    sha256: str


def index_urls() -> list[str]:
    """The package indexes the operator configured for uv, in uv's order of priority (UV_INDEX first)."""
    extra = os.environ.get("UV_INDEX", "").split()
    default = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or DEFAULT_INDEX
    return [url.split("=", 1)[-1].rstrip("/") for url in [*extra, default] if url]


def _file_list(name: str) -> tuple[str, dict]:
    """(URL, the registry's JSON file list) of `name` from the first configured index that has it."""
    problem = "no index has it"
    for index in index_urls():
        url = f"{index}/{urllib.parse.quote(canonicalize_name(name))}/"
        request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        try:
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                return url, json.loads(response.read(32 * 1024 * 1024))
        except (OSError, ValueError) as error:
            problem = str(error)
    raise _BuildFailed(f"the registry's file list could not be read ({problem})")


def _pick_sdist(name: str, specifiers: list[str]) -> _Release:
    """The newest release of `name` with an sdist that every specifier allows (from the registry's JSON API)."""
    url, data = _file_list(name)
    wanted = SpecifierSet()
    for text in specifiers:
        try:
            wanted &= SpecifierSet(text.rstrip(","))
        except InvalidSpecifier:
            continue
    candidates = []
    for entry in data.get("files", []):
        filename = entry.get("filename", "")
        if entry.get("yanked") or not filename.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz")):
            continue
        version = _sdist_version(filename, name)
        if version is None or not wanted.contains(version, prereleases=bool(wanted) and version.is_prerelease):
            continue
        sha256 = (entry.get("hashes") or {}).get("sha256", "")
        candidates.append((version, _Release(canonicalize_name(name), str(version), filename,
                                             urllib.parse.urljoin(url, entry.get("url", "")), sha256)))
    if not candidates:
        raise _BuildFailed(f"no source release matches {wanted or 'any version'}")
    return max(candidates, key=lambda item: item[0])[1]


def _sdist_version(filename: str, name: str) -> Version | None:
    stem = re.sub(r"\.(tar\.gz|tar\.bz2|tgz|zip)$", "", filename)
    prefix = re.compile(rf"^{'[-_.]'.join(re.escape(part) for part in re.split(r'[-_.]+', name))}-", re.IGNORECASE)
    match = prefix.match(stem)
    if not match:
        return None
    try:
        return Version(stem[match.end():])
    except InvalidVersion:
        return None


def _sdist_build_requires(archive: Path) -> list[str]:
    """[build-system].requires from the sdist's pyproject.toml, read as data (nothing is unpacked or run)."""
    text = None
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                names = [n for n in bundle.namelist() if n.count("/") == 1 and n.endswith("/pyproject.toml")]
                if names and bundle.getinfo(names[0]).file_size < MAX_METADATA_BYTES:
                    text = bundle.read(names[0]).decode("utf-8", errors="replace")
        else:
            with tarfile.open(archive) as bundle:
                for member in bundle:
                    if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/pyproject.toml") \
                            and member.size < MAX_METADATA_BYTES:
                        text = bundle.extractfile(member).read().decode("utf-8", errors="replace")
                        break
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        raise _BuildFailed("its sdist is not a readable archive") from None
    return _build_requires(text)


def _project_build_requires(project_dir: Path) -> list[str]:
    path = project_dir / "pyproject.toml"
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() and not path.is_symlink() else None
    return _build_requires(text)


def _build_requires(pyproject_text: str | None) -> list[str]:
    if pyproject_text:
        try:
            system = tomllib.loads(pyproject_text).get("build-system", {})
        except tomllib.TOMLDecodeError:
            system = {}
        requires = system.get("requires") if isinstance(system, dict) else None
        if isinstance(requires, list) and all(isinstance(item, str) for item in requires):
            accepted = [check_requirement(item) for item in requires]
            if None in accepted:
                raise _BuildFailed("its build requirements name something other than registry packages")
            backend = str(system.get("build-backend", ""))
            extra = ["wheel"] if backend.startswith("setuptools") or not backend else []
            return [*accepted, *extra]
    return list(DEFAULT_BUILD_REQUIRES)


# The same text is printed by sandboxed_build.py, which imports nothing of the service.
BUILD_FAILED_MARKER = "assessor-build: the build backend failed:"
_TRACEBACK_FRAMING = re.compile(r"^(Traceback |File \"|\^+$|~+$|During handling|The above exception|\*|ERROR Backend)")


def _build_reason(run) -> str:
    """The backend's last words before it failed: an exception line, or what setup.py printed on its way out."""
    if run.killed_by:
        return f"the build was stopped by the {run.killed_by.replace('_', ' ')} limit"
    lines = [line.strip() for line in run.output.splitlines() if line.strip()]
    marked = next((index for index, line in enumerate(lines) if line.startswith(BUILD_FAILED_MARKER)), len(lines))
    before = [line for line in lines[:marked] if not _TRACEBACK_FRAMING.match(line)]
    return (before[-1] if before else f"exit code {run.exit_code}")[:300]


def _read_output(out_dir: Path, result: str, max_bytes: int):
    """METADATA's bytes, or (wheel file name, bytes) for the one wheel the build wrote; links are never followed."""
    from assessor.engine.measure.resultfiles import ResultFileError, read_result_file

    try:
        if result == ".whl":
            names = [entry.name for entry in os.scandir(out_dir) if entry.name.endswith(".whl")]
            if len(names) != 1:
                raise _BuildFailed(f"the build wrote {len(names)} wheels instead of one")
            return names[0], read_result_file(out_dir, names[0], max_bytes)
        return read_result_file(out_dir, result, max_bytes)
    except ResultFileError as error:
        raise _BuildFailed(str(error)) from None


def requirements_from_metadata(text: str) -> list[str]:
    """Requires-Dist of a METADATA file: the runtime ones and those of the test/dev extras, markers resolved for
    this interpreter; anything that is not a registry package is left out."""
    message = Parser().parsestr(text)
    found = []
    for raw in message.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(raw)
        except InvalidRequirement:
            continue
        if requirement.url:
            continue
        marker = requirement.marker
        if marker is not None:
            try:
                wanted = any(marker.evaluate({"extra": extra}) for extra in ("", *TEST_EXTRAS))
            except (InvalidMarker, ValueError):
                wanted = False
            if not wanted:
                continue
        text_form = requirement.name + (f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else "") \
            + str(requirement.specifier)
        if check_requirement(text_form):
            found.append(text_form)
    return list(dict.fromkeys(found))

