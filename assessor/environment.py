"""Build a fresh per-assessment virtualenv from the learner's declared dependencies: wheels only, via uv."""

import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from assessor.errors import EnvironmentBuildError

# The interpreter learner venvs are built from: it must be readable by the unprivileged sandbox uid
# (a Python under /root is not), and it is the system's, not one the learner chose.
SYSTEM_PYTHON = Path("/usr/bin/python3")
# The test runner the service drives; pinned so its options and reports behave as the service expects.
PYTEST_VERSION = "9.2.0"
TEST_EXTRAS = ("test", "tests", "testing", "dev")
ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".egg", ".tar")
MAX_DECLARATION_BYTES = 1024 * 1024
# Operator settings passed through to uv: which registry to use and how to reach it, never the learner's.
PASSTHROUGH_ENV = (
    "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_HTTP_TIMEOUT", "UV_NATIVE_TLS",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
    "no_proxy",
)

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION_CLAUSE = r"(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
_REQUIREMENT = re.compile(
    rf"^\s*(?P<name>{_NAME})\s*(?:\[\s*(?P<extras>{_NAME}(?:\s*,\s*{_NAME})*)?\s*\])?\s*"
    rf"(?P<specs>\(?\s*{_VERSION_CLAUSE}(?:\s*,\s*{_VERSION_CLAUSE})*\s*\)?)?\s*"
    rf"(?:;(?P<marker>[A-Za-z0-9_ .<>=!~\"'(),*+-]*))?\s*$"
)
_OPTION_WITH_VALUE = re.compile(r"^(-r|--requirement|-c|--constraint|-e|--editable)(?:\s*=\s*|\s+|(?<=^-[rce]))(.+)$")


@dataclass(frozen=True)
class LearnerRequirements:
    """What the learner's files ask for, after refusing anything that is not a plain registry name."""

    requirements: list[str]
    sources: list[str]
    problems: list[str]


@dataclass(frozen=True)
class Environment:
    """A built virtualenv ready to be bound read-only into the sandbox."""

    venv: Path
    python: Path
    requirements: list[str]
    installed: list[str]
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "venv": str(self.venv), "python": str(self.python), "requirements": list(self.requirements),
            "installed": list(self.installed), "problems": list(self.problems), "seconds": self.seconds,
        }


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_requirement(text: str) -> str | None:
    """The requirement if it names a registry package (name, extras, versions, markers), else None."""
    head = text.split(";", 1)[0].strip().lower()
    if "://" in text or "@" in head or head.endswith(ARCHIVE_SUFFIXES):
        return None  # URLs and file names would make the installer fetch or build something we did not vet
    match = _REQUIREMENT.match(text)
    return text.strip() if match else None


def requirement_name(text: str) -> str:
    match = _REQUIREMENT.match(text)
    return normalize_name(match.group("name")) if match else ""


def requirement_extras(text: str) -> list[str]:
    match = _REQUIREMENT.match(text)
    if not match or not match.group("extras"):
        return []
    return [normalize_name(extra.strip()) for extra in match.group("extras").split(",")]


def read_requirements(project_dir: Path) -> LearnerRequirements:
    """Dependencies from pyproject.toml ([project] deps, test/dev extras and groups) and requirements*.txt."""
    requirements: list[str] = []
    sources: list[str] = []
    problems: list[str] = []
    pyproject = project_dir / "pyproject.toml"
    if _is_plain_file(pyproject):
        found = _from_pyproject(pyproject, problems)
        if found:
            sources.append("pyproject.toml")
            requirements += found
    for path in sorted(project_dir.glob("requirements*.txt")):
        if not _is_plain_file(path):
            continue
        sources.append(path.name)
        requirements += _from_requirements_file(path, project_dir, problems, seen=set())
    unique = list(dict.fromkeys(requirements))
    return LearnerRequirements(requirements=unique, sources=sources, problems=problems)


def _is_plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _read_declaration(path: Path, problems: list[str]) -> str | None:
    if path.stat().st_size > MAX_DECLARATION_BYTES:
        problems.append(f"{path.name}: larger than {MAX_DECLARATION_BYTES} bytes, ignored")
        return None
    return path.read_text(encoding="utf-8", errors="replace")


