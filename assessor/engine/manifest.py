"""The learner's optional capstone manifest (`capstone.toml`, or `[tool.capstone]` in pyproject.toml): where the
project is, which toolchain, the test command, the services and environment the tests need."""

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MANIFEST_FILE = "capstone.toml"
MAX_MANIFEST_BYTES = 256 * 1024
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_ENV_VALUE = 4096
KNOWN_KEYS = frozenset({"root", "toolchain", "test", "services", "env"})
SERVICE_KEYS = frozenset({"port", "ports", "user", "password", "database", "version"})


@dataclass(frozen=True)
class ServiceRequest:
    """A service the manifest asks for, with the settings it gives (all optional)."""

    name: str
    ports: tuple[int, ...] = ()
    user: str | None = None
    password: str | None = None
    database: str | None = None


@dataclass(frozen=True)
class Manifest:
    """What the learner declared; `problems` says what was ignored and why (never an error that stops a run)."""

    source: str | None = None
    root: str | None = None
    toolchain: str | None = None
    test: str | None = None
    services: tuple[ServiceRequest, ...] | None = None  # None: not declared (other declarations are read)
    env: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def read_manifest(directory: Path, *, label_prefix: str = "") -> Manifest:
    """The manifest in `directory`: capstone.toml first, then [tool.capstone] in pyproject.toml."""
    for name, table_path in ((MANIFEST_FILE, ()), ("pyproject.toml", ("tool", "capstone"))):
        path = directory / name
        if not path.is_file() or path.is_symlink():
            continue
        label = f"{label_prefix}{name}" + (" [tool.capstone]" if table_path else "")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            return Manifest(source=label, problems=(f"{label}: larger than {MAX_MANIFEST_BYTES // 1024} KB, ignored",))
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
        except tomllib.TOMLDecodeError as error:
            if table_path:
                continue  # a broken pyproject.toml is reported by the toolchain that reads it
            return Manifest(source=label, problems=(f"{label}: not valid TOML ({error}); ignored",))
        for key in table_path:
            data = data.get(key) if isinstance(data, dict) else None
        if isinstance(data, dict):
            return parse_manifest(data, source=label)
    return Manifest()


def parse_manifest(data: dict, *, source: str) -> Manifest:
    problems: list[str] = []
    for key in sorted(set(data) - KNOWN_KEYS):
        problems.append(f"{source}: unknown field {key!r} ignored (known: {', '.join(sorted(KNOWN_KEYS))})")
    root = _text(data, "root", source, problems)
    if root is not None:
        parts = PurePosixPath(root).parts
        if root.startswith("/") or ".." in parts or "\\" in root or not parts:
            problems.append(f"{source}: root {root!r} must be a folder inside the repository; ignored")
            root = None
        else:
            root = PurePosixPath(root).as_posix()
    toolchain = _text(data, "toolchain", source, problems)
    test = _text(data, "test", source, problems)
    services = _services(data.get("services"), source, problems) if "services" in data else None
    env = env_table(data.get("env"), source, problems) if "env" in data else {}
    return Manifest(source=source, root=root, toolchain=toolchain.lower() if toolchain else None, test=test,
                    services=services, env=env, problems=tuple(problems))


def _text(data: dict, key: str, source: str, problems: list[str]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 2000:
        problems.append(f"{source}: {key} must be a short text; ignored")
        return None
    return value.strip()


def env_table(value: object, source: str, problems: list[str]) -> dict[str, str]:
    """Environment variables from a table; names and values that could not be passed safely are refused."""
    if not isinstance(value, dict):
        problems.append(f"{source}: env must be a table of NAME = \"value\"; ignored")
        return {}
    env = {}
    for name, raw in value.items():
        if not ENV_NAME.match(str(name)):
            problems.append(f"{source}: env name {str(name)[:60]!r} is not a valid variable name; ignored")
            continue
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if isinstance(raw, (int, float)):
            raw = str(raw)
        if not isinstance(raw, str) or "\x00" in raw or len(raw) > MAX_ENV_VALUE:
            problems.append(f"{source}: env {name} must be a short text; ignored")
            continue
        env[str(name)] = raw
    return env


def _services(value: object, source: str, problems: list[str]) -> tuple[ServiceRequest, ...]:
    """`services = ["postgresql", "redis"]`, or a table of tables with settings per service."""
    if isinstance(value, list):
        requests = []
        for item in value:
            if isinstance(item, str) and item.strip():
                requests.append(ServiceRequest(name=item.strip().lower()))
            else:
                problems.append(f"{source}: services entries must be names such as \"postgresql\"; {item!r} ignored")
        return tuple(requests)
    if isinstance(value, dict):
        requests = []
        for name, settings in value.items():
            if not isinstance(settings, dict):
                settings = {}
            for key in sorted(set(settings) - SERVICE_KEYS):
                problems.append(f"{source}: services.{name}: unknown field {key!r} ignored")
            ports = settings.get("ports", [settings["port"]] if "port" in settings else [])
            valid_ports = tuple(port for port in ports if isinstance(port, int) and not isinstance(port, bool)
                                and 1 <= port <= 65535) if isinstance(ports, list) else ()
            requests.append(ServiceRequest(
                name=str(name).strip().lower(), ports=valid_ports,
                user=_optional(settings, "user"), password=_optional(settings, "password"),
                database=_optional(settings, "database"),
            ))
        return tuple(requests)
    problems.append(f"{source}: services must be a list of names or a table; ignored")
    return ()


def _optional(settings: dict, key: str) -> str | None:
    value = settings.get(key)
    return value if isinstance(value, str) and value and len(value) <= 63 and "\x00" not in value else None


def merged(outer: Manifest, inner: Manifest) -> Manifest:
    """The repository-level manifest, completed by one in the project folder (the repository's wins)."""
    if inner.source is None:
        return outer
    if outer.source is None:
        return inner
    return Manifest(
        source=outer.source, root=outer.root or inner.root, toolchain=outer.toolchain or inner.toolchain,
        test=outer.test or inner.test, services=outer.services if outer.services is not None else inner.services,
        env={**inner.env, **outer.env}, problems=outer.problems + inner.problems,
    )
