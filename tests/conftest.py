"""Shared fixtures: real git repositories built on disk for each test."""

import subprocess
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from assessor.engine.rubric import Criterion, Level

from tests.mailserver import inbox  # noqa: F401  (fixture: a real SMTP server)

def pytest_configure(config):
    """Every app and CLI the tests start shares one cache of the published JSON-LD contexts (fetched once)."""
    import os

    from tests.jsonld_contexts import cache_dir

    os.environ.setdefault("ASSESSOR_JSONLD_CACHE_DIR", str(cache_dir()))


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Learner",
    "GIT_AUTHOR_EMAIL": "learner@example.org",
    "GIT_COMMITTER_NAME": "Test Learner",
    "GIT_COMMITTER_EMAIL": "learner@example.org",
}


def git(repo: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), **GIT_IDENTITY}
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=repo, env=env, check=True, capture_output=True, text=True,
    )
    return done.stdout.strip()


def write_tree(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))


@pytest.fixture
def make_repo(tmp_path):
    """Factory: make_repo({"path": "content", ...}) -> Path of a committed git repo."""
    counter = iter(range(1000))

    def factory(files: dict[str, str | bytes], *, name: str | None = None, message: str = "capstone") -> Path:
        repo = tmp_path / (name or f"repo{next(counter)}")
        repo.mkdir()
        git(repo, "init", "-q")
        write_tree(repo, files)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", message)
        return repo

    return factory


def with_strength(rubric, *, mutants: int):
    """The rubric with a test-strength criterion sampling `mutants` changes."""
    levels = (Level(0, 0, "few changes noticed"), Level(1, 10, "most noticed", {"min_noticed": 60.0}))
    strength = Criterion(id="strength", kind="strength", title="Tests notice changes", weight=10, levels=levels,
                         mutants=mutants)
    return replace(rubric, criteria=(*rubric.criteria, strength))
