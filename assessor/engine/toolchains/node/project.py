"""What a Node.js project is made of, read as data: package.json, its lock file, its test runner, its sources."""

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

MAX_PACKAGE_JSON_BYTES = 1024 * 1024
SOURCE_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx")
# Folders that never hold the learner's application code.
SKIPPED_DIRS = frozenset({
    "node_modules", ".git", "dist", "build", "out", "coverage", ".next", ".nuxt", ".turbo", ".cache", ".vercel",
    "test", "tests", "__tests__", "__mocks__", "e2e", "cypress", "playwright", "docs", "doc", "examples",
    "scripts", "migrations", "seeds", "fixtures", "bench", "benchmarks", "public", "static", "vendor", ".husky",
})
TEST_FILE_PATTERNS = ("*.test.*", "*.spec.*", "*-test.*", "*_test.*", "test-*.*", "test.*")
CONFIG_FILE_PATTERNS = ("*.config.*", ".*rc.*", "jest.setup*", "jest.preset*", "vitest.setup*", "setupTests.*",
                        "Gruntfile.*",
                        "gulpfile.*", "*.d.ts", "*.d.mts", "*.d.cts")
LOCK_FILES = (("package-lock.json", "npm"), ("npm-shrinkwrap.json", "npm"), ("pnpm-lock.yaml", "pnpm"),
              ("yarn.lock", "yarn"), ("bun.lockb", "bun"))
RUNNERS = ("vitest", "jest", "mocha", "node-test")
MAX_SCRIPT_DEPTH = 3


@dataclass(frozen=True)
class PackageJson:
    """The parts of package.json the toolchain uses."""

    name: str = ""
    scripts: dict[str, str] = field(default_factory=dict)
    dependencies: dict[str, str] = field(default_factory=dict)
    dev_dependencies: dict[str, str] = field(default_factory=dict)
    engines_node: str | None = None
    module_type: str = "commonjs"
    workspaces: tuple[str, ...] = ()
    package_manager: str | None = None
    has_jest_key: bool = False
    problems: tuple[str, ...] = ()

    @property
    def all_dependencies(self) -> dict[str, str]:
        return {**self.dependencies, **self.dev_dependencies}


@dataclass(frozen=True)
class TestCommand:
    """The runner the project uses and the test paths its command names."""

    __test__ = False
    runner: str                  # vitest, jest, mocha or node-test
    paths: tuple[str, ...] = ()
    typescript: str | None = None  # how node-test/mocha load TypeScript: "tsx" or "ts-node"
    source: str = ""             # what decided it, for the report
    notes: tuple[str, ...] = ()


def read_package_json(folder: Path) -> PackageJson | None:
    path = folder / "package.json"
    if not path.is_file() or path.is_symlink():
        return None
    if path.stat().st_size > MAX_PACKAGE_JSON_BYTES:
        return PackageJson(problems=("package.json is larger than 1 MB; ignored",))
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as error:
        return PackageJson(problems=(f"package.json is not valid JSON ({error}); its dependencies were not read",))
    if not isinstance(data, dict):
        return PackageJson(problems=("package.json does not hold an object",))
    engines = data.get("engines") if isinstance(data.get("engines"), dict) else {}
    workspaces = data.get("workspaces")
    if isinstance(workspaces, dict):
        workspaces = workspaces.get("packages")
    return PackageJson(
        name=str(data.get("name") or ""),
        scripts=_strings(data.get("scripts")),
        dependencies=_strings(data.get("dependencies")),
        dev_dependencies=_strings(data.get("devDependencies")),
        engines_node=engines.get("node") if isinstance(engines.get("node"), str) else None,
        module_type="module" if data.get("type") == "module" else "commonjs",
        workspaces=tuple(item for item in workspaces or [] if isinstance(item, str)) if isinstance(workspaces, list)
        else (),
        package_manager=data.get("packageManager") if isinstance(data.get("packageManager"), str) else None,
        has_jest_key=isinstance(data.get("jest"), dict),
    )


def _strings(value: object) -> dict[str, str]:
    return {str(key): item for key, item in value.items() if isinstance(item, str)} if isinstance(value, dict) else {}


def lock_file(folder: Path) -> tuple[str | None, str]:
    """(the lock file, the package manager it belongs to); (None, "npm") without one."""
    for name, manager in LOCK_FILES:
        if (folder / name).is_file() and not (folder / name).is_symlink():
            return name, manager
    return None, "npm"


