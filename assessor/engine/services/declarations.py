"""Read how a project already declares the services and environment its tests need: GitHub Actions workflows,
docker compose files and example .env files. Data only: nothing here runs or fetches anything."""

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from dotenv import dotenv_values
from dotenv.variables import parse_variables

MAX_FILE_BYTES = 512 * 1024
MAX_WORKFLOWS = 20
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml",
                 "docker-compose.override.yml", "docker-compose.override.yaml", "docker-compose.test.yml",
                 "docker-compose.test.yaml", "docker-compose.ci.yml", "docker-compose.ci.yaml")
DOTENV_FILES = (".env.example", ".env.sample", ".env.template", ".env.dist", ".env.test", ".env.testing",
                ".env.ci", "example.env", "sample.env", ".env")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_COMPOSE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class ContainerService:
    """A service container as a workflow or compose file declares it."""

    name: str
    image: str
    env: dict[str, str]
    ports: tuple[tuple[int | None, int], ...]  # (published port or None, container port)
    command: str
    source: str


@dataclass(frozen=True)
class WorkflowStep:
    name: str
    run: str
    env: dict[str, str]
    working_directory: str | None = None  # relative to the repository, as the step runs


@dataclass(frozen=True)
class WorkflowJob:
    source: str
    services: tuple[ContainerService, ...]
    env: dict[str, str]
    steps: tuple[WorkflowStep, ...]


@dataclass
class Declarations:
    """Everything read, before deciding what to start."""

    jobs: list[WorkflowJob] = field(default_factory=list)
    compose_services: list[ContainerService] = field(default_factory=list)
    compose_app_env: dict[str, str] = field(default_factory=dict)
    compose_source: str | None = None
    dotenv: dict[str, str] = field(default_factory=dict)
    dotenv_source: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TestStep:
    """The CI step that runs the tests, as the toolchain recognised it."""

    __test__ = False
    job: WorkflowJob
    run: str
    env: dict[str, str]
    source: str
    working_directory: str | None = None


def read_declarations(checkout: Path, root: Path) -> Declarations:
    """Workflows from the repository, compose and .env files from the repository and the project folder."""
    found = Declarations()
    workflows = checkout / ".github" / "workflows"
    if workflows.is_dir() and not workflows.is_symlink():
        files = sorted(path for path in workflows.iterdir() if path.suffix in (".yml", ".yaml"))
        for path in files[:MAX_WORKFLOWS]:
            found.jobs += _workflow_jobs(path, checkout, found.notes)
    folders = [checkout] + ([root] if root != checkout else [])
    for folder in folders:
        for name in COMPOSE_FILES:
            path = folder / name
            data = _yaml(path, checkout, found.notes)
            if isinstance(data, dict):
                _read_compose(data, path, checkout, found)
    for folder in reversed(folders):
        for name in DOTENV_FILES:
            path = folder / name
            if _readable(path):
                values = parse_dotenv(path.read_text(encoding="utf-8", errors="replace"))
                for key, value in values.items():
                    found.dotenv.setdefault(key, value)
                if values and found.dotenv_source is None:
                    found.dotenv_source = _label(path, checkout)
    return found


def choose_test_step(declarations: Declarations, recognise: Callable[[str, str | None], bool]) -> TestStep | None:
    """The first workflow step whose `run:` (in its working directory) the toolchain recognises as running the
    tests."""
    for job in declarations.jobs:
        for step in job.steps:
            if step.run and recognise(step.run, step.working_directory):
                name = f", step {step.name!r}" if step.name else ""
                return TestStep(job=job, run=step.run, env={**job.env, **step.env}, source=f"{job.source}{name}",
                                working_directory=step.working_directory)
    return None


# ---------------------------------------------------------------- GitHub Actions

def _workflow_jobs(path: Path, checkout: Path, notes: list[str]) -> list[WorkflowJob]:
    data = _yaml(path, checkout, notes)
    if not isinstance(data, dict):
        return []
    label = _label(path, checkout)
    workflow_env = _env_mapping(data.get("env"))
    workflow_folder = _run_folder(data)
    jobs = []
    for job_id, job in (data.get("jobs") or {}).items() if isinstance(data.get("jobs"), dict) else []:
        if not isinstance(job, dict):
            continue
        env = {**workflow_env, **_env_mapping(job.get("env"))}
        services = []
        for name, service in (job.get("services") or {}).items() if isinstance(job.get("services"), dict) else []:
            if isinstance(service, str):
                service = {"image": service}
            if isinstance(service, dict) and isinstance(service.get("image"), str):
                services.append(ContainerService(
                    name=str(name), image=service["image"], env=_env_mapping(service.get("env")),
                    ports=_ports(service.get("ports")), command="", source=f"{label} job {job_id!r} service {name!r}",
                ))
        steps = []
        job_folder = _run_folder(job) or workflow_folder
        for step in job.get("steps") or [] if isinstance(job.get("steps"), list) else []:
            if isinstance(step, dict) and isinstance(step.get("run"), str):
                folder = step.get("working-directory") if isinstance(step.get("working-directory"), str) else None
                steps.append(WorkflowStep(name=str(step.get("name") or ""), run=step["run"],
                                          env=_env_mapping(step.get("env")), working_directory=folder or job_folder))
        jobs.append(WorkflowJob(source=f"{label} job {job_id!r}", services=tuple(services), env=env,
                                steps=tuple(steps)))
    return jobs


def _run_folder(table: dict) -> str | None:
    """`defaults.run.working-directory` of a workflow or job."""
    defaults = table.get("defaults") if isinstance(table.get("defaults"), dict) else {}
    run = defaults.get("run") if isinstance(defaults.get("run"), dict) else {}
    folder = run.get("working-directory")
    return folder if isinstance(folder, str) and "${{" not in folder else None


