"""Assessment on push: a learner links a private repository, a signed push from the git host submits an attempt
(GitHub, GitLab and Gitea/Forgejo signatures), and whatever is unsigned, mis-signed, replayed or for another
repository or branch is refused and changes nothing. The git host's webhook sender is the one thing mocked: the
tests sign deliveries as each host does; the repository is served by a real sshd."""

import hashlib
import hmac
import json
import re
import uuid

import pytest
from sqlmodel import func, select

from assessor.domain.models import Attempt, RepositoryKey, WebhookDelivery

from tests.conftest import git
from tests.sshserver import git_ssh_server  # noqa: F401 (fixture)

CAPSTONE = {"app/core.py": "def add(a, b):\n    return a + b\n", "README.md": "# Capstone\n"}


@pytest.fixture
def immediate():
    return True


@pytest.fixture
def app_config(app_config, git_ssh_server, immediate):  # noqa: F811
    host = {"host": "127.0.0.1", "kind": "gitea", "port": git_ssh_server.port,
            "ssh_user": git_ssh_server.account.pw_name, "host_keys": [git_ssh_server.host_key], "internal": True}
    return {**app_config, "QUEUE_IMMEDIATE": immediate, "GIT_HOSTS": [host]}


class Linked:
    def __init__(self, learner, repo, address, link_id, url, secret):
        self.learner, self.repo, self.address = learner, repo, address
        self.link_id, self.url, self.secret = link_id, url, secret


def link_repository(auth, client, db, server, make_user, make_repo, *, provider="github", branch="main",
                    tag_pattern=""):
    learner = make_user(name="Ada")
    auth.as_(learner)
    repo = make_repo(CAPSTONE)
    git(repo, "branch", "-M", "main")
    address = server.serve("ada/capstone", repo)
    auth.post("/learner/repositories/keys", {"key-host": "127.0.0.1", "key-repository": "ada/capstone"},
              token_from="/learner/repositories/")
    server.authorize(db.exec(select(RepositoryKey)).one().public_key)
    page = auth.post("/learner/repositories/links", {"link-rubric": "other-capstone", "link-source": address,
                                                      "link-provider": provider, "link-branch": branch,
                                                      "link-tag_pattern": tag_pattern},
                     token_from="/learner/repositories/")
    assert page.status_code == 201, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    url = re.search(r'id="hook-url" type="text" readonly value="([^"]+)"', html).group(1)
    secret = re.search(r'id="hook-secret" type="text" readonly value="([^"]+)"', html).group(1)
    return Linked(learner, repo, address, int(url.rsplit("/", 1)[1]), url, secret)


def push_commit(server, linked, content: str) -> str:
    (linked.repo / "app" / "core.py").write_text(content)
    git(linked.repo, "commit", "-qam", "a change")
    server.push("ada/capstone", linked.repo)
    return git(linked.repo, "rev-parse", "HEAD")


def delivery(provider: str, secret: str, payload: dict, *, delivery_id: str | None = None, sign=True):
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    delivery_id = delivery_id or str(uuid.uuid4())
    if provider == "github":
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery_id}
        if sign:
            headers["X-Hub-Signature-256"] = f"sha256={signature}"
    elif provider == "gitlab":
        headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": delivery_id}
        if sign:
            headers["X-Gitlab-Token"] = secret
    else:
        headers = {"X-Gitea-Event": "push", "X-Gitea-Delivery": delivery_id}
        if sign:
            headers["X-Gitea-Signature"] = signature
    return body, headers


def push_payload(provider: str, address: str, commit: str, *, ref="refs/heads/main", pusher="ada-l") -> dict:
    if provider == "gitlab":
        return {"object_kind": "push", "ref": ref, "after": commit, "user_username": pusher,
                "project": {"git_ssh_url": address, "web_url": "https://git.example.org/ada/capstone"}}
    return {"ref": ref, "after": commit, "repository": {"ssh_url": address, "clone_url": address},
            "pusher": {"login" if provider == "gitea" else "name": pusher}}


def deliver(client, linked, body, headers):
    return client.post(f"/hooks/{linked.link_id}", data=body, headers={**headers, "Content-Type": "application/json"})


def counts(db) -> tuple[int, int]:
    db.expire_all()
    return (db.exec(select(func.count()).select_from(Attempt)).one(),
            db.exec(select(func.count()).select_from(WebhookDelivery)).one())


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea"])
def test_a_signed_push_submits_an_attempt_that_says_where_it_came_from(app, db, client, auth, make_user, make_repo,
                                                                      git_ssh_server, provider):  # noqa: F811
    linked = link_repository(auth, client, db, git_ssh_server, make_user, make_repo, provider=provider)
    assert linked.url.endswith(f"/hooks/{linked.link_id}") and len(linked.secret) >= 32
    commit = push_commit(git_ssh_server, linked, "def add(a, b):\n    return b + a\n")
    answer = deliver(client, linked, *delivery(provider, linked.secret,
                                               push_payload(provider, linked.address, commit)))
    assert answer.status_code == 202, answer.get_json()
    attempt = db.get(Attempt, answer.get_json()["attempt"])
    assert attempt.status == "scored", attempt.failure_reason  # cloned with the deploy key, assessed
    assert (attempt.origin, attempt.pushed_by, attempt.commit) == ("push", "ada-l", commit)
    page = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    origin = re.search(r'<span id="origin">(.*?)</span>', page, re.S).group(1)
    assert "by a push from ada-l" in origin and commit[:12] in origin
    auth.as_(make_user("mentor", courses=["other-capstone"]))  # the mentor sees it on the attempt's timeline
    page = client.get(f"/mentor/attempts/{attempt.id}").get_data(as_text=True)
    assert f"pushed by ada-l: {linked.address} at {commit}" in page


