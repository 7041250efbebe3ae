"""Private repositories by read-only deploy key: a real ssh git server (sshd on loopback, its own host key), the
learner's key made and shown by the service, the clone with it, the failures in plain words, and the private key
nowhere it must not be."""

import json
import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from assessor.domain import repository_access
from assessor.certificates.sealing import key_encryption_key, unseal
from assessor.domain.models import Attempt, RepositoryKey, StoredReport

from tests.sshserver import git_ssh_server  # noqa: F401 (fixture)

CAPSTONE = {"app/core.py": "def add(a, b):\n    return a + b\n", "README.md": "# Capstone\n"}


@pytest.fixture
def app_config(app_config, git_ssh_server):  # noqa: F811
    host = {"host": "127.0.0.1", "kind": "gitea", "name": "Course Gitea", "port": git_ssh_server.port,
            "ssh_user": git_ssh_server.account.pw_name, "host_keys": [git_ssh_server.host_key], "internal": True}
    return {**app_config, "QUEUE_IMMEDIATE": True, "GIT_HOSTS": [host]}


def add_key(auth, repository: str):
    return auth.post("/learner/repositories/keys", {"key-host": "127.0.0.1", "key-repository": repository},
                     token_from="/learner/repositories/")


def submit(auth, source: str):
    return auth.post("/learner/submit", {"rubric": "other-capstone", "source": source}, token_from="/learner/submit")


def public_key_on(page: str) -> str:
    return re.search(r'<textarea id="public-key"[^>]*>([^<]+)</textarea>', page).group(1).strip()


def private_key_text(app, db, row: RepositoryKey) -> str:
    kek = key_encryption_key(configured=None, secret_key=app.config["SECRET_KEY"])
    secret = unseal(row.secret_sealed, kek=kek, kid=f"repository-deploy_key:{row.user_id}:{row.host}:{row.repository}")
    return "".join(secret.decode().splitlines()[1:-1])  # the key's base64 body


def test_a_private_repository_is_assessed_by_the_deploy_key_the_learner_added(app, db, client, auth, make_user,
                                                                             make_repo, git_ssh_server, caplog,
                                                                             tmp_path):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    learner = make_user(name="Ada")
    auth.as_(learner)
    address = git_ssh_server.serve("ada/capstone", make_repo(CAPSTONE))

    added = add_key(auth, "ada/capstone")
    assert added.status_code == 302
    page = client.get(added.location).get_data(as_text=True)
    public = public_key_on(page)
    assert public.startswith("ssh-ed25519 ") and "read-only" in public
    assert "Enable write access" in page and address in page  # the host's own steps, and the address to submit
    git_ssh_server.authorize(public)  # the learner adds it to the repository on the host

    response = submit(auth, address)
    assert response.status_code == 302, response.get_data(as_text=True)
    attempt = db.exec(select(Attempt).where(Attempt.user_id == learner.id)).one()
    assert attempt.status == "scored", attempt.failure_reason
    row = db.exec(select(RepositoryKey)).one()
    assert row.last_used_at is not None

    # The private key is nowhere it must not be: not in the report, the logs, the database in clear, the work folders.
    secret = private_key_text(app, db, row)
    assert len(secret) > 40
    stored = db.get(StoredReport, attempt.report_id).document
    assert secret not in stored and "PRIVATE KEY" not in stored
    assert secret not in caplog.text and "PRIVATE KEY" not in caplog.text
    dumped = "\n".join(str(value) for table in ("repository_keys", "attempts", "events", "stored_reports")
                       for record in db.execute(text(f"SELECT * FROM {table}")) for value in record)
    assert secret not in dumped and "PRIVATE KEY" not in dumped
    work = app.config["WORK_ROOT"]
    leftovers = [path for path in Path(work).rglob("*") if path.is_file()
                 and b"PRIVATE KEY" in path.read_bytes()[:100000]]
    assert leftovers == []


