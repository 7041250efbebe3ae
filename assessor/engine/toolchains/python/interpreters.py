"""Which Python a project declares (.python-version, runtime.txt, Pipfile, pyproject, Poetry, setup.cfg, CI), which
interpreters this worker has (Debian, pyenv, uv-managed, a configured list), and the one a run uses."""

import configparser
import functools
import glob
import os
import re
import subprocess
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from assessor.engine.toolchains.python.dependencies import poetry_constraint

DEFAULT_INTERPRETER = Path("/usr/bin/python3")
# The oldest Python the service's runner and coverage support inside the sandbox.
OLDEST_SUPPORTED = Version("3.7")
MAX_DECLARATION_BYTES = 512 * 1024
_MINOR = re.compile(r"(?<![\d.])(3\.\d{1,2})(?:\.\d+)?(?![\d])")
_VERSION_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


@dataclass(frozen=True)
class Interpreter:
    """A CPython on this worker: its version, its executable, and how the operator installed it."""

    version: Version
    path: Path
    origin: str      # debian, pyenv, uv, configured

    @property
    def minor(self) -> str:
        return f"{self.version.major}.{self.version.minor}"

    @property
    def home(self) -> Path:
        """The installation's prefix (bin/.. of the real executable)."""
        return self.path.resolve().parent.parent

    def to_dict(self) -> dict:
        return {"version": str(self.version), "path": str(self.path), "origin": self.origin}


@dataclass
class DeclaredPython:
    """What a project says about its Python: the minors it runs on (first place that pins one) and the ranges."""

    pinned: tuple[str, ...] = ()        # minors, such as "3.9", from the first place that names them
    pinned_by: str | None = None
    ranges: list[tuple[str, SpecifierSet]] = field(default_factory=list)  # (where, specifier)
    notes: list[str] = field(default_factory=list)

    @property
    def said(self) -> str:
        """The declarations as a reader says them: ".python-version: 3.9; requires-python in pyproject.toml: >=3.8"."""
        parts = [f"{self.pinned_by}: {' or '.join(self.pinned)}"] if self.pinned else []
        parts += [f"{where}: {specifier}" for where, specifier in self.ranges]
        return "; ".join(parts)

    def admits(self, version: Version) -> bool:
        return all(specifier.contains(version, prereleases=True) for _, specifier in self.ranges)


@dataclass(frozen=True)
class InterpreterChoice:
    """The interpreter a run uses and why, or why none fits (then the tests cannot be measured)."""

    interpreter: Interpreter | None
    reason: str

    def to_dict(self) -> dict:
        return {**(self.interpreter.to_dict() if self.interpreter else {}), "reason": self.reason}


# ---------------------------------------------------------------- what the project declares

def declared_python(root: Path, checkout: Path) -> DeclaredPython:
    """Every place a project names its Python, in the project folder (and CI at the repository's top)."""
    declared = DeclaredPython()
    pins = [
        (".python-version", _python_version_file(_read(root / ".python-version"))),
        ("runtime.txt", _minors(_read(root / "runtime.txt"), prefix="python-")),
        (".tool-versions", _tool_versions(_read(root / ".tool-versions"))),
        ("Pipfile", _pipfile_python(_read(root / "Pipfile"), declared.notes)),
        ("the CI workflow's python-version", _ci_versions(checkout)),
    ]
    for where, minors in pins:
        if minors and not declared.pinned:
            declared.pinned, declared.pinned_by = tuple(dict.fromkeys(minors)), where
    for where, text in _range_texts(root, declared.notes):
        try:
            declared.ranges.append((where, SpecifierSet(text)))
        except InvalidSpecifier:
            declared.notes.append(f"{where}: the Python version {text!r} cannot be read; ignored")
    return declared


def _read(path: Path) -> str:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_DECLARATION_BYTES:
            return ""
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _minors(text: str, *, prefix: str = "") -> list[str]:
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith(prefix):
            found += _MINOR.findall(line[len(prefix):])
    return found


def _python_version_file(text: str) -> list[str]:
    """pyenv's file: one version a line ("3.9.18", "3.9", "pypy3.9-7.3.11" is not CPython, "system" is none)."""
    return [minor for line in text.splitlines() for minor in _MINOR.findall(line)
            if not line.strip().startswith(("pypy", "system", "#"))]


