"""What a Python project asks to have installed, read from every common declaration without running any of it."""

import configparser
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MAX_DECLARATION_BYTES = 1024 * 1024
MAX_LOCK_BYTES = 8 * 1024 * 1024
# Extras and groups that hold what the tests need (a project's "dev" group usually holds pytest).
TEST_EXTRAS = ("test", "tests", "testing", "dev", "develop", "development", "ci")
# requirements/<name>.txt files worth reading in a requirements/ folder (production-only files are not).
REQUIREMENTS_DIR_NAMES = re.compile(r"^(base|common|core|main|requirements|test|tests|testing|dev|develop|"
                                    r"development|local|ci)([-_].*)?\.(txt|in)$", re.IGNORECASE)
ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".egg", ".tar")

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION_CLAUSE = r"(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
_REQUIREMENT = re.compile(
    rf"^\s*(?P<name>{_NAME})\s*(?:\[\s*(?P<extras>{_NAME}(?:\s*,\s*{_NAME})*)?\s*\])?\s*"
    rf"(?P<specs>\(?\s*{_VERSION_CLAUSE}(?:\s*,\s*{_VERSION_CLAUSE})*\s*\)?)?\s*"
    rf"(?:;(?P<marker>[A-Za-z0-9_ .<>=!~\"'(),*+-]*))?\s*$"
)
_OPTION_WITH_VALUE = re.compile(r"^(-r|--requirement|-c|--constraint|-e|--editable)(?:\s*=\s*|\s+|(?<=^-[rce]))(.+)$")
_POETRY_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.\d+)*([A-Za-z0-9.+-]*)$")


@dataclass(frozen=True)
class LearnerRequirements:
    """What the learner's files ask for, after refusing anything that is not a plain registry name."""

    requirements: list[str]
    sources: list[str]
    problems: list[str]
    constraints: list[str] = field(default_factory=list)  # versions pinned by a lock file
    lock: str | None = None                                # the lock file the pins came from
    own_name: str = ""                                     # the project's own distribution name
    needs_metadata_build: bool = False                     # only setup.py knows the project's dependencies
    notes: list[str] = field(default_factory=list)


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


def requirement_specifier(text: str) -> str:
    match = _REQUIREMENT.match(text)
    return re.sub(r"[\s()]", "", match.group("specs") or "") if match else ""


def requirement_extras(text: str) -> list[str]:
    match = _REQUIREMENT.match(text)
    if not match or not match.group("extras"):
        return []
    return [normalize_name(extra.strip()) for extra in match.group("extras").split(",")]


def read_requirements(project_dir: Path) -> LearnerRequirements:
    """Dependencies from every declaration in the project folder; lock files pin versions as constraints."""
    reading = _Reading(project_dir)
    pyproject = _toml(project_dir / "pyproject.toml", reading)
    if pyproject is not None:
        reading.read_pyproject(pyproject)
    pipfile = _toml(project_dir / "Pipfile", reading)
    if pipfile is not None:
        reading.read_pipfile(pipfile)
    reading.read_setup_cfg()
    reading.read_requirement_files()
    reading.read_locks()
    if _is_plain_file(project_dir / "setup.py") and not reading.own_dependencies_known:
        reading.needs_metadata_build = True
    return reading.result()


