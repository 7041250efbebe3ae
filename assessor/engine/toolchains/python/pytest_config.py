"""The learner's pytest configuration and test command, kept where they only shape the run, dropped where they select."""

import configparser
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

MAX_CONFIG_BYTES = 1024 * 1024
# pytest's own default, plus the names unittest-style projects use (`tests.py`, the Flask Mega-Tutorial layout).
DEFAULT_PYTHON_FILES = ("test_*.py", "*_test.py", "tests.py")
UNITTEST_DEFAULT_PATTERN = "test*.py"

# Options from the learner's addopts or test command that only shape how tests run, never which results are kept.
SAFE_FLAGS = frozenset({
    "--strict-markers", "--strict-config", "--strict", "--doctest-modules", "--doctest-continue-on-failure",
    "-v", "-vv", "-q", "-l", "--showlocals", "--disable-warnings", "-ra", "-rA", "--reuse-db", "--nomigrations",
    "--no-migrations", "--create-db",
})
SAFE_WITH_VALUE = frozenset({
    "--import-mode", "--doctest-glob", "--asyncio-mode", "--ds", "--dc", "--tb", "--timeout", "-W",
    "--pythonwarnings", "-p", "--configuration",
})
# Prefixes that run a command in the project's environment; what follows them is the command itself.
RUN_WRAPPERS = (("poetry", "run"), ("pipenv", "run"), ("pdm", "run"), ("uv", "run"), ("hatch", "run"),
                ("rye", "run"))
# pytest options (besides the safe ones) whose value is the next word.
VALUE_OPTIONS = frozenset({"-k", "-m", "-n", "--numprocesses", "--cov-report", "--cov-config", "--maxfail",
                           "--deselect", "--junitxml", "--junit-xml", "-c", "--rootdir", "--ignore", "--ignore-glob",
                           "--durations", "-o", "--override-ini", "--basetemp", "--confcutdir", "--log-level",
                           "--cov-fail-under", "--dist", "--reruns"})
PYTHONS = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")


@dataclass(frozen=True)
class PytestConfig:
    """What the learner's own pytest configuration file says (the file pytest itself would pick)."""

    source: str | None = None
    addopts: tuple[str, ...] = ()
    python_files: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TestSelection:
    """How the learner's declared test command is run under the service's pytest."""

    __test__ = False
    paths: tuple[str, ...] = ()           # test paths the command names, relative to the project root
    options: tuple[str, ...] = ()         # its options that only shape the run
    python_files: tuple[str, ...] = ()    # extra file patterns (unittest discovery's -p)
    notes: tuple[str, ...] = ()
    source: str | None = None             # where the command came from, for the report


@dataclass
class _Invocation:
    runner: str                           # pytest or unittest
    args: list[str] = field(default_factory=list)