def _tool_versions(text: str) -> list[str]:
    return [minor for line in text.splitlines() if line.split()[:1] == ["python"]
            for minor in _MINOR.findall(line)]


def _pipfile_python(text: str, notes: list[str]) -> list[str]:
    if not text:
        return []
    try:
        requires = tomllib.loads(text).get("requires") or {}
    except tomllib.TOMLDecodeError:
        notes.append("Pipfile is not valid TOML; its Python version was not read")
        return []
    value = requires.get("python_full_version") or requires.get("python_version") if isinstance(requires, dict) \
        else None
    return _MINOR.findall(str(value)) if value else []


def _ci_versions(checkout: Path) -> list[str]:
    """python-version of actions/setup-python steps and the matrices they read, in the workflows."""
    folder = checkout / ".github" / "workflows"
    if folder.is_symlink() or not folder.is_dir():
        return []
    found: list[str] = []
    for path in sorted(folder.glob("*.y*ml"))[:20]:
        try:
            data = yaml.safe_load(_read(path))
        except yaml.YAMLError:
            continue
        for value in _values_named(data, "python-version"):
            found += [minor for item in (value if isinstance(value, list) else [value])
                      for minor in _MINOR.findall(str(item))]
    return found


def _values_named(data: object, key: str, depth: int = 0) -> Iterable[object]:
    if depth > 12:
        return
    if isinstance(data, dict):
        for name, value in data.items():
            if name == key:
                yield value
            yield from _values_named(value, key, depth + 1)
    elif isinstance(data, list):
        for item in data:
            yield from _values_named(item, key, depth + 1)


def _range_texts(root: Path, notes: list[str]) -> list[tuple[str, str]]:
    found = []
    text = _read(root / "pyproject.toml")
    if text:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            data = {}
        project = data.get("project") if isinstance(data.get("project"), dict) else {}
        if isinstance(project.get("requires-python"), str):
            found.append(("requires-python in pyproject.toml", project["requires-python"]))
        poetry = data.get("tool", {}).get("poetry", {}) if isinstance(data.get("tool"), dict) else {}
        dependencies = poetry.get("dependencies") if isinstance(poetry, dict) else None
        python = dependencies.get("python") if isinstance(dependencies, dict) else None
        if isinstance(python, str):
            translated = poetry_constraint(python)
            if translated is None:
                notes.append(f"pyproject.toml: Poetry's python = {python!r} cannot be read; ignored")
            elif translated:
                found.append(("Poetry's python in pyproject.toml", translated))
    setup_cfg = _read(root / "setup.cfg")
    if setup_cfg:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(setup_cfg)
            value = parser.get("options", "python_requires", fallback="").strip()
        except configparser.Error:
            value = ""
        if value:
            found.append(("python_requires in setup.cfg", value))
    match = re.search(r"python_requires\s*=\s*['\"]([^'\"]+)['\"]", _read(root / "setup.py"))
    if match:
        found.append(("python_requires in setup.py", match.group(1)))
    return found


# ---------------------------------------------------------------- what this worker has