class _Reading:
    """Collects requirements and problems while the declarations of one project are read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requirements: list[str] = []
        self.constraints: list[str] = []
        self.sources: list[str] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.own_name = ""
        self.lock: str | None = None
        self.own_dependencies_known = False
        self.needs_metadata_build = False

    def result(self) -> LearnerRequirements:
        return LearnerRequirements(
            requirements=list(dict.fromkeys(self.requirements)), sources=self.sources, problems=self.problems,
            constraints=list(dict.fromkeys(self.constraints)), lock=self.lock, own_name=self.own_name,
            needs_metadata_build=self.needs_metadata_build, notes=self.notes,
        )

    def add(self, entries: Iterable[object], origin: str, extras: dict | None = None) -> None:
        found = _accept(list(entries), self.own_name, extras or {}, origin, self.problems)
        if found and origin not in self.sources:
            self.sources.append(origin)
        self.requirements += found

    # ------------------------------------------------------------ pyproject.toml

    def read_pyproject(self, data: dict) -> None:
        project = _table(data, "project")
        tool = _table(data, "tool")
        poetry = _table(tool, "poetry")
        self.own_name = normalize_name(str(project.get("name") or poetry.get("name") or ""))
        if project:
            dynamic = project.get("dynamic") if isinstance(project.get("dynamic"), list) else []
            if "dependencies" not in dynamic:
                self.own_dependencies_known = True
            extras = _table(project, "optional-dependencies")
            extras_by_name = {normalize_name(name): value for name, value in extras.items()}
            wanted: list[object] = list(_list(project.get("dependencies")))
            for name in TEST_EXTRAS:
                wanted += list(_list(extras_by_name.get(name)))
            self.add(wanted, "pyproject.toml", extras_by_name)
        groups = _table(data, "dependency-groups")
        groups_by_name = {normalize_name(name): value for name, value in groups.items()}
        wanted = []
        for name in TEST_EXTRAS:
            wanted += _group_entries(groups_by_name, name, seen=set())
        self.add(wanted, "pyproject.toml")
        if poetry:
            self.own_dependencies_known = True
            self.read_poetry(poetry)
        pdm = _table(tool, "pdm")
        pdm_groups = pdm.get("dev-dependencies")
        if isinstance(pdm_groups, dict):
            for group in pdm_groups.values():
                self.add(_list(group), "pyproject.toml [tool.pdm]")

    def read_poetry(self, poetry: dict) -> None:
        origin = "pyproject.toml [tool.poetry]"
        tables = [_table(poetry, "dependencies"), _table(poetry, "dev-dependencies")]
        for name, group in _table(poetry, "group").items():
            if isinstance(group, dict) and group.get("optional") is not True:
                tables.append(_table(group, "dependencies"))
            elif isinstance(group, dict):
                self.notes.append(f"Poetry group {name!r} is optional and was not installed")
        for table in tables:
            for name, value in table.items():
                if normalize_name(name) == "python":
                    continue
                for requirement in poetry_requirements(name, value, origin, self.problems):
                    self.add([requirement], origin)

    # ------------------------------------------------------------ Pipfile

    def read_pipfile(self, data: dict) -> None:
        for section in ("packages", "dev-packages"):
            for name, value in _table(data, section).items():
                requirement = _pipfile_requirement(name, value, self.problems)
                if requirement:
                    self.add([requirement], "Pipfile")

    # ------------------------------------------------------------ setup.cfg

    def read_setup_cfg(self) -> None:
        path = self.root / "setup.cfg"
        text = _read_declaration(path, self.problems) if _is_plain_file(path) else None
        if text is None:
            return
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(text)
        except configparser.Error as error:
            self.problems.append(f"setup.cfg could not be read ({type(error).__name__}); its dependencies were "
                                 f"not read")
            return
        if parser.has_option("metadata", "name") and not self.own_name:
            self.own_name = normalize_name(parser.get("metadata", "name"))
        wanted: list[str] = []
        if parser.has_option("options", "install_requires"):
            self.own_dependencies_known = True
            wanted += _cfg_lines(parser.get("options", "install_requires"))
        if parser.has_option("options", "tests_require"):
            wanted += _cfg_lines(parser.get("options", "tests_require"))
        if parser.has_section("options.extras_require"):
            for name, value in parser.items("options.extras_require"):
                if normalize_name(name) in TEST_EXTRAS:
                    wanted += _cfg_lines(value)
        self.add(wanted, "setup.cfg")

    # ------------------------------------------------------------ requirements files

    def read_requirement_files(self) -> None:
        seen: set[Path] = set()
        paths = sorted(self.root.glob("requirements*.txt"))
        folder = self.root / "requirements"
        if folder.is_dir() and not folder.is_symlink():
            paths += sorted(path for path in folder.iterdir() if REQUIREMENTS_DIR_NAMES.match(path.name))
        for path in paths:
            if not _is_plain_file(path) or path.resolve() in seen:
                continue
            origin = path.relative_to(self.root).as_posix()
            found = _from_requirements_file(path, self.root, self.problems, seen, self.constraints)
            if found and origin not in self.sources:
                self.sources.append(origin)
            self.requirements += found

    # ------------------------------------------------------------ lock files

    def read_locks(self) -> None:
        """Pins from the first lock file found, as constraints: the learner's tested versions win, and a package
        locked for another platform is never added."""
        for name, reader in (("uv.lock", _uv_lock), ("poetry.lock", _poetry_lock), ("pdm.lock", _pdm_lock),
                             ("Pipfile.lock", _pipfile_lock)):
            path = self.root / name
            if not _is_plain_file(path):
                continue
            if path.stat().st_size > MAX_LOCK_BYTES:
                self.problems.append(f"{name}: larger than {MAX_LOCK_BYTES // (1024 * 1024)} MB, ignored")
                continue
            try:
                pins = reader(path.read_text(encoding="utf-8", errors="replace"))
            except (tomllib.TOMLDecodeError, ValueError, TypeError, AttributeError) as error:
                self.problems.append(f"{name} could not be read ({type(error).__name__}); versions were resolved "
                                     f"afresh")
                continue
            by_name: dict[str, set[str]] = {}
            for package, version in pins:
                by_name.setdefault(normalize_name(package), set()).add(version)
            for package, versions in sorted(by_name.items()):
                if package == self.own_name:
                    continue
                if len(versions) == 1:
                    self.constraints.append(f"{package}=={next(iter(versions))}")
            self.lock = name
            self.sources.append(name)
            return


# ---------------------------------------------------------------- Poetry

def poetry_constraint(text: str) -> str | None:
    """A Poetry version constraint as a PEP 440 specifier ("" for any version), or None when it cannot be read.

    Caret allows changes that keep the first non-zero component (^1.2.3 is >=1.2.3,<2.0.0; ^0.2.3 is >=0.2.3,<0.3.0),
    tilde allows patch changes (~1.2.3 is >=1.2.3,<1.3.0); "a || b" keeps the last (newest) alternative.
    """
    text = text.strip()
    if "||" in text:
        text = text.split("||")[-1].strip()
    if text in ("", "*"):
        return ""
    clauses = [clause for clause in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", text) if clause]
    translated = []
    for clause in clauses:
        spec = _poetry_clause(clause.replace(" ", ""))
        if spec is None:
            return None
        if spec:
            translated.append(spec)
    return ",".join(translated)


def _poetry_clause(clause: str) -> str | None:
    if clause.startswith("^"):
        return _caret(clause[1:])
    if clause.startswith("~") and not clause.startswith("~="):
        return _tilde(clause[1:])
    if re.match(r"^(===|==|!=|~=|<=|>=|<|>)", clause):
        return clause if re.fullmatch(_VERSION_CLAUSE, clause) else None
    if re.fullmatch(r"\d+(\.(\d+|\*))*", clause):
        return f"=={clause}"
    if _POETRY_VERSION.match(clause):
        return f"=={clause}"
    return None


def _caret(version: str) -> str | None:
    match = _POETRY_VERSION.match(version)
    if not match:
        return None
    parts = [int(part) for part in match.groups()[:3] if part is not None]
    upper = list(parts)
    for index, part in enumerate(parts):
        if part != 0 or index == len(parts) - 1:
            upper = parts[:index] + [part + 1]
            break
    while len(upper) < len(parts):
        upper.append(0)
    return f">={version},<{'.'.join(map(str, upper))}"


def _tilde(version: str) -> str | None:
    match = _POETRY_VERSION.match(version)
    if not match:
        return None
    parts = [int(part) for part in match.groups()[:3] if part is not None]
    upper = [parts[0] + 1] if len(parts) == 1 else [parts[0], parts[1] + 1]
    return f">={version},<{'.'.join(map(str, upper))}"


def _python_marker(constraint: str) -> str | None:
    """A Poetry `python = "..."` restriction as a marker on python_version ("" when it allows every version)."""
    spec = poetry_constraint(constraint)
    if not spec:
        return spec
    clauses = []
    for clause in spec.split(","):
        match = re.fullmatch(r"(===|==|!=|~=|<=|>=|<|>)(.+)", clause)
        if match is None:
            return None
        clauses.append(f'python_version {match.group(1)} "{match.group(2)}"')
    return " and ".join(clauses)


def poetry_requirements(name: str, value: object, origin: str, problems: list[str]) -> list[str]:
    """PEP 508 requirements for one Poetry dependency entry (a constraint, a table, or a list of tables)."""
    entries = value if isinstance(value, list) else [value]
    found = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"version": entry}
        if not isinstance(entry, dict):
            problems.append(f"{origin}: ignored {name!r}: not a version or a table")
            continue
        if any(key in entry for key in ("git", "path", "url", "file")):
            problems.append(f"{origin}: refused {name!r}: only packages from the registry are installed "
                            f"(no URLs, paths or VCS)")
            continue
        if entry.get("optional") is True:
            continue  # installed only when an extra asks for it
        spec = poetry_constraint(str(entry.get("version", "*")))
        if spec is None:
            problems.append(f"{origin}: could not read the version constraint of {name!r}: "
                            f"{entry.get('version')!r}"[:300])
            continue
        extras = [str(extra) for extra in _list(entry.get("extras")) if isinstance(extra, str)]
        markers = []
        if isinstance(entry.get("python"), str):
            python = _python_marker(entry["python"])
            if python:
                markers.append(f"({python})")
        if isinstance(entry.get("markers"), str):
            markers.append(f"({entry['markers']})")
        requirement = name + (f"[{','.join(extras)}]" if extras else "") + spec
        if markers:
            requirement += " ; " + " and ".join(markers)
        found.append(requirement)
    return found


def _pipfile_requirement(name: str, value: object, problems: list[str]) -> str | None:
    if isinstance(value, str):
        spec = "" if value.strip() == "*" else value.strip()
        return f"{name}{spec}"
    if not isinstance(value, dict):
        return None
    if value.get("editable") and value.get("path") in (".", "./"):
        return None  # the project itself
    if any(key in value for key in ("git", "path", "file", "url", "hg", "svn")):
        problems.append(f"Pipfile: refused {name!r}: only packages from the registry are installed "
                        f"(no URLs, paths or VCS)")
        return None
    extras = [str(extra) for extra in _list(value.get("extras"))]
    version = str(value.get("version", "*")).strip()
    spec = "" if version == "*" else version
    marker = value.get("markers")
    return name + (f"[{','.join(extras)}]" if extras else "") + spec + (f" ; {marker}" if isinstance(marker, str) else "")


# ---------------------------------------------------------------- lock files

def _uv_lock(text: str) -> list[tuple[str, str]]:
    pins = []
    for package in tomllib.loads(text).get("package", []):
        source = package.get("source") if isinstance(package.get("source"), dict) else {}
        if "registry" in source and isinstance(package.get("version"), str):
            pins.append((package["name"], package["version"]))
    return pins


def _poetry_lock(text: str) -> list[tuple[str, str]]:
    pins = []
    for package in tomllib.loads(text).get("package", []):
        source = package.get("source") if isinstance(package.get("source"), dict) else {}
        if source.get("type") in (None, "legacy") and isinstance(package.get("version"), str):
            pins.append((package["name"], package["version"]))
    return pins


def _pdm_lock(text: str) -> list[tuple[str, str]]:
    return [(package["name"], package["version"]) for package in tomllib.loads(text).get("package", [])
            if isinstance(package.get("version"), str) and not package.get("editable")
            and not any(key in package for key in ("git", "path", "url"))]


def _pipfile_lock(text: str) -> list[tuple[str, str]]:
    data = json.loads(text)
    pins = []
    for section in ("default", "develop"):
        for name, entry in (data.get(section) or {}).items():
            version = entry.get("version") if isinstance(entry, dict) else None
            if isinstance(version, str) and version.startswith("=="):
                pins.append((name, version[2:]))
    return pins


# ---------------------------------------------------------------- shared readers

def _toml(path: Path, reading: _Reading) -> dict | None:
    if not _is_plain_file(path):
        return None
    text = _read_declaration(path, reading.problems)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        reading.problems.append(f"{path.name} is not valid TOML ({error}); its dependencies were not read")
        return None


def _table(data: object, key: str) -> dict:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _cfg_lines(value: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in value.splitlines() if line.split("#", 1)[0].strip()]


def _group_entries(groups: dict, name: str, seen: set[str]) -> list[object]:
    """A PEP 735 dependency group's entries, following include-group references once each."""
    if name in seen or name not in groups:
        return []
    seen.add(name)
    entries: list[object] = []
    for entry in groups[name] or []:
        if isinstance(entry, dict) and "include-group" in entry:
            entries += _group_entries(groups, normalize_name(str(entry["include-group"])), seen)
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


