"""The sample capstones: real git repositories whose own test suites pass (passing) or fail (falling-short)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assessor.samples import SAMPLE_KINDS, create_sample_repo


def git(repo: Path, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def run_sample_tests(repo: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": "src", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120,
    )


def count_test_functions(repo: Path) -> int:
    files = (repo / "tests").glob("test_*.py")
    return sum(len(re.findall(r"^def test_", path.read_text(), re.MULTILINE)) for path in files)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    return {kind: create_sample_repo(kind, root / kind) for kind in SAMPLE_KINDS}


@pytest.mark.parametrize("kind", SAMPLE_KINDS)
def test_a_sample_is_a_git_repository_with_one_commit_and_a_clean_tree(samples, kind):
    repo = samples[kind]
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    manifest = "package.json" if kind == "node-passing" else "pyproject.toml"
    assert manifest in git(repo, "ls-files").split()


def test_the_passing_sample_has_a_full_suite_and_its_documents(samples):
    repo = samples["passing"]
    assert count_test_functions(repo) >= 35
    for document in ("docs/database-design.md", "docs/slo.yaml", "docs/runbooks/reservations-failing.md"):
        assert (repo / document).is_file(), document
    assert not list(repo.rglob("__pycache__"))


def test_the_falling_short_sample_lost_documents_and_tests_and_gained_a_tangled_function(samples):
    passing, short = samples["passing"], samples["falling-short"]
    assert count_test_functions(short) < count_test_functions(passing) / 2
    assert sorted(path.relative_to(short).as_posix() for path in (short / "docs").rglob("*.md")) == [
        "docs/decisions/0001-use-sqlite.md"
    ]
    assert "## Consequences" not in (short / "docs/decisions/0001-use-sqlite.md").read_text()
    assert (short / "src/inventory_service/reporting.py").is_file()


@pytest.mark.slow
def test_the_passing_sample_suite_passes(samples):
    result = run_sample_tests(samples["passing"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_the_falling_short_sample_suite_runs_and_fails(samples):
    result = run_sample_tests(samples["falling-short"])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 failed" in result.stdout


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown sample kind"):
        create_sample_repo("excellent", tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_an_existing_destination_is_refused(tmp_path):
    (tmp_path / "repo").mkdir()
    with pytest.raises(FileExistsError):
        create_sample_repo("passing", tmp_path / "repo")


def test_the_node_sample_is_a_typescript_service_with_a_lock_file_and_its_documents(samples):
    repo = samples["node-passing"]
    files = git(repo, "ls-files").split()
    for name in ("package-lock.json", "tsconfig.json", "docker-compose.yml", "docs/database-design.md",
                 "src/app.ts", "test/redis.test.ts"):
        assert name in files, name
    assert not any(name.startswith(("node_modules/", "coverage/")) for name in files)
    tests = sum(text.count("test(") + text.count("test.each(") for text in
                (path.read_text() for path in (repo / "test").glob("*.test.ts")))
    assert tests >= 25
