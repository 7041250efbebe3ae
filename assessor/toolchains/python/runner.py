"""The service-owned pytest runner and coverage canary, written into the sandbox and run there with python -I."""

RUNNER_SOURCE = '''\
"""Service-owned runner, started with python -I so nothing from the learner's tree loads before the tools."""
import hashlib
import hmac
import importlib.util
import json
import os
import sys

RANKS = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}


class Observer:
    """Counts outcomes the way the JUnit report does, as a second opinion the host compares with it."""

    def __init__(self):
        self.collected = None
        self.outcomes = {}

    def note(self, key, outcome):
        if key not in self.outcomes or RANKS[outcome] > RANKS[self.outcomes[key]]:
            self.outcomes[key] = outcome

    def pytest_collection_finish(self, session):
        self.collected = len(session.items)

    def pytest_collectreport(self, report):
        if report.failed:
            self.note("collect::" + report.nodeid, "error")
        elif report.skipped:
            self.note("collect::" + report.nodeid, "skipped")

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.note(report.nodeid, "failed" if report.when == "call" else "error")
        elif report.skipped:
            self.note(report.nodeid, "skipped")
        elif report.when == "call":
            self.note(report.nodeid, "passed")

    def counts(self):
        totals = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for outcome in self.outcomes.values():
            totals[outcome] += 1
        return totals


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle)


def file_digest(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def write_status(out_dir, name, status, token):
    """Sign the status and the digests of the result files with the token only this runner has seen."""
    status["files"] = {result: file_digest(os.path.join(out_dir, result)) for result in ("coverage.json", "junit.xml")}
    payload = json.dumps(status, sort_keys=True).encode()
    status["mac"] = hmac.new(token, payload, hashlib.sha256).hexdigest()
    write_json(os.path.join(out_dir, name), status)


def export_coverage(data):
    files = {}
    for name in sorted(data.measured_files()):
        arcs = data.arcs(name)
        files[name] = {"arcs": sorted(arcs)} if arcs is not None else {"lines": sorted(data.lines(name) or [])}
    return {"has_arcs": data.has_arcs(), "files": files}


def main():
    mode, control, out_dir, project = sys.argv[1:5]
    pytest_args = sys.argv[6:]
    token_path = os.path.join(out_dir, "token")
    with open(token_path, "rb") as handle:
        token = handle.read()
    os.unlink(token_path)  # gone before any learner code runs
    import coverage  # resolved from the read-only venv: -I keeps the cwd and PYTHONPATH off sys.path
    import pytest
    sys.pycache_prefix = "/tmp/.assessor-pycache"  # bytecode shipped next to the sources is never used
    sys.path[0:0] = [project, os.path.join(project, "src")]
    observer = Observer()
    status = {"mode": mode, "finished": False}
    if mode == "collect":
        try:
            code = int(pytest.main(["--collect-only", "-q", *pytest_args], plugins=[observer]))
        except BaseException as error:
            status["error"] = repr(error)[:500]
            code = 70
        else:
            status.update(finished=True, exit_code=code, collected=observer.collected)
        write_status(out_dir, "collect-status.json", status, token)
        sys.stdout.flush()
        os._exit(code)
    spec = importlib.util.spec_from_file_location("assessor_canary", os.path.join(control, "assessor_canary.py"))
    canary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(canary)
    cov = coverage.Coverage(data_file=None, config_file=os.path.join(control, "coveragerc"))
    cov.start()
    canary.begin()
    try:
        code = int(pytest.main(pytest_args, plugins=[observer]))
    except BaseException as error:
        cov.stop()
        status["error"] = repr(error)[:500]
        write_status(out_dir, "status.json", status, token)
        sys.stdout.flush()
        os._exit(70)
    canary.end()
    cov.stop()
    write_json(os.path.join(out_dir, "coverage.json"), export_coverage(cov.get_data()))
    status.update(finished=True, exit_code=code, collected=observer.collected, counts=observer.counts())
    write_status(out_dir, "status.json", status, token)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip atexit handlers: learner code must not run after the results are written.
    os._exit(code)


main()
'''

CANARY_SOURCE = '''\
"""Service canary: the runner calls begin() before the tests and end() after them, under coverage."""


def begin():
    marker = "begin"
    return marker


def end():
    marker = "end"
    return marker
'''
CANARY_BEGIN_LINE = 5
CANARY_END_LINE = 10
