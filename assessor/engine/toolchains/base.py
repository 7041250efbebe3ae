"""What every toolchain shares: how a project was recognised, and finding the folder that holds it."""

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assessor.errors import EnvironmentBuildError

# Folders that never hold the project being assessed (dependencies, tooling, documentation).
NEVER_PROJECT_DIRS = frozenset({
    ".git", ".github", ".venv", "venv", "env", "node_modules", "docs", "doc", "documentation", "site-packages",
    "__pycache__", "dist", "build", "coverage", "htmlcov", ".idea", ".vscode", "examples", "scripts",
})
MAX_TEST_SCAN_ENTRIES = 20_000


@dataclass(frozen=True)
class Detection:
    """A toolchain's claim on a checkout: where the project is, and the files that identified it."""

    toolchain: str
    root: str | None                   # relative to the checkout ("." for its top); None: several, none chosen
    detected_from: tuple[str, ...]     # relative to the checkout
    has_tests: bool = False
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"name": self.toolchain, "root": self.root, "detected_from": list(self.detected_from)}


@dataclass(frozen=True)
class RootChoice:
    """The project folder a toolchain found (None when it found none, or several it could not choose from)."""

    root: str | None
    markers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


Markers = Callable[[Path], tuple[str, ...]]
HasTests = Callable[[Path], bool]


def find_root(checkout: Path, *, markers: Markers, has_tests: HasTests, hint: str | None = None,
              kind: str = "project") -> RootChoice:
    """The folder holding the project: `hint` when given, else the checkout itself when it has markers, else the
    one top-level folder that has them (`project/`, `backend/`, `service/`...). Several candidates are reported;
    the one holding tests wins if only one does."""
    notes: list[str] = []
    if hint:
        folder = checkout / hint
        if folder.is_dir() and not folder.is_symlink():
            found = markers(folder)
            return RootChoice(hint, tuple(f"{hint}/{name}" for name in found))
        notes.append(f"the named project folder {hint!r} does not exist in the repository; looked for the project "
                     f"instead")
    at_top = markers(checkout)
    if at_top:
        return RootChoice(".", at_top, tuple(notes))
    candidates = []
    for entry in sorted(os.scandir(checkout), key=lambda entry: entry.name):
        if entry.name in NEVER_PROJECT_DIRS or entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        found = markers(Path(entry.path))
        if found:
            candidates.append((entry.name, found))
    if len(candidates) == 1:
        name, found = candidates[0]
        return RootChoice(name, tuple(f"{name}/{marker}" for marker in found), tuple(notes))
    if len(candidates) > 1:
        with_tests = [(name, found) for name, found in candidates if has_tests(checkout / name)]
        names = ", ".join(f"{name}/" for name, _ in candidates)
        if len(with_tests) == 1:
            name, found = with_tests[0]
            notes.append(f"several {kind}s found ({names}); assessed {name}/, the only one with tests "
                         f"(name another with root = \"...\" in capstone.toml)")
            return RootChoice(name, tuple(f"{name}/{marker}" for marker in found), tuple(notes))
        notes.append(f"several {kind}s found ({names}): name the one to assess with root = \"...\" in "
                     f"capstone.toml")
    return RootChoice(None, (), tuple(notes))


def any_file(root: Path, predicate: Callable[[str, Path], bool], *, skip_dirs: frozenset[str]) -> bool:
    """True when some file under `root` (links not followed, bounded walk) satisfies predicate(name, folder)."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in skip_dirs and not d.startswith(".")]
        here = Path(dirpath)
        for name in filenames:
            seen += 1
            if predicate(name, here):
                return True
            if seen > MAX_TEST_SCAN_ENTRIES:
                return False
    return False


def run_tool(argv: list[str], *, env: dict[str, str], cwd: Path | str, deadline: float,
             what: str) -> subprocess.CompletedProcess:
    """Run one of the service's own installers (uv, npm, pnpm...) on the host, killed with its whole process group
    at the deadline; a timeout is an EnvironmentBuildError saying `what` took too long."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True, text=True)
    try:
        stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise EnvironmentBuildError(f"{what} took too long and was stopped") from None
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
