"""Real-browser fixtures: `assessor demo` as a live server (waitress and the real worker, in a subprocess, on a free
loopback port, on a temporary instance), and Playwright driving Debian's Chromium (/usr/bin/chromium, headless;
no browser download). Every test leaves a full-page screenshot in tests/browser/artifacts/."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ASSESSOR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SERVER_START_SECONDS = 60


def require_browser() -> None:
    """Skip (at a test module's top) where the playwright package or Debian's Chromium is missing; under CI
    (CI=true, where .ci/setup installs both) that is a failure instead, so a broken set-up cannot pass unseen."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[test]')"
    if problem is None and not Path(CHROMIUM).is_file():
        problem = f"no Chromium at {CHROMIUM} (Debian package chromium; .ci/setup installs it)"
    if problem is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem, allow_module_level=True)


@dataclass
class LiveServer:
    url: str
    accounts: dict[str, tuple[str, str]]  # role -> (email, password)
    repos: dict[str, str]  # sample kind -> local path
    instance: Path
    log: Path
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_ACCOUNT = re.compile(r"^\s+(learner|mentor)\s+(\S+@\S+)\s+password (\S+)")
_REPO = re.compile(r"^\s+(passing|falling-short|node-passing)\s+(/\S+)")


def _read_demo_banner(process: subprocess.Popen, lines: list[str], done: threading.Event) -> None:
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if "allowed for this demo server only" in line:
            done.set()
    done.set()


def _wait_until_up(url: str, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the demo server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "login", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the demo server did not answer within {SERVER_START_SECONDS} s")


@pytest.fixture(scope="session")
def git_host():
    """A real ssh git server (tests/sshserver.py) the live server trusts by its host key: private repositories."""
    from tests.sshserver import GitSshServer

    root = Path(tempfile.mkdtemp(prefix="test-sshd-"))
    server = GitSshServer(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, git_host):
    """`assessor demo` on a free 127.0.0.1 port with its own instance folder and work root."""
    ARTIFACTS.mkdir(exist_ok=True)
    instance = tmp_path_factory.mktemp("browser") / "instance"
    # The sandbox's uid must reach the work root (pytest's tmp is 0700), so it lives in /tmp, mode 0711.
    work_root = Path(tempfile.mkdtemp(prefix="assessor-browser-work-", dir="/tmp"))
    work_root.chmod(0o711)
    port = free_port()
    hosts = [{"host": "127.0.0.1", "kind": "github", "name": "Course git", "port": git_host.port,
              "ssh_user": git_host.account.pw_name, "host_keys": [git_host.host_key], "internal": True}]
    env = {**os.environ, "ASSESSOR_INSTANCE": str(instance), "ASSESSOR_WORK_ROOT": str(work_root),
           "PYTHONUNBUFFERED": "1", "ASSESSOR_GIT_HOSTS": json.dumps(hosts)}
    env.pop("ASSESSOR_ALLOW_LOCAL_SOURCES", None)  # the demo command itself must allow them
    log = ARTIFACTS / "server.log"
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-c", "from assessor.cli import main; main()", "demo", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            env=env, stdout=subprocess.PIPE, stderr=log_file, text=True, start_new_session=True)
    lines: list[str] = []
    banner = threading.Event()
    threading.Thread(target=_read_demo_banner, args=(process, lines, banner), daemon=True).start()
    url = f"http://127.0.0.1:{port}/"
    try:
        if not banner.wait(SERVER_START_SECONDS):
            raise RuntimeError("the demo printed no banner")
        _wait_until_up(url, process, time.monotonic() + SERVER_START_SECONDS)
        accounts = {m.group(1): (m.group(2), m.group(3)) for m in map(_ACCOUNT.match, lines) if m}
        repos = {m.group(1): m.group(2) for m in map(_REPO.match, lines) if m}
        assert set(accounts) == {"learner", "mentor"}, lines
        assert set(repos) == {"passing", "falling-short", "node-passing"}, lines
        yield LiveServer(url=url, accounts=accounts, repos=repos, instance=instance, log=log, process=process,
                         output=lines)
    finally:
        _stop(process)
        shutil.rmtree(work_root, ignore_errors=True)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (serve stops waitress and its worker), then SIGKILL for the whole process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")  # Playwright's event loop must not outlive the browser tests
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context, request):
    """A page whose final state is saved as artifacts/<test name>.png, pass or fail."""
    page = context.new_page()
    yield page
    shoot(page, request.node.name)


def shoot(page, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    try:
        page.screenshot(path=str(path), full_page=full_page)
    except Exception:  # a closed page must not hide the test's own failure
        pass
    return path


def add_account(server: LiveServer, email: str, password: str, *, role: str = "learner", name: str = "") -> None:
    """An account made with the CLI on the live server's instance (as an operator would)."""
    done = subprocess.run(
        [sys.executable, "-c", "from assessor.cli import main; main()", "users", "add", email, "--role", role,
         "--name", name, "--password-stdin"],
        input=password + "\n", env={**os.environ, "ASSESSOR_INSTANCE": str(server.instance)},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def sign_in_as(page, server: LiveServer, email: str, password: str) -> None:
    page.goto(server.url + "login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@contextlib.contextmanager
def signed_in_elsewhere(browser, server: LiveServer, email: str, password: str):
    """A page in a browser context of its own (another person at another computer), signed in as `email`."""
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in_as(page, server, email, password)
        yield page
    finally:
        context.close()


def sign_in(page, server: LiveServer, role: str) -> None:
    email, password = server.accounts[role]
    page.goto(server.url + "login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@pytest.fixture(scope="session")
def lms(live_server):
    """The test LMS (tests/lti_platform.py), registered in the live server's instance with `assessor lti
    add-platform`; its learner is the demo learner, linked by the e-mail address the LMS sends."""
    from tests.lti_platform import LEARNER, PlatformUser, TestPlatform

    platform = TestPlatform(tool_url=live_server.url.rstrip("/"))
    platform.users = {"learner": PlatformUser("lms-learner-1", "Demo Learner", live_server.accounts["learner"][0],
                                              (LEARNER,))}
    registration = platform.registration()
    command = [sys.executable, "-c", "from assessor.cli import main; main()", "lti", "add-platform",
               "--name", registration["name"], "--issuer", registration["issuer"],
               "--client-id", registration["client_id"], "--auth-login-url", registration["auth_login_url"],
               "--auth-token-url", registration["auth_token_url"], "--key-set-url", registration["key_set_url"],
               "--deployment", registration["deployment_ids"][0]]
    done = subprocess.run(command, env={**os.environ, "ASSESSOR_INSTANCE": str(live_server.instance)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "registered platform" in done.stdout, done.stderr
    yield platform
    platform.stop()
