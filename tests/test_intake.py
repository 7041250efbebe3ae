"""Tests for assessor.intake: refusing unsafe sources and refs, and cloning real repositories under limits."""

import http.server
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from assessor.errors import IntakeError
from assessor.engine.intake import CloneLimits, SourcePolicy, _check_ref, _one_line, check_source, clone, resolve_commit

LOCAL = SourcePolicy(allow_local=True)
SSH = SourcePolicy(allowed_schemes=frozenset({"https", "ssh"}))
GITHUB_ONLY = SourcePolicy(allowed_hosts=frozenset({"github.com"}))
SECRET = "s3cr3tT0ken"


def git(repo: Path, *args: str) -> str:
    """Run git in a test repository (conftest's helper is not importable as a module under pytest 9)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), "GIT_AUTHOR_NAME": "Test Learner",
           "GIT_AUTHOR_EMAIL": "learner@example.org", "GIT_COMMITTER_NAME": "Test Learner",
           "GIT_COMMITTER_EMAIL": "learner@example.org"}
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def plain_git_env(home: Path) -> dict[str, str]:
    """Environment for a control run of stock git, to show what our clone prevents."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


# ---------------------------------------------------------------------------------------------------------------
# Sources: refused and accepted forms (no network, no clone)
# ---------------------------------------------------------------------------------------------------------------

REFUSED_SOURCES = [
    ("ext::sh -c touch% /tmp/pwned", SourcePolicy(), "transport"),
    ("fd::17", SourcePolicy(), "transport"),
    ("foo::https://github.com/a/b.git", SourcePolicy(), "transport"),
    ("--upload-pack=touch /tmp/pwned", SourcePolicy(), "must not start with '-'"),
    ("-oProxyCommand=touch /tmp/pwned", SSH, "must not start with '-'"),
    (f"https://learner:{SECRET}@github.com/a/b.git", SourcePolicy(), "password or token"),
    (f"https://{SECRET}@github.com/a/b.git", SourcePolicy(), "password or token"),
    (f"ssh://git:{SECRET}@github.com/a/b.git", SSH, "password or token"),
    (f"git:{SECRET}@github.com:a/b.git", SSH, "password or token"),
    ("file:///srv/repos/capstone", SourcePolicy(), "local paths and file:// URLs are not accepted"),
    ("/srv/repos/capstone", SourcePolicy(), "local paths and file:// URLs are not accepted"),
    ("./capstone", SourcePolicy(), "local paths and file:// URLs are not accepted"),
    ("ssh://git@github.com/a/b.git", SourcePolicy(), "ssh (user@host:path) repository URLs are not accepted"),
    ("git@github.com:a/b.git", SourcePolicy(), "ssh (user@host:path) repository URLs are not accepted"),
    ("http://github.com/a/b.git", SourcePolicy(), "http:// repository URLs are not accepted"),
    ("git://github.com/a/b.git", SourcePolicy(), "git:// repository URLs are not accepted"),
    ("ftp://github.com/a/b.git", SourcePolicy(), "ftp:// repository URLs are not accepted"),
    ("https://evil.example/a/b.git", GITHUB_ONLY, "repositories on evil.example are not accepted"),
    ("https://github.com.evil.example/a/b.git", GITHUB_ONLY, "are not accepted here (accepted hosts: github.com)"),
    ("ssh://-oProxyCommand=x/a.git", SSH, "valid host name"),
    ("https://github.com/a/b.git\n--upload-pack=x", SourcePolicy(), "line break or control character"),
    ("https://github.com/a/b\r.git", SourcePolicy(), "line break or control character"),
    ("https://github.com/a/b.git\x00", SourcePolicy(), "line break or control character"),
    ("", SourcePolicy(), "no repository URL"),
    ("   ", SourcePolicy(), "no repository URL"),
    ("https://github.com/" + "a" * 2000, SourcePolicy(), "longer than"),
    ("https://github.com", SourcePolicy(), "no repository path"),
    ("https://github.com/a b.git", SourcePolicy(), "spaces or characters that are not allowed"),
    ("https://github.com/a/b.git?x=1", SourcePolicy(), "'?' or '#'"),
    ("https://github.com:notaport/a/b.git", SourcePolicy(), "not a valid URL"),
]