def test_refused_deliveries_change_nothing(app, db, client, auth, make_user, make_repo, git_ssh_server):  # noqa: F811
    linked = link_repository(auth, client, db, git_ssh_server, make_user, make_repo)
    commit = push_commit(git_ssh_server, linked, "def add(a, b):\n    return a + b + 0\n")
    good = push_payload("github", linked.address, commit)
    cases = [
        ("unsigned", delivery("github", linked.secret, good, sign=False), 401),
        ("signed with another secret", delivery("github", "not-the-secret", good), 401),
        ("another repository", delivery("github", linked.secret,
                                        push_payload("github", linked.address.replace("capstone", "other"), commit)),
         403),
        ("not JSON", (b"ref=main", {**delivery("github", linked.secret, good)[1],
                                    "X-Hub-Signature-256": "sha256=" + hmac.new(linked.secret.encode(), b"ref=main",
                                                                                hashlib.sha256).hexdigest()}), 400),
        ("gitlab's header on a github link", delivery("gitlab", linked.secret, good), 401),
    ]
    for name, (body, headers), status in cases:
        before = counts(db)
        answer = deliver(client, linked, body, headers)
        assert answer.status_code == status, (name, answer.get_json())
        assert answer.get_json()["status"] == "refused" and answer.get_json()["reason"]
        assert counts(db) == before, name
    assert client.post("/hooks/999999", data=b"{}").status_code == 404
    # another branch, a deleted branch: verified, and nothing to assess
    for payload in (push_payload("github", linked.address, commit, ref="refs/heads/experiment"),
                    push_payload("github", linked.address, "0" * 40)):
        before = counts(db)
        answer = deliver(client, linked, *delivery("github", linked.secret, payload))
        assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
        assert counts(db)[0] == before[0]
    # the same delivery twice: the second is a replay
    body, headers = delivery("github", linked.secret, good)
    assert deliver(client, linked, body, headers).status_code == 202
    before = counts(db)
    replay = deliver(client, linked, body, headers)
    assert replay.status_code == 200 and replay.get_json()["status"] == "duplicate" and counts(db) == before


@pytest.mark.parametrize("immediate", [False])
def test_a_later_push_replaces_a_queued_attempt(app, db, client, auth, make_user, make_repo, git_ssh_server,
                                               immediate):  # noqa: F811
    linked = link_repository(auth, client, db, git_ssh_server, make_user, make_repo)
    first = push_commit(git_ssh_server, linked, "def add(a, b):\n    return a + b  # one\n")
    one = deliver(client, linked, *delivery("github", linked.secret, push_payload("github", linked.address, first)))
    second = push_commit(git_ssh_server, linked, "def add(a, b):\n    return a + b  # two\n")
    two = deliver(client, linked, *delivery("github", linked.secret, push_payload("github", linked.address, second)))
    assert one.status_code == two.status_code == 202
    db.expire_all()
    replaced, queued = db.get(Attempt, one.get_json()["attempt"]), db.get(Attempt, two.get_json()["attempt"])
    assert replaced.status == "failed" and "replaced by a later push" in replaced.failure_reason
    assert queued.status == "queued" and queued.ref == second
    # while the learner has an attempt of this capstone running, the pushed one waits its turn, unclaimed
    from sqlmodel import Session

    from assessor.domain import jobs

    replaced.status = "running"
    db.add(replaced)
    db.commit()
    waited = []
    engine = app.extensions["assessor.engine"]
    outcome = jobs.run_attempt(queued.id, sessions=lambda: Session(engine, expire_on_commit=False),
                               settings=app.extensions["assessor.job_settings"],
                               requeue=lambda attempt_id, delay: waited.append((attempt_id, delay)))
    db.expire_all()
    assert outcome == "waiting" and waited == [(queued.id, jobs.SIBLING_WAIT_SECONDS)]
    assert db.get(Attempt, queued.id).status == "queued" and db.get(Attempt, queued.id).tries == 0


def test_a_tag_pattern_link_takes_matching_tags_only(app, db, client, auth, make_user, make_repo,
                                                    git_ssh_server):  # noqa: F811
    linked = link_repository(auth, client, db, git_ssh_server, make_user, make_repo, branch="", tag_pattern="v*")
    commit = push_commit(git_ssh_server, linked, "def add(a, b):\n    return a + b  # tagged\n")
    draft = push_payload("github", linked.address, commit, ref="refs/tags/draft-1")
    answer = deliver(client, linked, *delivery("github", linked.secret, draft))
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    release = push_payload("github", linked.address, commit, ref="refs/tags/v1.0")
    answer = deliver(client, linked, *delivery("github", linked.secret, release))
    assert answer.status_code == 202 and db.get(Attempt, answer.get_json()["attempt"]).status == "scored"


@pytest.mark.parametrize("fields, problem", [
    ({"link-branch": "", "link-tag_pattern": ""}, "either a branch or a tag pattern"),
    ({"link-branch": "main", "link-tag_pattern": "v*"}, "either a branch or a tag pattern"),
    ({"link-source": "ssh://git@elsewhere.example/ada/x.git"}, "only for the git hosts configured here"),
    ({"link-provider": "bitbucket"}, "Not a valid choice"),
])
def test_bad_links_are_refused(db, auth, make_user, fields, problem):
    auth.as_(make_user())
    data = {"link-rubric": "other-capstone", "link-source": "https://git.example.org/ada/capstone",
            "link-provider": "github", "link-branch": "main", **fields}
    answer = auth.post("/learner/repositories/links", data, token_from="/learner/repositories/")
    assert answer.status_code == 400 and problem in answer.get_data(as_text=True)