@pytest.mark.parametrize("case, expected", [
    ("key not added", "refused the deploy key"),
    ("host key changed", "did not present the host key configured for it"),
    ("repository renamed", "was it renamed or moved"),
])
def test_a_failed_clone_says_which_in_plain_words(app, db, auth, make_user, make_repo, git_ssh_server, case,
                                                 expected):  # noqa: F811
    learner = make_user()
    auth.as_(learner)
    address = git_ssh_server.serve("ada/capstone", make_repo(CAPSTONE))
    add_key(auth, "ada/capstone")
    if case != "key not added":
        git_ssh_server.authorize(db.exec(select(RepositoryKey)).one().public_key)
    if case == "host key changed":
        git_ssh_server.replace_host_key()
    if case == "repository renamed":  # renamed on the host after the key was added; the old address submitted
        served = git_ssh_server.repositories / "ada"
        (served / "capstone.git").rename(served / "capstone-v2.git")
    submit(auth, address)
    attempt = db.exec(select(Attempt).where(Attempt.user_id == learner.id)).one()
    assert attempt.status == "failed" and expected in attempt.failure_reason, attempt.failure_reason


def test_removing_the_key_deletes_it_and_ssh_goes_only_to_configured_hosts(app, db, client, auth, make_user,
                                                                          make_repo, git_ssh_server):  # noqa: F811
    learner, other = make_user(), make_user()
    auth.as_(learner)
    add_key(auth, "ada/capstone")
    row = db.exec(select(RepositoryKey)).one()
    auth.as_(other)  # another learner cannot remove it
    assert auth.post(f"/learner/repositories/{row.id}/delete", token_from="/learner/repositories/").status_code == 404
    assert client.get(f"/learner/repositories/{row.id}").status_code == 404
    auth.as_(learner)
    assert auth.post(f"/learner/repositories/{row.id}/delete", token_from="/learner/repositories/").status_code == 302
    db.expire_all()
    assert db.exec(select(RepositoryKey)).all() == []
    # ssh to a host whose keys the operator did not configure is refused before anything is fetched
    response = submit(auth, "ssh://git@git.example.org/ada/capstone.git")
    assert response.status_code == 400 and "only for the git hosts configured here" in response.get_data(as_text=True)


@pytest.mark.parametrize("repository, problem", [
    ("", "owner/name"), ("../etc/passwd", "owner/name"), ("ada", "owner/name"), ("ada/.hidden", "owner/name"),
    ("ada/capstone?x=1", "owner/name"),
])
def test_bad_repository_names_are_refused_and_change_nothing(db, auth, make_user, repository, problem):
    auth.as_(make_user())
    response = add_key(auth, repository)
    assert response.status_code == 400 and problem in response.get_data(as_text=True)
    assert db.exec(select(RepositoryKey)).all() == []


@pytest.mark.parametrize("value, problem", [
    ([{"host": "github.com", "kind": "github"}], "host_keys"),
    ([{"host": "github.com", "kind": "bitbucket", "host_keys": ["ssh-ed25519 AAAA"]}], "kind"),
    ([{"host": "github.com", "kind": "github", "host_keys": ["not a key"]}], "host_keys"),
    ([{"host": "Not A Host!", "kind": "github", "host_keys": ["ssh-ed25519 AAAA"]}], "host"),
    ({"host": "github.com"}, "JSON list"),
])
def test_git_hosts_are_refused_without_their_published_keys(value, problem):
    with pytest.raises(repository_access.RepositoryAccessError, match=problem):
        repository_access.parse_git_hosts(value)


def test_a_token_is_sent_only_to_its_own_host_never_in_the_url():
    import tempfile

    from assessor.engine.intake import GitCredentials, SourcePolicy, _clean_environment

    credentials = GitCredentials(token="ghp_example_token_123", token_host="git.example.org", token_user="oauth2")
    with tempfile.TemporaryDirectory() as scratch:
        env = _clean_environment(Path(scratch), SourcePolicy(), credentials)
    assert env["GIT_CONFIG_KEY_0"] == "http.https://git.example.org/.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
    assert "ghp_example_token_123" not in json.dumps(env)  # only its Basic encoding, in git's own config
    assert "ghp_" not in repr(credentials)