@pytest.mark.parametrize(("source", "policy", "expected"), REFUSED_SOURCES)
def test_refused_sources_give_one_clear_line_without_secrets(source, policy, expected):
    with pytest.raises(IntakeError) as refused:
        check_source(source, policy)
    message = str(refused.value)
    assert expected in message
    assert SECRET not in message
    assert "\n" not in message and "Traceback" not in message


ACCEPTED_SOURCES = [
    ("https://github.com/Org/Repo.git", SourcePolicy(), "https://github.com/Org/Repo.git"),
    ("  HTTPS://GitHub.COM/Org/Repo.git ", SourcePolicy(), "https://github.com/Org/Repo.git"),
    ("https://github.com/org/repo", GITHUB_ONLY, "https://github.com/org/repo"),
    ("git@github.com:org/repo.git", SSH, "git@github.com:org/repo.git"),
    ("ssh://git@GitHub.com:22/org/repo.git", SSH, "ssh://git@github.com:22/org/repo.git"),
    ("git+ssh://git@github.com/org/repo.git", SSH, "ssh://git@github.com/org/repo.git"),
    ("https://[::1]:8443/org/repo.git", SourcePolicy(internal_hosts=frozenset({"::1"})), "https://[::1]:8443/org/repo.git"),
]


@pytest.mark.parametrize(("source", "policy", "normalised"), ACCEPTED_SOURCES)
def test_accepted_sources_are_normalised(source, policy, normalised):
    assert check_source(source, policy) == normalised


def test_local_path_and_file_url_become_the_same_file_url(make_repo):
    repo = make_repo({"app.py": "x = 1\n"})
    expected = f"file://{repo}"
    assert check_source(str(repo), LOCAL) == expected
    assert check_source(f"file://{repo}", LOCAL) == expected


def test_missing_local_path_is_refused_before_git_runs(tmp_path):
    with pytest.raises(IntakeError, match="local repository not found"):
        check_source(str(tmp_path / "nowhere"), LOCAL)


def test_refused_source_never_creates_the_destination(tmp_path):
    dest = tmp_path / "checkout"
    with pytest.raises(IntakeError, match="transport"):
        clone("ext::sh -c 'touch /tmp/pwned'", dest)
    assert not dest.exists()


# ---------------------------------------------------------------------------------------------------------------
# Refs: git's check-ref-format rules
# ---------------------------------------------------------------------------------------------------------------

BAD_REFS = ["", " ", "..", "a..b", "main@{1}", "@", "with space", "tab\tname", "new\nline", "a:b", "a~1", "a^",
            "a*", "a?", "a[0]", "a\\b", "/main", "main/", "a//b", ".hidden", "a/.b", "main.lock", "main.",
            "-delete", "--upload-pack=touch /tmp/pwned"]


@pytest.mark.parametrize("ref", BAD_REFS)
def test_bad_refs_are_refused_before_anything_runs(ref, tmp_path):
    dest = tmp_path / "checkout"
    with pytest.raises(IntakeError, match="not a valid branch|is empty"):
        clone(str(tmp_path), dest, ref=ref, policy=LOCAL)
    assert not dest.exists()
    if ref and not ref.startswith("-"):
        # Our rules must agree with git's own.
        assert subprocess.run(["git", "check-ref-format", "--allow-onelevel", ref]).returncode != 0


@pytest.mark.parametrize("ref", ["main", "feature/login-form", "v1.0.0", "refs/tags/v1.0", "abc1234", "release-2024"])
def test_good_refs_pass_and_git_agrees(ref):
    assert _check_ref(ref) == ref
    assert subprocess.run(["git", "check-ref-format", "--allow-onelevel", ref]).returncode == 0


# ---------------------------------------------------------------------------------------------------------------
# Cloning local repositories
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def two_commit_repo(make_repo):
    """A repo with commit A (tag v1.0, branch 'old') and a newer commit B on main: returns (repo, sha_a, sha_b)."""
    repo = make_repo({"app.py": "version = 1\n"})
    sha_a = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "v1.0", "-m", "first release")
    git(repo, "branch", "old")
    (repo / "app.py").write_text("version = 2\n")
    sha_b = commit_all(repo, "second")
    return repo, sha_a, sha_b


