"""Find the learner's own Python source in a checkout, skipping tests, environments and vendored code."""

import os
from pathlib import Path

# Directory names that never hold the learner's own application code.
SKIPPED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "env", ".env", "virtualenv",
    "site-packages", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    "build", "dist", ".eggs", "migrations", "alembic", "vendor", "vendored", "third_party",
    "_vendor", "tests", "test", "testing", "docs", "examples", "scripts", "bench", "benchmarks",
})
# Top-level files that are project plumbing, not application code.
SKIPPED_FILES = frozenset({"setup.py", "conftest.py", "noxfile.py", "fabfile.py", "manage.py"})


def is_test_file(name: str) -> bool:
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def is_inside(path: Path, root: Path) -> bool:
    """True when `path`, with every symlink resolved, stays inside `root`."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def python_source_files(root: Path) -> list[Path]:
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
            if not name.endswith(".py") or is_test_file(name) or path.is_symlink():
                continue
            if here == root and name in SKIPPED_FILES:
                continue
            found.append(path)
    return found


def learner_packages(root: Path) -> list[str]:
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
            elif (entry.is_file() and entry.suffix == ".py" and not is_test_file(entry.name)
                  and not (base == root and entry.name in SKIPPED_FILES)):
                candidates.append(relative)
    return candidates
