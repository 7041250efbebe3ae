"""Find the learner's own Python source in a project, skipping tests, packaging, environments and vendored code."""

import os
from collections.abc import Sequence
from fnmatch import fnmatch
from pathlib import Path

from assessor.engine.toolchains.python.pytest_config import DEFAULT_PYTHON_FILES

# Directory names that never hold the learner's own application code.
SKIPPED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "env", ".env", "virtualenv",
    "site-packages", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    "build", "dist", ".eggs", "migrations", "alembic", "vendor", "vendored", "third_party",
    "_vendor", "tests", "test", "testing", "docs", "examples", "scripts", "bench", "benchmarks",
})
# Packaging, tooling and server configuration files, wherever they are: never application code.
PACKAGING_FILES = frozenset({
    "setup.py", "conftest.py", "noxfile.py", "fabfile.py", "gunicorn.conf.py", "gunicorn_conf.py",
    "gunicorn_config.py", "gunicorn.config.py", "gunicorncfg.py", "uvicorn_conf.py", "hypercorn.conf.py",
    "celeryconfig.py", "locustfile.py", "pyinstaller.spec.py",
})
# Top-level files that are project plumbing, not application code.
TOP_LEVEL_PLUMBING = frozenset({"manage.py"})


def is_test_file(name: str, patterns: Sequence[str] = DEFAULT_PYTHON_FILES) -> bool:
    """True for a file pytest would collect as tests with these `python_files` patterns, and for conftest.py."""
    return name == "conftest.py" or any(fnmatch(name, pattern) for pattern in patterns)


def _excluded_file(name: str, *, top_level: bool, patterns: Sequence[str]) -> bool:
    return (not name.endswith(".py") or is_test_file(name, patterns) or name in PACKAGING_FILES
            or (top_level and name in TOP_LEVEL_PLUMBING))


def python_source_files(root: Path, *, test_patterns: Sequence[str] = DEFAULT_PYTHON_FILES) -> list[Path]:
    """The learner's application .py files under `root`, sorted, as real paths inside the checkout.

    Symlinked files and directories are never followed: a link could point anywhere on the host.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIPPED_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
            and not (here / d).is_symlink()
        )
        for name in sorted(filenames):
            path = here / name
            if path.is_symlink() or _excluded_file(name, top_level=here == root, patterns=test_patterns):
                continue
            found.append(path)
    return found


def learner_packages(root: Path, *, test_patterns: Sequence[str] = DEFAULT_PYTHON_FILES) -> list[str]:
    """Directories (relative to `root`) whose code coverage should measure: packages and top-level modules.

    Looks at the top level and at a `src/` layout; returns paths like "app", "src/shop" or "service.py".
    """
    candidates: list[str] = []
    for base in (root, root / "src"):
        if not base.is_dir() or base.is_symlink():
            continue
        for entry in sorted(base.iterdir()):
            if entry.is_symlink() or entry.name.startswith(".") or entry.name in SKIPPED_DIRS:
                continue
            relative = entry.relative_to(root).as_posix()
            if entry.is_dir() and not entry.name.endswith(".egg-info") and (entry / "__init__.py").is_file():
                candidates.append(relative)
            elif entry.is_file() and not _excluded_file(entry.name, top_level=base == root, patterns=test_patterns):
                candidates.append(relative)
    return candidates


def test_files(root: Path, *, patterns: Sequence[str] = DEFAULT_PYTHON_FILES, limit: int = 2000) -> list[str]:
    """The test modules under `root` (relative to it, sorted) that pytest's discovery would find, conftest aside."""
    found: list[str] = []
    walked = SKIPPED_DIRS - {"tests", "test", "testing"}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in walked and not d.startswith(".")
                             and not (here / d).is_symlink())
        for name in sorted(filenames):
            if name.endswith(".py") and name != "conftest.py" and is_test_file(name, patterns) \
                    and not (here / name).is_symlink():
                found.append((here / name).relative_to(root).as_posix())
                if len(found) >= limit:
                    return found
    return found