def test_clone_default_branch_is_shallow_and_records_the_commit(two_commit_repo, tmp_path):
    repo, _, sha_b = two_commit_repo
    checkout = clone(str(repo), tmp_path / "checkout", policy=LOCAL)
    assert checkout.commit == sha_b
    assert checkout.ref is None
    assert checkout.source == f"file://{repo}"
    assert checkout.path == tmp_path / "checkout"
    assert (checkout.path / "app.py").read_text() == "version = 2\n"
    assert checkout.file_count == 1
    assert checkout.size_bytes > len("version = 2\n")
    assert git(checkout.path, "rev-list", "--count", "HEAD") == "1"  # depth 1 honoured for a local repo


@pytest.mark.parametrize(("ref", "expected"), [
    ("main", "b"), ("old", "a"), ("v1.0", "a"), ("refs/tags/v1.0", "a"), ("FULL_SHA_A", "a"), ("SHORT_SHA_A", "a"),
])
def test_clone_at_branch_tag_or_sha(two_commit_repo, tmp_path, ref, expected):
    repo, sha_a, sha_b = two_commit_repo
    ref = {"FULL_SHA_A": sha_a, "SHORT_SHA_A": sha_a[:8]}.get(ref, ref)
    checkout = clone(f"file://{repo}", tmp_path / "checkout", ref=ref, policy=LOCAL)
    assert checkout.commit == {"a": sha_a, "b": sha_b}[expected]
    assert checkout.ref == ref
    assert (checkout.path / "app.py").read_text() == ("version = 1\n" if expected == "a" else "version = 2\n")


@pytest.mark.parametrize("ref", ["no-such-branch", "0" * 40, "deadbeef"])
def test_missing_ref_is_a_clear_error_and_dest_is_removed(two_commit_repo, tmp_path, ref):
    repo, _, _ = two_commit_repo
    dest = tmp_path / "checkout"
    with pytest.raises(IntakeError, match=f"no branch, tag or commit '{ref}'"):
        clone(str(repo), dest, ref=ref, policy=LOCAL)
    assert not dest.exists()