def learner_pytest_config(root: Path) -> PytestConfig:
    """The learner's pytest configuration: the first file pytest would pick in `root`, as pytest orders them."""
    candidates = [("pytest.ini", "pytest"), (".pytest.ini", "pytest"), ("pyproject.toml", None),
                  ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")]
    for name, section in candidates:
        path = root / name
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_CONFIG_BYTES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if section is None:
            options = _pyproject_options(text)
        else:
            options = _ini_options(text, section, always=name in ("pytest.ini", ".pytest.ini"))
        if options is not None:
            python_files = options.get("python_files")
            return PytestConfig(source=name, addopts=tuple(_split(options.get("addopts", ""))),
                                python_files=tuple(_split(python_files)) if python_files else None)
    return PytestConfig()


def learner_addopts(root: Path) -> list[str]:
    return list(learner_pytest_config(root).addopts)


def _pyproject_options(text: str) -> dict | None:
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return None
    pytest_table = tool.get("pytest") if isinstance(tool, dict) and isinstance(tool.get("pytest"), dict) else None
    if pytest_table is None:
        return None
    options = pytest_table.get("ini_options") if isinstance(pytest_table.get("ini_options"), dict) else pytest_table
    return options


def _ini_options(text: str, section: str, always: bool) -> dict | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {} if always else None
    if not parser.has_section(section):
        return {} if always else None
    return dict(parser.items(section))


def _split(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    try:
        return shlex.split(str(value))
    except ValueError:
        return []


def filter_addopts(options: list[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): keep options that shape how tests run, drop any that select, stop or redirect them."""
    kept: list[str] = []
    dropped: list[str] = []
    index = 0
    while index < len(options):
        option = options[index]
        name, has_value, value = option.partition("=")
        if option in SAFE_FLAGS:
            kept.append(option)
        elif name in SAFE_WITH_VALUE and has_value and _safe_option_value(name, value):
            kept.append(option)
        elif option in SAFE_WITH_VALUE and index + 1 < len(options) \
                and _safe_option_value(option, options[index + 1]):
            kept += [option, options[index + 1]]
            index += 1
        elif option.startswith("-p") and len(option) > 2 and _safe_option_value("-p", option[2:]):
            kept.append(option)
        else:
            dropped.append(option)
        index += 1
    return kept, dropped


def _safe_option_value(name: str, value: str) -> bool:
    if name == "-p":
        return not value.startswith("no:") and re.fullmatch(r"[A-Za-z0-9_.]+", value) is not None
    return "\n" not in value


def python_files_for(config: PytestConfig, selection: TestSelection) -> tuple[str, ...] | None:
    """The test file patterns to give pytest, or None to leave the learner's own `python_files` in force."""
    if config.python_files is not None:
        return None
    return tuple(dict.fromkeys([*DEFAULT_PYTHON_FILES, *selection.python_files]))


def test_file_patterns(config: PytestConfig, selection: TestSelection) -> tuple[str, ...]:
    """Every pattern a file pytest collects matches: such files are tests, never measured as application code."""
    return tuple(dict.fromkeys([*(config.python_files or DEFAULT_PYTHON_FILES), *selection.python_files]))


def pytest_arguments(*, root: Path, out_dir: Path, kept_addopts: list[str], collect: bool,
                     python_files: tuple[str, ...] | None = None, paths: tuple[str, ...] = ()) -> list[str]:
    """The service's pytest options; they come after the learner's so the service's settings win."""
    # xunit1: the only JUnit flavour in which pytest writes each test's file and line.
    overrides = ["addopts=", "junit_logging=no", "junit_log_passing_tests=false", "junit_family=xunit1",
                 "required_plugins=", "console_output_style=classic", "junit_suite_name=pytest"]
    if python_files:
        overrides.append("python_files=" + " ".join(python_files))
    args = [*kept_addopts]
    for override in overrides:
        args += ["-o", override]
    args += ["-p", "no:cacheprovider", f"--rootdir={root}", "--capture=fd", "--color=no",
             "--continue-on-collection-errors"]
    if not collect:
        args += ["-p", "junitxml", f"--junitxml={out_dir / 'junit.xml'}", "-rfE"]
    return [*args, *paths]


# ---------------------------------------------------------------- the learner's declared test command

def selection_from_command(command: str, *, root: Path, source: str, base: Path | None = None,
                           checkout: Path | None = None) -> TestSelection | None:
    """How to run `command` (a manifest entry or a CI `run:` block) with the service's pytest, or None when it
    runs no pytest or unittest. `base` is the folder the command runs in (default: the project root); scripts
    and make targets it calls inside the checkout are followed. Test paths are kept, options that only shape
    the run are kept, anything that would select, stop or redirect results is dropped with a note."""
    base = (base or root).resolve()
    checkout = (checkout or root).resolve()
    found = _find_invocation(command, base=base, checkout=checkout, depth=0)
    if found is None:
        return None
    invocation, where = found
    place = _Place(root=root.resolve(), base=where)
    if invocation.runner == "pytest":
        return _pytest_selection(invocation.args, place=place, source=source)
    return _unittest_selection(invocation.args, place=place, source=source)


@dataclass(frozen=True)
class _Place:
    """Where a command's paths are resolved (`base`) and what they must be made relative to (`root`)."""

    root: Path
    base: Path

    def project_path(self, argument: str) -> str | None:
        """`argument` as a path relative to the project root, when it names something inside it."""
        if argument.startswith("/") or ".." in Path(argument).parts:
            return None
        target = self.base / argument
        if not target.exists() or target.is_symlink():
            return None
        try:
            relative = target.resolve().relative_to(self.root)
        except ValueError:
            return None
        return relative.as_posix()


MAX_SCRIPT_BYTES = 64 * 1024
SCRIPT_DEPTH = 2


def _find_invocation(text: str, *, base: Path, checkout: Path, depth: int) -> tuple[_Invocation, Path] | None:
    for words in _simple_commands(text):
        if words[0] == "cd" and len(words) == 2:
            target = (base / words[1]).resolve()
            if target.is_dir() and (target == checkout or checkout in target.parents):
                base = target
            continue
        invocation = _invocation(words)
        if invocation is not None:
            return invocation, base
        if depth < SCRIPT_DEPTH:
            script = _script_text(_peel(words), base=base, checkout=checkout)
            if script:
                found = _find_invocation(script, base=base, checkout=checkout, depth=depth + 1)
                if found is not None:
                    return found
    return None


def _script_text(words: list[str], *, base: Path, checkout: Path) -> str | None:
    """The commands of a script or make target in the checkout that `words` runs, or None."""
    if not words:
        return None
    if words[0] == "make":
        targets = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
        text = _read_inside(base / "Makefile", checkout)
        return _make_recipe(text, targets[0] if targets else None) if text else None
    if words[0] in ("bash", "sh") and len(words) > 1 and not words[1].startswith("-"):
        return _read_inside(base / words[1], checkout)
    if "/" in words[0] or words[0].endswith(".sh"):
        return _read_inside(base / words[0], checkout)
    return None


def _read_inside(path: Path, checkout: Path) -> str | None:
    try:
        resolved = path.resolve()
        resolved.relative_to(checkout)
        if path.is_symlink() or not resolved.is_file() or resolved.stat().st_size > MAX_SCRIPT_BYTES:
            return None
        return resolved.read_text(encoding="utf-8", errors="replace")
    except (ValueError, OSError):
        return None


def _make_recipe(text: str, target: str | None) -> str | None:
    """The recipe lines of `target` (default: the first target) in a Makefile."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", line)
        if not match or match.group(1).startswith(".") or (target and match.group(1) != target):
            continue
        recipe = []
        for following in lines[index + 1:]:
            if not following.startswith("\t"):
                break
            recipe.append(following.strip().lstrip("@-+"))
        return "\n".join(recipe)
    return None


def _simple_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell snippet (lines, `&&`, `;`), as argument lists; unparseable lines skipped."""
    commands: list[list[str]] = []
    for line in re.sub(r"\\\r?\n", " ", text).splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        current: list[str] = []
        for word in words:
            if word in ("&&", "||", ";", "|"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
        if current:
            commands.append(current)
    return commands


def _peel(words: list[str]) -> list[str]:
    """The command itself, once wrappers (VAR=value, poetry run, python -m, coverage run -m) are taken off."""
    words = list(words)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    changed = True
    while words and changed:
        changed = False
        for wrapper in RUN_WRAPPERS:
            if tuple(words[:2]) == wrapper:
                words = words[2:]
                while words and words[0].startswith("-"):
                    words.pop(0)  # the wrapper's own options (uv run --frozen)
                changed = True
        if words and words[0] in ("timeout", "xvfb-run") and len(words) > 1:
            words = words[2:] if words[0] == "timeout" else words[1:]
            changed = True
        if words and PYTHONS.match(words[0]) and len(words) > 2 and words[1] == "-m":
            words = words[2:]
            changed = True
        if words and words[0] == "coverage" and len(words) > 1 and words[1] == "run":
            rest = words[2:]
            if "-m" in rest:
                words = rest[rest.index("-m") + 1:]
                changed = True
    return words


def _invocation(words: list[str]) -> _Invocation | None:
    """pytest or unittest with its arguments, once wrappers are peeled."""
    words = _peel(words)
    if not words:
        return None
    name = words[0].rsplit("/", 1)[-1]
    if name in ("pytest", "py.test"):
        return _Invocation("pytest", words[1:])
    if name == "unittest":
        return _Invocation("unittest", words[1:])
    return None


def _pytest_selection(args: list[str], *, place: _Place, source: str) -> TestSelection:
    option_words: list[str] = []
    positional: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("-"):
            option_words.append(arg)
            if "=" not in arg and index + 1 < len(args) and _takes_value(arg, args[index + 1]):
                option_words.append(args[index + 1])
                index += 1
        else:
            positional.append(arg)
        index += 1
    kept, dropped = filter_addopts(option_words)
    paths, notes = [], []
    for arg in positional:
        if arg.startswith("$"):
            continue  # the script's own arguments ("$@"): nothing is passed here
        if "::" in arg:
            notes.append(f"the test command's {arg!r} selects single tests; the whole file is run instead")
            arg = arg.split("::", 1)[0]
        relative = place.project_path(arg)
        if relative is not None:
            paths.append(relative)
        else:
            notes.append(f"the test command names {arg!r}, which is not a path in the project; ignored")
    if dropped:
        notes.append(f"ignored from the test command ({source}): {' '.join(dropped)}"[:300])
    return TestSelection(paths=tuple(dict.fromkeys(paths)), options=tuple(kept), notes=tuple(notes), source=source)


def _takes_value(option: str, following: str) -> bool:
    if following.startswith("-"):
        return False
    if option in SAFE_WITH_VALUE or option in VALUE_OPTIONS:
        return True
    # --cov's value is optional: "--cov app tests" measures app, "--cov tests/" would be odd but legal.
    return option == "--cov" and "test" not in following


def _unittest_selection(args: list[str], *, place: _Place, source: str) -> TestSelection:
    """unittest's discovery or module names, run by pytest (which runs unittest.TestCase tests as they are)."""
    notes: list[str] = []
    if args and args[0] == "discover":
        start, pattern = ".", UNITTEST_DEFAULT_PATTERN
        rest = args[1:]
        positional = []
        index = 0
        while index < len(rest):
            arg = rest[index]
            if arg in ("-s", "--start-directory") and index + 1 < len(rest):
                start = rest[index + 1]
                index += 1
            elif arg in ("-p", "--pattern") and index + 1 < len(rest):
                pattern = rest[index + 1]
                index += 1
            elif arg in ("-t", "--top-level-directory") and index + 1 < len(rest):
                index += 1
            elif not arg.startswith("-"):
                positional.append(arg)
            index += 1
        if positional:
            start = positional[0]
        if len(positional) > 1:
            pattern = positional[1]
        relative = place.project_path(start)
        paths = (relative,) if relative not in (None, ".") else ()
        return TestSelection(paths=paths, python_files=(pattern,), notes=tuple(notes), source=source)
    paths = []
    for arg in args:
        if arg.startswith("-"):
            continue
        candidate = arg.split(".")
        for length in range(len(candidate), 0, -1):
            module = "/".join(candidate[:length])
            relative = place.project_path(module + ".py") or place.project_path(module)
            if relative is not None:
                paths.append(relative)
                break
    return TestSelection(paths=tuple(dict.fromkeys(paths)), python_files=(UNITTEST_DEFAULT_PATTERN,),
                         notes=tuple(notes), source=source)