def find_interpreters(environ: Mapping[str, str] | None = None) -> list[Interpreter]:
    """CPython 3 interpreters on this worker, newest first: Debian's (and /usr/local), pyenv's, uv-managed ones,
    and the paths listed in ASSESSOR_PYTHONS (separated by ':'). One per version, the first origin found wins."""
    environ = os.environ if environ is None else environ
    candidates: list[tuple[str, str]] = []
    for pattern in ("/usr/bin/python3.*", "/usr/local/bin/python3.*"):
        candidates += [("debian" if path.startswith("/usr/bin") else "local", path)
                       for path in sorted(glob.glob(pattern)) if re.fullmatch(r".*/python3\.\d+", path)]
    homes = [environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv", "/opt/pyenv"]
    for home in dict.fromkeys(home for home in homes if home):
        candidates += [("pyenv", path) for path in sorted(glob.glob(f"{home}/versions/3.*/bin/python3"))
                       if re.fullmatch(r"3\.\d+\.\d+", Path(path).parent.parent.name)]
    uv_dirs = [environ.get("UV_PYTHON_INSTALL_DIR"), os.path.expanduser("~/.local/share/uv/python")]
    for folder in dict.fromkeys(folder for folder in uv_dirs if folder):
        candidates += [("uv", path) for path in sorted(glob.glob(f"{folder}/cpython-3.*/bin/python3"))]
    candidates += [("configured", path) for path in environ.get("ASSESSOR_PYTHONS", "").split(":") if path]
    found: dict[Version, Interpreter] = {}
    for origin, path in candidates:
        version = _version_of(path)
        if version is not None and version.major == 3:
            found.setdefault(version, Interpreter(version=version, path=Path(path), origin=origin))
    return sorted(found.values(), key=lambda interpreter: interpreter.version, reverse=True)


def _version_of(path: str) -> Version | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return _probe(path, stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=128)
def _probe(path: str, _mtime: int, _inode: int) -> Version | None:
    """The interpreter's own version (it is the operator's, never the learner's: safe to run on the host)."""
    try:
        done = subprocess.run([path, "-I", "-S", "-c", _VERSION_PROBE], capture_output=True, text=True, timeout=10,
                              env={"PATH": "/usr/bin:/bin"})
        return Version(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, InvalidVersion):
        return None


# ---------------------------------------------------------------- the choice

def choose_interpreter(declared: DeclaredPython, available: list[Interpreter],
                       default: Path = DEFAULT_INTERPRETER) -> InterpreterChoice:
    """The interpreter for a run: of the minors the project pins, the newest this worker has within its ranges;
    with ranges only, this worker's default Python when it fits, else the newest that does; with nothing
    declared, the default."""
    usable = [interpreter for interpreter in available if interpreter.version >= OLDEST_SUPPORTED]
    fitting = [interpreter for interpreter in usable if declared.admits(interpreter.version)]
    has = ", ".join(str(interpreter.version) for interpreter in usable) or "none"
    if declared.pinned:
        pinned = _preferred([interpreter for interpreter in fitting if interpreter.minor in declared.pinned], default)
        if pinned:
            return InterpreterChoice(pinned[0], f"Python {pinned[0].version} ({pinned[0].origin}), as "
                                                f"{declared.said}")
        old = [minor for minor in declared.pinned if Version(minor) < OLDEST_SUPPORTED]
        if old and len(old) == len(declared.pinned):
            return InterpreterChoice(None, f"this project needs Python {' or '.join(old)} ({declared.said}); the "
                                           f"service runs tests on Python {OLDEST_SUPPORTED} or newer")
        return InterpreterChoice(None, f"this project needs Python {' or '.join(declared.pinned)} "
                                       f"({declared.said}); this worker has {has}")
    if not declared.ranges:
        chosen = next((interpreter for interpreter in usable if _same(interpreter.path, default)), None)
        return InterpreterChoice(chosen or (usable[0] if usable else None),
                                 "no Python version is declared: the worker's default" if chosen or usable
                                 else "no Python 3 interpreter was found on this worker")
    if not fitting:
        return InterpreterChoice(None, f"this project needs Python {declared.said}; this worker has {has}")
    preferred = next((interpreter for interpreter in fitting if _same(interpreter.path, default)), fitting[0])
    return InterpreterChoice(preferred, f"Python {preferred.version} ({preferred.origin}), the worker's "
                                        f"{'default' if _same(preferred.path, default) else 'newest'} that fits "
                                        f"{declared.said}")


def _preferred(interpreters: list[Interpreter], default: Path) -> list[Interpreter]:
    """Newest minor first; within a minor, the worker's default, then one the sandbox sees in place (under /usr),
    then the newest patch: a copy of another installation costs seconds and hundreds of megabytes once."""
    def rank(interpreter: Interpreter):
        in_place = str(interpreter.path.resolve()).startswith("/usr/")
        return (-interpreter.version.major, -interpreter.version.minor, not _same(interpreter.path, default),
                not in_place, -interpreter.version.micro)
    return sorted(interpreters, key=rank)


def _same(path: Path, other: Path) -> bool:
    try:
        return path.resolve() == other.resolve()
    except OSError:
        return False