def is_yarn_berry(folder: Path) -> bool:
    try:
        with (folder / "yarn.lock").open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(2048)
    except OSError:
        return False
    return "__metadata:" in head


# ---------------------------------------------------------------- the test runner

def find_test_command(folder: Path, package: PackageJson, *, declared: str | None = None,
                 declared_source: str = "") -> TestCommand | None:
    """The runner that runs this project's tests: from the declared command (manifest, CI), then scripts.test
    (following `npm run` chains), then the dev dependencies and config files, then node's own test runner when
    there are test files. None when the project has no tests to run."""
    notes: list[str] = []
    for text, source in ((declared, declared_source), (package.scripts.get("test"), "package.json scripts.test")):
        if not text:
            continue
        found = _runner_in(text, package, depth=0)
        if found is not None:
            runner, paths = found
            return TestCommand(runner, paths=tuple(path for path in paths if _inside(folder, path)),
                               typescript=_typescript_loader(text, package, runner), source=source,
                               notes=tuple(notes))
        if source == declared_source:
            notes.append(f"{source}: {text!r} runs no test runner the service knows (Jest, Vitest, Mocha, "
                         f"node --test); the runner was found from the project instead")
    dependencies = package.all_dependencies
    for runner, markers in (("vitest", ("vitest.config.*", "vitest.workspace.*")),
                            ("jest", ("jest.config.*",)), ("mocha", (".mocharc*",))):
        configs = [name for name in _names(folder) if any(fnmatch(name, marker) for marker in markers)]
        if runner in dependencies or configs or (runner == "jest" and package.has_jest_key):
            return TestCommand(runner, typescript=_typescript_loader("", package, runner),
                               source=configs[0] if configs else "package.json devDependencies", notes=tuple(notes))
    if find_test_files(folder, package=package):
        return TestCommand("node-test", typescript=_typescript_loader("", package, "node-test"),
                           source="test files (node's built-in test runner)", notes=tuple(notes))
    return None


def _runner_in(text: str, package: PackageJson, depth: int) -> tuple[str, list[str]] | None:
    for words in _commands(text):
        words = _peel(words)
        if not words:
            continue
        name = words[0].rsplit("/", 1)[-1]
        if name in ("npm", "pnpm", "yarn") and depth < MAX_SCRIPT_DEPTH:
            script = _script_name(words)
            if script and script in package.scripts:
                found = _runner_in(package.scripts[script], package, depth + 1)
                if found is not None:
                    return found
            continue
        runner = {"vitest": "vitest", "jest": "jest", "react-scripts": "jest", "craco": "jest", "mocha": "mocha",
                  "ts-mocha": "mocha", "_mocha": "mocha"}.get(name)
        if name in ("node", "tsx", "ts-node") and "--test" in words:
            runner = "node-test"
        if runner is None:
            continue
        return runner, _positional(words[1:], runner)
    return None


def _commands(text: str) -> list[list[str]]:
    commands = []
    for part in re.split(r"&&|\|\||;|\n", text):
        try:
            words = shlex.split(part)
        except ValueError:
            continue
        if words:
            commands.append(words)
    return commands


def _peel(words: list[str]) -> list[str]:
    """The command itself, without `VAR=value`, cross-env, dotenv, npx and the like in front."""
    words = list(words)
    changed = True
    while words and changed:
        changed = False
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words.pop(0)
            changed = True
        if words and words[0] in ("npx", "pnpx", "cross-env", "env", "dotenv", "c8", "nyc", "node_modules/.bin/c8"):
            words.pop(0)
            while words and (words[0].startswith("-") or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0])):
                words.pop(0)
            if words and words[0] == "--":
                words.pop(0)
            changed = True
        if len(words) > 1 and words[0] in ("pnpm", "yarn") and words[1] in ("exec", "dlx"):
            words = words[2:]
            changed = True
    return words


def _script_name(words: list[str]) -> str | None:
    """`npm test`, `npm run test:unit`, `yarn test:unit`, `pnpm run x` -> the script they run."""
    rest = [word for word in words[1:] if not word.startswith("-")]
    if not rest:
        return None
    if rest[0] in ("run", "run-script"):
        return rest[1] if len(rest) > 1 else None
    if rest[0] in ("test", "t"):
        return "test"
    return rest[0] if words[0] in ("yarn", "pnpm") else None