def test_directory_that_is_not_a_repository_is_reported_as_not_found(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(IntakeError, match="repository not found"):
        clone(str(tmp_path / "plain"), tmp_path / "checkout", policy=LOCAL)
    assert not (tmp_path / "checkout").exists()


def test_non_empty_destination_is_refused_and_left_alone(make_repo, tmp_path):
    repo = make_repo({"app.py": "x = 1\n"})
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("someone else's file")
    with pytest.raises(IntakeError, match="already exists and is not empty"):
        clone(str(repo), dest, policy=LOCAL)
    assert (dest / "keep.txt").read_text() == "someone else's file"


def test_empty_destination_is_used(make_repo, tmp_path):
    repo = make_repo({"app.py": "x = 1\n"})
    dest = tmp_path / "empty"
    dest.mkdir()
    assert (clone(str(repo), dest, policy=LOCAL).path / "app.py").exists()


def test_submodules_are_not_fetched(make_repo, tmp_path):
    library = make_repo({"lib.py": "secret = 1\n"}, name="library")
    capstone = make_repo({"app.py": "x = 1\n"}, name="capstone")
    git(capstone, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "vendor/library")
    commit_all(capstone, "add submodule")
    checkout = clone(str(capstone), tmp_path / "checkout", policy=LOCAL)
    assert "vendor/library" in (checkout.path / ".gitmodules").read_text()
    assert list((checkout.path / "vendor" / "library").iterdir()) == []
    assert not (checkout.path / ".git" / "modules").exists()


def test_hooks_from_the_repo_or_the_users_git_config_never_run(make_repo, tmp_path, monkeypatch):
    marker = tmp_path / "hook-ran"
    hook = f"#!/bin/sh\ntouch {marker}\n"
    repo = make_repo({"app.py": "x = 1\n", "githooks/post-checkout": hook})
    (repo / "githooks" / "post-checkout").chmod(0o755)
    commit_all(repo, "executable hook")
    git(repo, "config", "core.hooksPath", "githooks")  # repo-local trick: never cloned, must not matter
    (repo / ".git" / "hooks" / "post-checkout").write_text(hook)
    (repo / ".git" / "hooks" / "post-checkout").chmod(0o755)
    # A hostile user-level git config: hooks path and a template directory full of hooks.
    evil_home = tmp_path / "evil-home"
    for hooks in (evil_home / "hooks", evil_home / "template" / "hooks"):
        hooks.mkdir(parents=True)
        (hooks / "post-checkout").write_text(hook)
        (hooks / "post-checkout").chmod(0o755)
    (evil_home / ".gitconfig").write_text(
        f"[core]\n\thooksPath = {evil_home / 'hooks'}\n[init]\n\ttemplateDir = {evil_home / 'template'}\n")
    monkeypatch.setenv("HOME", str(evil_home))

    # Control: stock git with this environment does run the hook.
    subprocess.run(["git", "clone", "-q", str(repo), str(tmp_path / "control")], check=True,
                   env=plain_git_env(evil_home))
    assert marker.exists()
    marker.unlink()

    checkout = clone(str(repo), tmp_path / "checkout", policy=LOCAL)
    assert (checkout.path / "githooks" / "post-checkout").exists()
    assert not marker.exists()
    assert not (checkout.path / ".git" / "hooks").exists()


def test_attributes_cannot_rewrite_files_and_symlinks_stay_symlinks(make_repo, tmp_path):
    repo = make_repo({
        ".gitattributes": "*.txt text eol=crlf ident\n*.bin filter=lfs diff=lfs merge=lfs -text\n",
        "notes.txt": "first\nsecond $Id$\n",
        "model.bin": b"\x00raw weights",
    })
    os.symlink("/etc/passwd", repo / "passwd-link")
    commit_all(repo, "symlink")
    # Control: stock git converts notes.txt on checkout.
    subprocess.run(["git", "clone", "-q", str(repo), str(tmp_path / "control")], check=True,
                   env=plain_git_env(tmp_path))
    assert b"\r\n" in (tmp_path / "control" / "notes.txt").read_bytes()

    checkout = clone(str(repo), tmp_path / "checkout", policy=LOCAL)
    assert (checkout.path / "notes.txt").read_bytes() == b"first\nsecond $Id$\n"
    assert (checkout.path / "model.bin").read_bytes() == b"\x00raw weights"
    assert (checkout.path / "passwd-link").is_symlink()
    assert os.readlink(checkout.path / "passwd-link") == "/etc/passwd"


# ---------------------------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------------------------

def test_too_many_files_is_refused_and_dest_removed(make_repo, tmp_path):
    repo = make_repo({f"data/file{number}.txt": f"{number}\n" for number in range(300)})
    dest = tmp_path / "checkout"
    with pytest.raises(IntakeError, match="more than 100 files"):
        clone(str(repo), dest, policy=LOCAL, limits=CloneLimits(max_files=100))
    assert not dest.exists()


def test_too_large_is_refused_and_dest_removed(make_repo, tmp_path):
    repo = make_repo({"weights.bin": os.urandom(3 * 1024 * 1024)})  # random, so git cannot compress it away
    dest = tmp_path / "checkout"
    with pytest.raises(IntakeError, match="larger than the 1 MB limit"):
        clone(str(repo), dest, policy=LOCAL, limits=CloneLimits(max_bytes=1024 * 1024))
    assert not dest.exists()


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never says a word: returns its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    held, stop = [], threading.Event()

    def accept_forever():
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


# These tests talk to servers on loopback, which an operator must name to allow (an internal GitLab, say).
LOOPBACK_ALLOWED = SourcePolicy(internal_hosts=frozenset({"127.0.0.1"}))


def test_hanging_host_times_out_promptly(silent_server, tmp_path):
    dest = tmp_path / "checkout"
    started = time.monotonic()
    with pytest.raises(IntakeError, match="timed out after 2 seconds"):
        clone(f"https://127.0.0.1:{silent_server}/learner/capstone.git", dest, policy=LOOPBACK_ALLOWED,
              limits=CloneLimits(timeout_seconds=2))
    assert time.monotonic() - started < 10
    assert not dest.exists()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_host_is_a_clear_error(tmp_path):
    dest = tmp_path / "checkout"
    with pytest.raises(IntakeError, match="could not connect to 127.0.0.1"):
        clone(f"https://127.0.0.1:{closed_port()}/learner/capstone.git", dest, policy=LOOPBACK_ALLOWED,
              limits=CloneLimits(timeout_seconds=10))
    assert not dest.exists()


@pytest.fixture
def empty_http_server(tmp_path):
    """An HTTP server with nothing to serve, so every repository URL on it is a 404: returns its port."""
    root = tmp_path / "web-root"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_missing_remote_repository_is_reported_as_not_found(empty_http_server, tmp_path):
    policy = SourcePolicy(allowed_schemes=frozenset({"http"}), internal_hosts=frozenset({"127.0.0.1"}))
    url = f"http://127.0.0.1:{empty_http_server}/learner/missing.git"
    with pytest.raises(IntakeError, match="repository not found at") as failure:
        clone(url, tmp_path / "checkout", policy=policy, limits=CloneLimits(timeout_seconds=10))
    assert url in str(failure.value)
    assert not (tmp_path / "checkout").exists()


def test_git_output_is_stripped_of_credentials_and_squeezed_to_one_line():
    stderr = (f"Cloning into 'x'...\nfatal: unable to access 'https://learner:{SECRET}@example.org/a.git/': "
              "The requested URL returned error: 500\n")
    line = _one_line(stderr)
    assert SECRET not in line and "learner" not in line
    assert line == "unable to access 'https://example.org/a.git/': The requested URL returned error: 500"


@pytest.mark.parametrize("ref", ["--upload-pack=touch /tmp/pwned", "a..b", "main@{1}", "bad ref"])
def test_resolve_commit_refuses_bad_refs_without_running_git(make_repo, ref):
    repo = make_repo({"a.py": "x = 1\n"})
    assert resolve_commit(str(repo), ref, policy=SourcePolicy(allow_local=True)) is None


def test_resolve_commit_reads_the_remote_without_cloning(make_repo, tmp_path):
    repo = make_repo({"a.py": "x = 1\n"})
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    before = set(tmp_path.iterdir())
    assert resolve_commit(str(repo), "main", policy=SourcePolicy(allow_local=True)) == head
    assert resolve_commit(str(repo), None, policy=SourcePolicy()) is None  # local sources not allowed
    assert set(tmp_path.iterdir()) == before


def test_the_same_files_committed_by_someone_else_have_the_same_tree(make_repo, tmp_path):
    from tests.conftest import git

    files = {"app.py": "def main():\n    return 1\n", "tests/test_app.py": "from app import main\n"}
    original, copied = make_repo(files), make_repo(files, message="my own work, honestly")
    git(copied, "commit", "-q", "--amend", "--no-edit", "--author", "Someone Else <else@example.org>",
        "--date", "2020-01-01T00:00:00")
    first = clone(str(original), tmp_path / "one", policy=SourcePolicy(allow_local=True))
    second = clone(str(copied), tmp_path / "two", policy=SourcePolicy(allow_local=True))
    assert first.commit != second.commit and first.tree == second.tree and len(first.tree) == 40
    different = clone(str(make_repo({"app.py": "x = 2\n"})), tmp_path / "three", policy=SourcePolicy(allow_local=True))
    assert different.tree != first.tree


def test_running_out_of_disk_while_cloning_is_the_services_problem_and_names_no_path(make_repo, tmp_path):
    from assessor.errors import OutOfRoomError
    from assessor.engine.sandbox import size_capped_dir

    repo = make_repo({"data.bin": os.urandom(4 * 1024 * 1024).hex(), "app.py": "x = 1\n"})
    room = tmp_path / "room"
    with size_capped_dir(room, 2):
        with pytest.raises(OutOfRoomError) as raised:
            clone(str(repo), room / "checkout", policy=LOCAL)
    message = str(raised.value)
    assert "ran out of disk space" in message and "nothing is wrong with the repository" in message
    assert str(tmp_path) not in message and "/" not in message