def _from_pyproject(path: Path, problems: list[str]) -> list[str]:
    text = _read_declaration(path, problems)
    if text is None:
        return []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        problems.append(f"pyproject.toml is not valid TOML ({error}); its dependencies were not read")
        return []
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    own_name = normalize_name(str(project.get("name", "")))
    extras = project.get("optional-dependencies") if isinstance(project.get("optional-dependencies"), dict) else {}
    groups = data.get("dependency-groups") if isinstance(data.get("dependency-groups"), dict) else {}
    wanted: list[object] = list(project.get("dependencies") or [])
    extras_by_name = {normalize_name(name): value for name, value in extras.items()}
    for name in TEST_EXTRAS:
        wanted += list(extras_by_name.get(name) or [])
    groups_by_name = {normalize_name(name): value for name, value in groups.items()}
    for name in TEST_EXTRAS:
        wanted += _group_entries(groups_by_name, name, problems, seen=set())
    return _accept(wanted, own_name, extras_by_name, "pyproject.toml", problems)


def _group_entries(groups: dict, name: str, problems: list[str], seen: set[str]) -> list[object]:
    """A PEP 735 dependency group's entries, following include-group references once each."""
    if name in seen or name not in groups:
        return []
    seen.add(name)
    entries: list[object] = []
    for entry in groups[name] or []:
        if isinstance(entry, dict) and "include-group" in entry:
            entries += _group_entries(groups, normalize_name(str(entry["include-group"])), problems, seen)
        else:
            entries.append(entry)
    return entries


def _accept(wanted: list[object], own_name: str, extras: dict, origin: str, problems: list[str],
            expanding: frozenset[str] = frozenset()) -> list[str]:
    accepted: list[str] = []
    for entry in wanted:
        if not isinstance(entry, str):
            problems.append(f"{origin}: ignored a dependency entry that is not a string: {entry!r}"[:200])
            continue
        requirement = check_requirement(entry)
        if requirement is None:
            problems.append(f"{origin}: refused {entry.strip()!r}: only package names from the registry are "
                            f"installed (no URLs, paths or VCS)"[:300])
            continue
        if own_name and requirement_name(requirement) == own_name:
            # "myproject[test]" inside myproject's own extras: expand it rather than building the project.
            for extra in requirement_extras(requirement):
                if extra not in expanding:
                    accepted += _accept(list(extras.get(extra) or []), own_name, extras, origin, problems,
                                        expanding | {extra})
            continue
        accepted.append(requirement)
    return accepted


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = []
    for raw in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def _from_requirements_file(path: Path, root: Path, problems: list[str], seen: set[Path]) -> list[str]:
    resolved = path.resolve()
    if resolved in seen:
        return []
    seen.add(resolved)
    text = _read_declaration(path, problems)
    if text is None:
        return []
    accepted: list[str] = []
    for line in _logical_lines(text):
        line = re.sub(r"\s--hash[=\s]\S+", "", f" {line}").strip()  # hashes pin artefacts of a registry name
        if line.startswith("-"):
            accepted += _requirements_option(line, path, root, problems, seen)
            continue
        requirement = check_requirement(line)
        if requirement is None:
            problems.append(f"{path.name}: refused {line!r}: only package names from the registry are installed "
                            f"(no URLs, paths, VCS or wheel files)"[:300])
            continue
        accepted.append(requirement)
    return accepted


def _requirements_option(line: str, path: Path, root: Path, problems: list[str], seen: set[Path]) -> list[str]:
    match = _OPTION_WITH_VALUE.match(line)
    if match and match.group(1) in ("-r", "--requirement"):
        target = (path.parent / match.group(2).strip()).resolve()
        if target.parent != root.resolve() and root.resolve() not in target.parents:
            problems.append(f"{path.name}: refused {line!r}: included files must stay inside the project")
            return []
        if not _is_plain_file(target):
            problems.append(f"{path.name}: {line!r}: no such requirements file in the project")
            return []
        return _from_requirements_file(target, root, problems, seen)
    if match and match.group(1) in ("-e", "--editable"):
        problems.append(f"{path.name}: skipped {line!r}: the project's own code is put on the path, never built "
                        f"or installed by the service")
        return []
    option = line.split()[0].split("=")[0]
    problems.append(f"{path.name}: ignored option {option!r}: dependencies come by name from the registry "
                    f"the service is configured with")
    return []


def service_pins() -> list[str]:
    """The test tooling the service drives, forced over whatever the learner pinned."""
    return [f"coverage=={importlib.metadata.version('coverage')}", f"pytest=={PYTEST_VERSION}"]


