"""In the browser: a private repository assessed by the deploy key the learner adds, and an assessment started by
a signed push (the git host's webhook sender is the one thing played by the test, signing as GitHub does)."""

import hashlib
import hmac
import json
import subprocess
import urllib.request
import uuid

from tests.browser.conftest import require_browser, sign_in

require_browser()

from playwright.sync_api import expect  # noqa: E402

RUBRIC_ID = "scalable-architectures-resilient-core"


def test_a_private_repository_by_deploy_key_then_assessed_on_push(live_server, git_host, page, tmp_path):
    sign_in(page, live_server, "learner")
    # the learner's repository, private on the course's git host
    repo = tmp_path / "capstone"
    subprocess.run(["git", "clone", "-q", live_server.repos["passing"], str(repo)], check=True)
    branch = subprocess.run(["git", "-C", str(repo), "branch", "--show-current"], check=True, capture_output=True,
                            text=True).stdout.strip()
    address = git_host.serve("demo-learner/capstone", repo)

    page.goto(live_server.url + "learner/repositories/")
    page.get_by_label("Repository (owner/name)").first.fill("demo-learner/capstone")
    page.get_by_role("button", name="Make a deploy key").click()
    public_key = page.locator("#public-key").input_value()
    assert public_key.startswith("ssh-ed25519 ")
    expect(page.locator("#added")).to_contain_text("Allow write access")  # the host's own steps
    expect(page.locator("#ssh-address")).to_have_text(address)
    git_host.authorize(public_key)  # the learner adds it on the host, read-only

    # linked for assessment on push: the page gives the webhook address and secret
    page.get_by_label("Capstone", exact=True).select_option(RUBRIC_ID)
    page.get_by_label("Repository address").fill(address)
    page.get_by_label("Git host software").select_option("github")
    page.get_by_label("Branch (a push to it is assessed)").fill(branch)
    page.get_by_role("button", name="Link the repository").click()
    hook_url = page.locator("#hook-url").input_value()
    secret = page.locator("#hook-secret").input_value()
    expect(page.locator("#new-link")).to_contain_text("Just the push event")

    # a push, and the host's signed delivery
    (repo / "PUSHED.md").write_text("# pushed\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=Demo", "-c", "user.email=demo@example.org", "commit",
                    "-qm", "push"], check=True)
    git_host.push("demo-learner/capstone", repo, ref=branch)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    body = json.dumps({"ref": f"refs/heads/{branch}", "after": commit, "pusher": {"name": "demo-learner"},
                       "repository": {"ssh_url": address}}).encode()
    request = urllib.request.Request(hook_url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()})
    with urllib.request.urlopen(request, timeout=30) as answer:
        queued = json.loads(answer.read())
    assert answer.status == 202 and queued["status"] == "queued"

    # the learner watches it: it says it came by push, and the clone with the deploy key gets through
    attempt_url = live_server.url + f"learner/attempts/{queued['attempt']}"
    page.goto(attempt_url)
    expect(page.locator("#origin")).to_contain_text("by a push from demo-learner")
    for _ in range(180):
        status = page.request.get(attempt_url + "/status.json").json()
        cloned = any(stage["name"] == "cloning" and stage["state"] == "done" for stage in status["stages"])
        if cloned or status["status"] in ("failed", "scored"):
            break
        page.wait_for_timeout(500)
    assert cloned or status["status"] == "scored", status