def _is_plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _read_declaration(path: Path, problems: list[str]) -> str | None:
    if path.stat().st_size > MAX_DECLARATION_BYTES:
        problems.append(f"{path.name}: larger than {MAX_DECLARATION_BYTES} bytes, ignored")
        return None
    return path.read_text(encoding="utf-8", errors="replace")


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = []
    for raw in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def _from_requirements_file(path: Path, root: Path, problems: list[str], seen: set[Path],
                            constraints: list[str]) -> list[str]:
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
            accepted += _requirements_option(line, path, root, problems, seen, constraints)
            continue
        requirement = check_requirement(line)
        if requirement is None:
            problems.append(f"{path.name}: refused {line!r}: only package names from the registry are installed "
                            f"(no URLs, paths, VCS or wheel files)"[:300])
            continue
        accepted.append(requirement)
    return accepted


def _requirements_option(line: str, path: Path, root: Path, problems: list[str], seen: set[Path],
                         constraints: list[str]) -> list[str]:
    match = _OPTION_WITH_VALUE.match(line)
    if match and match.group(1) in ("-r", "--requirement", "-c", "--constraint"):
        target = (path.parent / match.group(2).strip()).resolve()
        if target.parent != root.resolve() and root.resolve() not in target.parents:
            problems.append(f"{path.name}: refused {line!r}: included files must stay inside the project")
            return []
        if not _is_plain_file(target):
            problems.append(f"{path.name}: {line!r}: no such requirements file in the project")
            return []
        found = _from_requirements_file(target, root, problems, seen, constraints)
        if match.group(1) in ("-c", "--constraint"):
            constraints += found
            return []
        return found
    if match and match.group(1) in ("-e", "--editable"):
        problems.append(f"{path.name}: skipped {line!r}: the project's own code is put on the path, never built "
                        f"or installed by the service")
        return []
    option = line.split()[0].split("=")[0]
    problems.append(f"{path.name}: ignored option {option!r}: dependencies come by name from the registry "
                    f"the service is configured with")
    return []
