"""The service-owned pytest runner and coverage canary, written into the sandbox and run there with python -I."""

RUNNER_SOURCE = '''\
"""Service-owned runner, started with python -I so nothing from the learner's tree loads before the tools.

It holds no secret: what it reports goes down the results channel, a pipe the host reads while the run goes on.
Learner code shares this process, so the host treats every figure as a claim and checks it from outside."""
import gc
import json
import os
import select
import signal
import sys
import time

RANKS = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}
# Hooks whose implementations can rewrite what a test reports; each one the learner's code registered is listed.
REPORT_HOOKS = (
    "pytest_runtest_makereport", "pytest_report_teststatus", "pytest_runtest_logreport", "pytest_runtest_protocol",
    "pytest_pyfunc_call", "pytest_runtest_call", "pytest_report_to_serializable", "pytest_report_from_serializable",
    "pytest_exception_interact", "pytest_collection_modifyitems", "pytest_sessionfinish", "pytest_terminal_summary",
)
MAX_CONTEXT_ENTRIES = 2000000
MAX_JUNIT_BYTES = 20 * 1024 * 1024


class Observer:
    """Counts outcomes the way the JUnit report does, switches coverage's context to each test, and lists the
    report hooks registered from outside the installed tools (names built at run time included)."""

    def __init__(self, cov=None):
        self.cov = cov
        self.collected = None
        self.files = []
        self.outcomes = {}
        self.hooks = {}
        self.ini = {}

    def note(self, key, outcome):
        if key not in self.outcomes or RANKS[outcome] > RANKS[self.outcomes[key]]:
            self.outcomes[key] = outcome

    def pytest_collection_finish(self, session):
        self.collected = len(session.items)
        self.files = sorted({item.nodeid.split("::")[0] for item in session.items})
        for name in ("python_files", "python_classes", "python_functions"):
            try:
                self.ini[name] = [str(value) for value in session.config.getini(name)]
            except (ValueError, KeyError):
                pass
        self.audit(session.config.pluginmanager)

    def pytest_collectreport(self, report):
        if report.failed:
            self.note("collect::" + report.nodeid, "error")
        elif report.skipped:
            self.note("collect::" + report.nodeid, "skipped")

    def pytest_runtest_logstart(self, nodeid, location):
        self.switch(nodeid)

    def pytest_runtest_logfinish(self, nodeid, location):
        self.switch("")

    def switch(self, context):
        if self.cov is None:
            return
        try:
            self.cov.switch_context(context)
        except Exception:  # coverage stopped by the learner's code: the canary lines report that
            pass

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.note(report.nodeid, "failed" if report.when == "call" else "error")
        elif report.skipped:
            self.note(report.nodeid, "skipped")
        elif report.when == "call":
            self.note(report.nodeid, "passed")

    def pytest_sessionfinish(self, session):
        self.audit(session.config.pluginmanager)

    def audit(self, manager):
        tools = tuple(os.path.join(prefix, "") for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix})
        for name in REPORT_HOOKS:
            caller = getattr(manager.hook, name, None)
            if caller is None:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is self:
                    continue
                code = getattr(impl.function, "__code__", None)
                filename = code.co_filename if code is not None else "?"
                if filename.startswith(tools):
                    continue
                line = code.co_firstlineno if code is not None else 0
                self.hooks[(name, filename, line)] = {"hook": name, "file": filename[:500], "line": line,
                                                      "function": getattr(impl.function, "__name__", "?")[:200],
                                                      "wrapper": bool(impl.hookwrapper or impl.wrapper)}

    def counts(self):
        totals = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for outcome in self.outcomes.values():
            totals[outcome] += 1
        return totals

    def report(self):
        return {"collected": self.collected, "files": self.files, "outcomes": self.outcomes,
                "counts": self.counts(), "hooks": list(self.hooks.values())[:200], "ini": self.ini}


def export_coverage(data):
    """Arcs per file, and per line the tests that ran it (coverage's contexts), numbered to keep it small."""
    contexts = {}
    budget = MAX_CONTEXT_ENTRIES
    files = {}
    for name in sorted(data.measured_files()):
        arcs = data.arcs(name)
        entry = {"arcs": sorted(arcs)} if arcs is not None else {"lines": sorted(data.lines(name) or [])}
        tests = {}
        if budget > 0:
            for line, names in data.contexts_by_lineno(name).items():
                ids = [contexts.setdefault(test, len(contexts)) for test in names if test]
                if ids:
                    tests[str(line)] = ids
                    budget -= len(ids)
        entry["tests"] = tests
        files[name] = entry
    return {"has_arcs": data.has_arcs(), "files": files, "contexts": list(contexts), "complete": budget > 0}


def read_junit(path):
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_JUNIT_BYTES:
                return None
            data = handle.read(size + 1)  # never a buffer larger than the file: memory may be short now
    except (OSError, MemoryError):
        return None
    return data.decode("utf-8", "replace") if len(data) <= MAX_JUNIT_BYTES else None


def send(channel, message):
    """Stream the message: a test may have left the process near its memory limit (its frames are kept for the
    report), so it is never built whole in memory."""
    pending = []
    size = 0
    for piece in json.JSONEncoder().iterencode(message):
        pending.append(piece)
        size += len(piece)
        if size >= 65536:
            write_all(channel, "".join(pending).encode())
            pending, size = [], 0
    write_all(channel, "".join(pending).encode())
    os.close(channel)


def write_all(channel, data):
    view = memoryview(data)
    while view:
        view = view[os.write(channel, view):]


def finish(channel, message, code):
    try:
        send(channel, message)
    except BaseException:
        code = 70
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip atexit handlers: learner code must not run after the results are sent.
    os._exit(code)


def run_mutants(channel, control, pytest_args, pytest):
    """Each sampled change in a process forked from this one (which has loaded pytest but none of the learner's
    code): the file is changed, the child runs only the tests that ran the line, the file is put back."""
    with open(os.path.join(control, "mutants.json"), encoding="utf-8") as handle:
        plan = json.load(handle)
    started = time.monotonic()
    results = []
    changed = sorted({item["path"] for item in plan["mutants"]})
    for item in plan["mutants"]:
        if time.monotonic() - started > plan["budget_seconds"]:
            results.append({"verdict": "not_run", "detail": "the time for sampling ran out"})
            continue
        with open(item["path"], "rb") as handle:
            original = handle.read()
        with open(item["path"], "wb") as handle:
            handle.write(item["source"].encode("utf-8"))
        try:
            results.append(one_mutant(channel, item, pytest_args, pytest, changed))
        finally:
            with open(item["path"], "wb") as handle:
                handle.write(original)
    return results


def forget_bytecode(paths):
    """Bytecode records a source's size and mtime to the second: a changed file and its original, written within
    the same second, could each load the other's. Every file the sample changes is compiled afresh."""
    import importlib.util
    for path in paths:
        try:
            os.unlink(importlib.util.cache_from_source(path))
        except (OSError, ValueError, NotImplementedError):
            pass


def one_mutant(channel, item, pytest_args, pytest, changed):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(channel)  # the child's code must not reach the results channel
            os.close(read_end)
            os.setpgid(0, 0)
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
            forget_bytecode(changed)
            observer = Observer()

            class Leave:
                """Once the session is over the outcomes are known: report them and skip pytest's summary."""

                def pytest_sessionfinish(self, session, exitstatus):
                    write_all(write_end, json.dumps({"exit_code": int(exitstatus),
                                                     "outcomes": observer.outcomes}).encode())
                    os._exit(0)

            pytest.main([*pytest_args, "--maxfail=1", *item["tests"]], plugins=[observer, Leave()])
        except BaseException:
            pass
        os._exit(0)
    os.close(write_end)
    began = time.monotonic()
    deadline = began + item["seconds"]
    data = b""
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_end], [], [], left)
        if ready:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            data += chunk
            if len(data) > 8 * 1024 * 1024:
                break
    for target in (-pid, pid):  # the child's group: whatever it started goes with it
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    os.waitpid(pid, 0)
    os.close(read_end)
    if timed_out:
        return {"verdict": "timed_out"}
    try:
        reported = json.loads(data)
    except ValueError:
        return {"verdict": "not_run", "detail": "the run did not report"}
    if not isinstance(reported, dict):
        return {"verdict": "not_run"}
    return {**reported, "verdict": "ran", "seconds": round(time.monotonic() - began, 3)}


def whole_diffs(pytest):
    """An assertion's whole diff in the failure message (the learner cannot ask for -vv here). The option exists
    from pytest 8; an older pytest is not given it."""
    major = pytest.__version__.split(".")[0]
    return ["-o", "verbosity_assertions=2"] if major.isdigit() and int(major) >= 8 else []


def main():
    mode, control, out_dir, project = sys.argv[1:5]
    pytest_args = sys.argv[6:]
    channel = int(os.environ.pop("ASSESSOR_RESULTS_FD"))
    os.set_inheritable(channel, False)  # the learner's subprocesses do not get it
    import coverage  # resolved from the read-only venv: -I keeps the cwd and PYTHONPATH off sys.path
    import pytest
    sys.pycache_prefix = "/tmp/.assessor-pycache"  # bytecode shipped next to the sources is never used
    sys.path[0:0] = [project, os.path.join(project, "src")]
    message = {"mode": mode, "finished": False}
    if mode == "mutants":
        try:
            results = run_mutants(channel, control, pytest_args, pytest)
        except BaseException as error:
            message["error"] = repr(error)[:500]
            finish(channel, message, 70)
        message.update(finished=True, exit_code=0, results=results)
        finish(channel, message, 0)
    if mode in ("collect", "mutant"):
        observer = Observer()
        extra = ["--collect-only", "-q"] if mode == "collect" else []
        try:
            code = int(pytest.main([*extra, *pytest_args], plugins=[observer]))
        except BaseException as error:
            message["error"] = repr(error)[:500]
            finish(channel, message, 70)
        message.update(finished=True, exit_code=code, **observer.report())
        finish(channel, message, code)
    import importlib.util
    spec = importlib.util.spec_from_file_location("assessor_canary", os.path.join(control, "assessor_canary.py"))
    canary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(canary)
    cov = coverage.Coverage(data_file=None, config_file=os.path.join(control, "coveragerc"))
    observer = Observer(cov)
    cov.start()
    canary.begin()
    try:
        code = int(pytest.main([*whole_diffs(pytest), *pytest_args], plugins=[observer]))
    except BaseException as error:
        cov.stop()
        message["error"] = repr(error)[:500]
        finish(channel, message, 70)
    canary.end()
    cov.stop()
    gc.collect()  # what the finished session kept in cycles (a failing test's frames) is freed first
    try:
        exported = export_coverage(cov.get_data())
    except MemoryError:
        exported = None  # reported as coverage data missing, never as a crash
    message.update(finished=True, exit_code=code, coverage=exported,
                   junit=read_junit(os.path.join(out_dir, "junit.xml")), **observer.report())
    finish(channel, message, code)


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
