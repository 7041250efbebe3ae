"""Operator commands: init, users add/list/role/courses (registered on the `assessor` group by cli_admin)."""

import stat

import click
import pytest
from click.testing import CliRunner

from assessor.cli.admin import register

from tests.web.conftest import PASSWORD


@pytest.fixture
def cli(tmp_path, rubrics_dir, monkeypatch):
    instance = tmp_path / "inst"
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(instance))
    monkeypatch.setenv("ASSESSOR_RUBRICS", str(rubrics_dir))
    monkeypatch.setenv("ASSESSOR_WORK_ROOT", str(tmp_path / "work"))
    group = click.Group("assessor")
    register(group)
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(group, list(args), input=input, catch_exceptions=False), instance


def test_init_creates_the_key_and_database(cli):
    run, instance = cli
    result = run("init")
    assert result.exit_code == 0, result.output
    key = instance / "secret_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 64
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert (instance / "assessor.db").exists()
    first = key.read_text()
    assert run("init").exit_code == 0 and key.read_text() == first  # idempotent: the key is kept


def test_users_add_list_role_and_courses(cli):
    run, _ = cli
    run("init")
    result = run("users", "add", "Mentor@Example.org", "--role", "mentor", "--course", "test-capstone",
                 "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "created mentor@example.org (mentor), courses: test-capstone" in result.output
    prompted = run("users", "add", "learner@example.org", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    listing = run("users", "list").output
    assert "mentor@example.org" in listing and "test-capstone" in listing and "learner@example.org" in listing
    assert run("users", "role", "learner@example.org", "admin").exit_code == 0
    assert run("users", "courses", "mentor@example.org", "other-capstone").exit_code == 0
    listing = run("users", "list").output
    assert "admin" in listing and "other-capstone" in listing


@pytest.mark.parametrize("args, input, message", [
    (["users", "add", "x@example.org", "--password-stdin"], "short\n", "at least 10 characters"),
    (["users", "add", "not-an-email", "--password-stdin"], PASSWORD + "\n", "does not look like an e-mail"),
    (["users", "add", "x@example.org", "--course", "nope", "--password-stdin"], PASSWORD + "\n", "unknown rubric 'nope'"),
    (["users", "role", "nobody@example.org", "admin"], None, "no account"),
])
def test_users_bad_input_is_one_line_and_exit_2(cli, args, input, message):
    run, _ = cli
    run("init")
    result = run(*args, input=input)
    assert result.exit_code == 2
    assert message in result.output


def test_integrity_index_fingerprints_what_is_not_yet(cli):
    run, _ = cli
    assert run("init").exit_code == 0
    result = run("integrity", "index", "--course", "test-capstone")
    assert result.exit_code == 0 and "fingerprinted 0 stored submissions" in result.output


def test_commands_without_init_explain_what_to_do(cli):
    run, _ = cli
    result = run("users", "list")
    assert result.exit_code == 2 and "run `assessor init` first" in result.output


def test_commands_are_registered_on_the_main_cli():
    from assessor.cli.admin import users

    group = click.Group("x")
    register(group)
    assert {"init", "users", "worker", "serve", "db", "integrity"} <= set(group.commands)
    assert {"add", "list", "role", "courses"} <= set(users.commands)


def _initialised_instance(tmp_path, rubrics_dir) -> tuple[int, dict, list[str]]:
    """A free port, the environment of an instance made by `assessor init`, and the command that runs the CLI."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ASSESSOR_INSTANCE": str(tmp_path / "inst"), "ASSESSOR_RUBRICS": str(rubrics_dir),
           "ASSESSOR_WORK_ROOT": str(tmp_path / "work")}
    command = [sys.executable, "-c", "from assessor.cli import main; main()"]
    subprocess.run([*command, "init"], env=env, check=True, capture_output=True)
    return port, env, command


def test_serve_runs_waitress_and_a_worker_and_stops_both_on_sigterm(tmp_path, rubrics_dir):
    import os
    import re
    import signal
    import subprocess
    import time
    import urllib.request

    port, env, command = _initialised_instance(tmp_path, rubrics_dir)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([*command, "serve", "--port", str(port), "--workers", "1"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                        assert response.status == 200
                        assert response.headers["X-Frame-Options"] == "DENY"
                    break
                except OSError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            worker_pid = int(re.search(r"worker started \(pid (\d+)", log.read_text()).group(1))
            os.kill(worker_pid, 0)  # the worker is alive beside the server
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0
        finally:
            if server.poll() is None:
                server.kill()
    assert "stopped" in log.read_text()
    try:
        os.kill(worker_pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError("the worker outlived the server")


def test_serve_restarts_a_killed_worker_and_a_killed_server_leaves_no_worker(tmp_path, rubrics_dir):
    import json
    import os
    import re
    import signal
    import subprocess
    import time
    import urllib.error
    import urllib.request

    port, env, command = _initialised_instance(tmp_path, rubrics_dir)
    log = tmp_path / "serve.log"

    def ready() -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def eventually(condition, what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, f"{what}:\n{log.read_text()}"
            time.sleep(0.2)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                              text=True).stdout.strip()[:1] not in ("Z", "")

    with log.open("wb") as out:
        server = subprocess.Popen([*command, "serve", "--port", str(port), "--workers", "1"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
        try:
            eventually(lambda: b"serving on" in log.read_bytes() and _answers(port), "the server came up")
            first = int(re.search(r"worker started \(pid (\d+)", log.read_text()).group(1))
            status, body = ready()
            assert status == 200 and body["checks"]["worker"] == "running"
            os.kill(first, signal.SIGKILL)
            eventually(lambda: "worker restarted (pid" in log.read_text(), "the worker was started again")
            second = int(re.search(r"worker restarted \(pid (\d+)", log.read_text()).group(1))
            assert second != first and alive(second)
            eventually(lambda: ready()[0] == 200 and ready()[1]["checks"]["worker"] == "running", "ready again")
            server.kill()  # the server itself killed outright: its worker must not stay behind
            server.wait(timeout=10)
            eventually(lambda: not alive(second), "the orphaned worker stopped", seconds=20)
        finally:
            if server.poll() is None:
                server.kill()
    assert "exited with -9; starting it again" in log.read_text()


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False