def uv_binary() -> str:
    try:
        import uv
        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise EnvironmentBuildError("uv is not installed in the service environment") from None
        return found


def build_environment(project_dir: Path, venv_dir: Path, *, cache_dir: Path,
                      timeout_seconds: float = 300) -> Environment:
    """A fresh virtualenv at `venv_dir` with the learner's dependencies plus pytest and coverage.

    Wheels only (no learner-chosen build script runs), files copied out of the service-owned cache
    (so nothing in one job's venv shares an inode with what another job reads), learner config ignored.
    """
    started = time.monotonic()
    declared = read_requirements(project_dir)
    if not SYSTEM_PYTHON.exists():
        raise EnvironmentBuildError(f"{SYSTEM_PYTHON} is missing: learner environments are built from it")
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(cache_dir, 0o700)
    if venv_dir.exists():
        shutil.rmtree(venv_dir)
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="assessor-uv-") as scratch:
        scratch_dir = Path(scratch)
        requirements_file = scratch_dir / "requirements.txt"
        overrides_file = scratch_dir / "overrides.txt"
        requirements_file.write_text("".join(f"{line}\n" for line in [*declared.requirements, *service_pins()]))
        overrides_file.write_text("".join(f"{line}\n" for line in service_pins()))
        deadline = started + timeout_seconds
        common = ["--no-config", "--cache-dir", str(cache_dir), "--no-python-downloads", "--quiet"]
        _run_uv(["venv", *common, "--python", str(SYSTEM_PYTHON), str(venv_dir)],
                cwd=scratch_dir, cache_dir=cache_dir, deadline=deadline)
        python = venv_dir / "bin" / "python"
        _run_uv(["pip", "install", *common, "--python", str(python), "--only-binary", ":all:",
                 "--link-mode", "copy", "--compile-bytecode", "--overrides", str(overrides_file),
                 "-r", str(requirements_file)],
                cwd=scratch_dir, cache_dir=cache_dir, deadline=deadline)
    _open_to_sandbox(venv_dir)
    return Environment(
        venv=venv_dir, python=python, requirements=[*declared.requirements, *service_pins()],
        installed=installed_packages(venv_dir), problems=list(declared.problems),
        seconds=round(time.monotonic() - started, 3),
    )


def _run_uv(args: list[str], *, cwd: Path, cache_dir: Path, deadline: float) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cache_dir), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"}
    env.update({name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ})
    process = subprocess.Popen([uv_binary(), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True)
    try:
        stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise EnvironmentBuildError("installing the dependencies took too long and was stopped") from None
    if process.returncode != 0:
        raise EnvironmentBuildError(explain_uv_failure(stderr))
    return stdout


def explain_uv_failure(stderr: str) -> str:
    """One line saying why uv failed, naming the package when uv does."""
    no_wheel = re.search(r"Wheels are required for `([^`]+)`", stderr) or re.search(
        rf"Because (?:all versions of |only )?({_NAME})\S* has no (?:usable )?wheels", stderr)
    if no_wheel:
        return (f"no installable wheel for {no_wheel.group(1)}: the service installs wheels only, never building "
                f"from source")
    missing = re.search(rf"Because ({_NAME}) was not found in the package registry", stderr)
    if missing:
        return f"dependency {missing.group(1)} was not found in the package registry"
    for line in stderr.splitlines():
        line = line.strip().removeprefix("error:").removeprefix("cause:").strip()
        if line and not line.startswith("Using Python"):
            return f"installing the dependencies failed: {line}"[:400]
    return "installing the dependencies failed (uv gave no reason)"


def _open_to_sandbox(venv_dir: Path) -> None:
    """Make the venv readable (never writable) by the unprivileged sandbox uid, whatever the umask was."""
    for dirpath, dirnames, filenames in os.walk(venv_dir):
        os.chmod(dirpath, os.stat(dirpath).st_mode & 0o7777 | 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode & 0o7777
            os.chmod(path, (mode | 0o644 | (0o111 if mode & 0o100 else 0)) & ~0o022)


def installed_packages(venv_dir: Path) -> list[str]:
    """"name==version" for every distribution in the venv, read from metadata files (no code runs)."""
    found = set()
    for site_packages in venv_dir.glob("lib/python3*/site-packages"):
        for distribution in importlib.metadata.distributions(path=[str(site_packages)]):
            name = distribution.metadata["Name"]
            if name:
                found.add(f"{normalize_name(name)}=={distribution.version}")
    return sorted(found)