def resolve_expressions(env: dict[str, str], services: tuple[ContainerService, ...],
                        notes: list[str], source: str) -> dict[str, str]:
    """Workflow `${{ }}` expressions: a service's mapped port and `env.X` are known here; secrets are not, so a
    value that needs one is left out (with a note)."""
    resolved = {}
    unresolved = []
    for key, value in env.items():
        def replace(match: re.Match) -> str:
            expression = match.group(1)
            port = re.fullmatch(r"job\.services\.([\w-]+)\.ports\[['\"]?(\d+)['\"]?\]", expression)
            if port and any(service.name == port.group(1) for service in services):
                return port.group(2)
            variable = re.fullmatch(r"env\.([A-Za-z_][A-Za-z0-9_]*)", expression)
            if variable and variable.group(1) in env and "${{" not in env[variable.group(1)]:
                return env[variable.group(1)]
            raise LookupError(expression)

        try:
            resolved[key] = _EXPRESSION.sub(replace, value)
        except LookupError:
            unresolved.append(key)
    if unresolved:
        notes.append(f"{source}: {', '.join(sorted(unresolved))} use{'s' if len(unresolved) == 1 else ''} "
                     f"workflow expressions (secrets, matrix) that are not available here; not set")
    return resolved


# ---------------------------------------------------------------- docker compose

def _read_compose(data: dict, path: Path, checkout: Path, found: Declarations) -> None:
    label = _label(path, checkout)
    services = data.get("services") if isinstance(data.get("services"), dict) else {}
    interpolation = {**found.dotenv, **parse_dotenv(_text_or_empty(path.parent / ".env"))}
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        env = {key: _interpolate(value, interpolation) for key, value in _env_mapping(service.get("environment")).items()}
        for env_file in _strings(service.get("env_file")):
            target = (path.parent / env_file)
            if _inside(target, checkout) and _readable(target):
                env = {**parse_dotenv(target.read_text(encoding="utf-8", errors="replace")), **env}
        image = _interpolate(str(service.get("image") or ""), interpolation)
        command = service.get("command")
        command_text = " ".join(map(str, command)) if isinstance(command, list) else str(command or "")
        declared = ContainerService(name=str(name), image=image, env=env, ports=_ports(service.get("ports")),
                                    command=command_text, source=f"{label} service {name!r}")
        if "build" in service or not image:
            for key, value in env.items():
                found.compose_app_env.setdefault(key, value)
            found.compose_source = found.compose_source or label
        found.compose_services = [s for s in found.compose_services if s.name != declared.name] + [declared]


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and $VAR, from the .env files in the repository (else the default)."""
    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(4)
        operator, default = match.group(2), match.group(3) or ""
        current = variables.get(name)
        if operator in (":-", "-") and (current is None or (operator == ":-" and current == "")):
            return default
        return current or ""

    return _COMPOSE_VARIABLE.sub(replace, value.replace("$$", "\x00")).replace("\x00", "$")


# ---------------------------------------------------------------- shared readers

def parse_dotenv(text: str) -> dict[str, str]:
    """A dotenv file's values as python-dotenv reads them (quotes, inline comments, `export`, escapes, multi-line
    values), with ${VAR} expanded from the file's own earlier values only: never from the worker's environment."""
    try:
        raw = dotenv_values(stream=io.StringIO(text), interpolate=False)
    except (ValueError, UnicodeError):
        return {}
    values: dict[str, str] = {}
    for key, value in raw.items():
        if value is None or not ENV_NAME.match(key):
            continue
        values[key] = "".join(atom.resolve(values) for atom in parse_variables(value))
    return values


def _env_mapping(value: object) -> dict[str, str]:
    """An env block as a mapping (`KEY: value`) or a list (`- KEY=value`); non-text values made text."""
    pairs: dict[str, str] = {}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = [str(item).partition("=")[::2] for item in value if isinstance(item, (str, int, float))]
    else:
        return {}
    for key, raw in items:
        key = str(key).strip()
        if not ENV_NAME.match(key) or raw is None or isinstance(raw, (dict, list)):
            continue
        pairs[key] = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
    return pairs


def _ports(value: object) -> tuple[tuple[int | None, int], ...]:
    """Port mappings: "5432", "54321:5432", "127.0.0.1:5432:5432/tcp", {published, target}."""
    mappings = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, dict):
            target, published = entry.get("target"), entry.get("published")
            if isinstance(target, int):
                mappings.append((int(published) if str(published).isdigit() else None, target))
            continue
        parts = str(entry).split("/")[0].split(":")
        numbers = [int(part) for part in parts if part.isdigit() and 0 < int(part) < 65536]
        if len(numbers) == 1 and len(parts) == 1:
            mappings.append((None, numbers[0]))
        elif len(numbers) >= 2:
            mappings.append((numbers[-2], numbers[-1]))
    return tuple(mappings)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [item if isinstance(item, str) else str(item.get("path", "")) for item in value
            if isinstance(item, (str, dict))] if isinstance(value, list) else []


def _yaml(path: Path, checkout: Path, notes: list[str]) -> object:
    if not _readable(path):
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as error:
        notes.append(f"{_label(path, checkout)} is not valid YAML ({type(error).__name__}); not read")
        return None
    except RecursionError:
        return None


def _readable(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_FILE_BYTES
    except OSError:
        return False


def _text_or_empty(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if _readable(path) else ""


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _label(path: Path, checkout: Path) -> str:
    try:
        return path.relative_to(checkout).as_posix()
    except ValueError:
        return path.name