def _positional(args: list[str], runner: str) -> list[str]:
    """Test files or folders the command names (options and their values left out)."""
    paths = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = "=" not in arg and arg in ("--config", "-c", "--reporter", "--require", "-r", "--import",
                                              "--timeout", "-t", "--testTimeout", "--project", "--dir", "--root",
                                              "--environment", "--pool", "--test-reporter", "--ui", "--spec")
            continue
        if runner == "vitest" and arg in ("run", "watch", "dev", "related", "bench"):
            continue
        paths.append(arg)
    return paths


def _typescript_loader(text: str, package: PackageJson, runner: str) -> str | None:
    if runner not in ("node-test", "mocha"):
        return None
    dependencies = package.all_dependencies
    if "tsx" in text or "tsx" in dependencies:
        return "tsx"
    if "ts-node" in text or "ts-node" in dependencies:
        return "ts-node"
    return None


def _inside(folder: Path, relative: str) -> bool:
    if relative.startswith("/") or ".." in Path(relative).parts or any(char in relative for char in "*?{["):
        return False
    target = folder / relative
    return target.exists() and not target.is_symlink()


def _names(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False))
    except OSError:
        return []


# ---------------------------------------------------------------- the learner's sources

def is_test_file(name: str) -> bool:
    return name.endswith(SOURCE_SUFFIXES) and any(fnmatch(name, pattern) for pattern in TEST_FILE_PATTERNS)


def _walk(root: Path, *, skip: frozenset[str]):
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.startswith(".")
                             and not (here / d).is_symlink())
        for name in sorted(filenames):
            path = here / name
            if name.endswith(SOURCE_SUFFIXES) and not path.is_symlink() and path.is_file():
                yield here, name, path


def source_files(root: Path) -> list[Path]:
    """The learner's application files (JavaScript and TypeScript), never tests, configs or dependencies."""
    return [path for _here, name, path in _walk(root, skip=SKIPPED_DIRS)
            if not is_test_file(name) and not any(fnmatch(name, pattern) for pattern in CONFIG_FILE_PATTERNS)]


def find_test_files(root: Path, *, package: PackageJson | None = None) -> list[Path]:
    """Test files: *.test.*/*.spec.* anywhere, and every source file in test/, tests/ or __tests__/."""
    found = []
    for here, name, path in _walk(root, skip=SKIPPED_DIRS - {"test", "tests", "__tests__"}):
        in_test_dir = any(part in ("test", "tests", "__tests__") for part in here.relative_to(root).parts)
        if is_test_file(name) or (in_test_dir and not name.endswith((".d.ts",))
                                  and not any(fnmatch(name, p) for p in CONFIG_FILE_PATTERNS)
                                  and "fixture" not in name and "helper" not in name):
            found.append(path)
    return found


IGNORE_COMMENT = re.compile(r"/\*\s*(istanbul|c8|v8)\s+ignore\b[^*]*\*/|//\s*(istanbul|c8|v8)\s+ignore\b")


def ignore_comments(root: Path, files: list[Path]) -> dict[str, int]:
    """How many coverage-ignore comments (istanbul, c8, v8) each source file has."""
    counts = {}
    for path in files:
        try:
            found = len(IGNORE_COMMENT.findall(path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
        if found:
            counts[path.relative_to(root).as_posix()] = found
    return counts


_RUNTIME_CODE = re.compile(r"\b(function|class|const|let|var|return|new|if|for|while|switch|throw|await)\b|=>|\w\(")
_TYPE_ONLY_LINE = re.compile(r"^\s*(import\s+type\b|export\s+type\b|export\s+interface\b|interface\b|type\b|"
                             r"export\s+\*\s+from|export\s+\{[^}]*\}\s+from)")


def has_runtime_code(path: Path) -> bool:
    """False for a TypeScript file of types only (interfaces, type aliases): it compiles to nothing to cover."""
    if not path.name.endswith((".ts", ".mts", ".cts", ".tsx")):
        return True
    try:
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(encoding="utf-8", errors="replace"), flags=re.DOTALL)
    except OSError:
        return True
    code = []
    depth = 0
    for line in text.splitlines():
        if depth == 0 and _TYPE_ONLY_LINE.match(line):
            depth += line.count("{") - line.count("}")
            continue
        if depth > 0:
            depth += line.count("{") - line.count("}")
            continue
        code.append(line)
    return bool(_RUNTIME_CODE.search("\n".join(code)))
