"""Authorship evidence: commits and surviving lines per author e-mail, read from the history a clone fetches."""

import subprocess
from pathlib import Path

import pytest

from assessor.engine.authorship import Authorship, HistoryLimits
from assessor.engine.intake import SourcePolicy, clone

LOCAL = SourcePolicy(allow_local=True)


def commit(repo: Path, files: dict[str, str], *, email: str, when: str, message: str = "work") -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), "GIT_AUTHOR_NAME": email.split("@")[0],
           "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": email,
           "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "GIT_CONFIG_GLOBAL": "/dev/null"}
    run = lambda *args: subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=repo, env=env,  # noqa: E731
                                       check=True, capture_output=True)
    if not (repo / ".git").exists():
        run("init", "-q")
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    run("add", "-A")
    run("commit", "-q", "-m", message)


def _clone(repo: Path, dest: Path, **limits) -> Authorship:
    checkout = clone(f"file://{repo}", dest, policy=LOCAL, history=HistoryLimits(**limits))
    assert checkout.authorship is not None
    return checkout.authorship


@pytest.fixture
def shared_history(tmp_path):
    """A friend starts the project; the learner writes most of it, from another address for a while."""
    repo = tmp_path / "capstone"
    repo.mkdir()
    commit(repo, {"app.py": "a = 1\nb = 2\nc = 3\nd = 4\n"}, email="friend@example.org", when="2024-01-05T10:00:00Z")
    commit(repo, {"service.py": "".join(f"x{n} = {n}\n" for n in range(12))}, email="Learner@Example.org",
           when="2024-02-01T09:00:00+02:00")
    commit(repo, {"docs/runbook.md": "# Runbook\n\nRestart it.\n", "app.py": "a = 1\nb = 2\nc = 30\nd = 40\n"},
           email="learner.laptop@example.org", when="2024-03-10T18:30:00Z")
    return repo


def test_commits_and_lines_are_counted_per_author(shared_history, tmp_path):
    found = _clone(shared_history, tmp_path / "checkout")
    assert found.complete and found.commits == 3 and not found.single_commit
    by_email = {author.email: author for author in found.authors}
    assert by_email["friend@example.org"].commits == 1 and by_email["friend@example.org"].lines == 2
    assert by_email["learner@example.org"].lines == 12  # addresses compared in lower case
    assert by_email["learner.laptop@example.org"].lines == 5
    assert found.lines == 19 and found.files_read == found.files_total == 3
    assert found.first_commit_at == "2024-01-05T10:00:00+00:00"
    assert by_email["learner@example.org"].first_commit_at == "2024-02-01T07:00:00+00:00"  # in UTC
    assert found.last_commit_at == "2024-03-10T18:30:00+00:00"

    share = found.share(["LEARNER@example.org", "learner.laptop@example.org"])
    assert (share.commits, share.lines, share.commits_percent, share.lines_percent) == (2, 17, 66.7, 89.5)
    assert found.share(["learner@example.org"]).lines_percent == 63.2
    assert found.share([]).lines == 0
    assert Authorship.from_dict(found.to_dict()) == found


def test_the_learners_own_mailmap_cannot_claim_other_peoples_lines(shared_history, tmp_path):
    commit(shared_history, {".mailmap": "Learner <learner@example.org> <friend@example.org>\n"},
           email="learner@example.org", when="2024-03-11T10:00:00Z")
    found = _clone(shared_history, tmp_path / "checkout")
    assert {author.email: author.lines for author in found.authors}["friend@example.org"] == 2


def test_a_single_commit_is_noted_as_such(tmp_path):
    repo = tmp_path / "squashed"
    repo.mkdir()
    commit(repo, {"app.py": "print('all at once')\n"}, email="learner@example.org", when="2024-05-01T12:00:00Z")
    found = _clone(repo, tmp_path / "checkout")
    assert found.single_commit and found.complete and found.commits == 1
    assert found.to_dict()["single_commit"] is True


def test_a_history_longer_than_the_limit_is_read_in_part_and_said_so(shared_history, tmp_path):
    found = _clone(shared_history, tmp_path / "checkout", commits=2)
    assert found.commits == 2 and not found.complete and not found.single_commit
    assert any("only the last 2 commits were read" in note for note in found.notes)


def test_without_history_limits_the_clone_stays_shallow(shared_history, tmp_path):
    checkout = clone(f"file://{shared_history}", tmp_path / "checkout", policy=LOCAL)
    assert checkout.authorship is None
    count = subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=checkout.path, capture_output=True, text=True)
    assert count.stdout.strip() == "1"


def test_blame_stops_at_its_file_limit_and_says_so(tmp_path):
    repo = tmp_path / "many"
    repo.mkdir()
    commit(repo, {f"m{n}.py": f"v = {n}\n" for n in range(5)}, email="learner@example.org", when="2024-05-01T12:00:00Z")
    found = _clone(repo, tmp_path / "checkout", blame_files=3)
    assert found.files_read == 3 and found.files_total == 5 and found.lines == 3
    assert any("first 3 of 5 files" in note for note in found.notes)
