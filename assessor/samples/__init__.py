"""Sample capstone repositories for the demo, the benchmark and end-to-end tests."""

import os
import shutil
import subprocess
from pathlib import Path

SAMPLE_KINDS = ("passing", "falling-short", "node-passing")

HERE = Path(__file__).resolve().parent
PASSING_TREE = HERE / "passing"
FALLING_SHORT_OVERLAY = HERE / "falling_short_overlay"
# A Node.js + TypeScript capstone (Express, Vitest, supertest, a Redis-backed test) for the Scalable Architectures
# course, which is taught in Node.js.
NODE_PASSING_TREE = HERE / "node_passing"

# The falling-short capstone is the passing one with most of the documents and two thirds of the tests gone,
# then the overlay on top: a truncated decision memo, a tangled function and a test that fails.
FALLING_SHORT_REMOVED_DIRS = ("docs", "dashboards", "deploy")
FALLING_SHORT_KEPT_TESTS = frozenset({"conftest.py", "test_api_items.py", "test_api_reservations.py"})

# Written by create_sample_repo rather than shipped, so the packaged tree holds no dotfiles.
GITIGNORE = "__pycache__/\n*.pyc\n.pytest_cache/\n.coverage\n*.egg-info/\n.venv/\n*.sqlite3\nnode_modules/\ncoverage/\n"
# Left behind when the sample's own tests are run in place; never part of a sample.
_BUILD_LITTER = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".coverage", "*.egg-info",
                                       "node_modules", "coverage")

_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Sample Learner",
    "GIT_AUTHOR_EMAIL": "learner@example.org",
    "GIT_COMMITTER_NAME": "Sample Learner",
    "GIT_COMMITTER_EMAIL": "learner@example.org",
    # A fixed date keeps the commit reproducible apart from the tree it records.
    "GIT_AUTHOR_DATE": "2024-03-22T12:00:00Z",
    "GIT_COMMITTER_DATE": "2024-03-22T12:00:00Z",
}


def create_sample_repo(kind: str, dest: Path) -> Path:
    """Write the sample capstone `kind` to `dest` (which must not exist) as a git repository with one commit."""
    if kind not in SAMPLE_KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; expected one of {', '.join(SAMPLE_KINDS)}")
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists")
    shutil.copytree(NODE_PASSING_TREE if kind == "node-passing" else PASSING_TREE, dest, ignore=_BUILD_LITTER)
    if kind == "falling-short":
        _make_falling_short(dest)
    (dest / ".gitignore").write_text(GITIGNORE)
    _commit_all(dest, f"Capstone: inventory reservation service ({kind} sample)")
    return dest


def _make_falling_short(root: Path) -> None:
    for name in FALLING_SHORT_REMOVED_DIRS:
        shutil.rmtree(root / name)
    for test_file in (root / "tests").glob("*.py"):
        if test_file.name not in FALLING_SHORT_KEPT_TESTS:
            test_file.unlink()
    shutil.copytree(FALLING_SHORT_OVERLAY, root, ignore=_BUILD_LITTER, dirs_exist_ok=True)


def _commit_all(repo: Path, message: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
        **_GIT_IDENTITY,
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-gpg-sign", "-m", message]):
        subprocess.run(
            ["git", "-c", "init.defaultBranch=main", *args],
            cwd=repo, env=env, check=True, capture_output=True, text=True,
        )
