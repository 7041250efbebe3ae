"""Learners' tests run for real in the sandbox: honest figures, hostile code contained, gaming flagged."""

import json
import os
import py_compile
import textwrap
from dataclasses import replace

import pytest

from assessor.engine import sandbox
from assessor.engine.measure.outcomes import Flag
from assessor.engine.measure.resultfiles import ResultFileError, parse_junit
from assessor.engine.toolchains.python.integrity import scan_for_gaming
from assessor.engine.toolchains.python.pytest_config import filter_addopts, learner_addopts, learner_pytest_config
from assessor.engine.toolchains.python.testrun import TestRunRequest, run_tests
from tests.sandbox_fixtures import (
    TEST_LIMITS, Listener, assert_no_sandbox_processes, free_disk_bytes, fresh_dir, mounts_under,
    shared_environment,
)

# Skipped on a developer machine without bubblewrap; in CI (CI=true) a missing bubblewrap fails loudly instead.
pytestmark = pytest.mark.skipif(not sandbox.bubblewrap_available() and not os.environ.get("CI"),
                                reason="bubblewrap is not available on this machine")

CART = """\
def total(prices, discount=0):
    if discount:
        return round(sum(prices) * (1 - discount), 2)
    return sum(prices)


def describe(count):
    if count == 0:
        return "empty"
    if count == 1:
        return "one item"
    return f"{count} items"


def debug_dump(cart):  # pragma: no cover
    print(cart)
    return cart
"""
TESTS = """\
from shop.cart import describe, total


def test_total():
    assert total([1, 2]) == 3


def test_discount():
    assert total([10], 0.5) == 5


def test_describe_empty():
    assert describe(0) == "empty"


def test_describe_many():
    assert describe(3) == "3 items"
"""
GOOD = {"shop/__init__.py": "", "shop/cart.py": CART, "tests/test_cart.py": TESTS}
# The honest figures for GOOD: 10 statements, 9 run (line 11 never); 6 branches, 5 taken; 3 lines excluded.
HONEST_LINE, HONEST_BRANCH, HONEST_PASSED = 90.0, 83.33, 4
FAILING_TEST = "\n\ndef test_wrong():\n    assert total([1]) == 2\n"


RUNS: list = []  # (work dir, run) of the current test, for the harm checks


def assess(make_repo, files: dict, *, limits=TEST_LIMITS, request_options: dict | None = None, **options):
    repo = make_repo(files)
    work_dir = fresh_dir("run") / "work"
    request = TestRunRequest(checkout=repo, root=repo, pytest_config=learner_pytest_config(repo),
                             **(request_options or {}))
    run = run_tests(repo, environment=shared_environment(), work_dir=work_dir, limits=limits, request=request,
                    **options)
    RUNS.append((work_dir, run))
    return run


def codes(run) -> set[str]:
    return {flag.code for flag in run.flags}


def with_conftest(source: str, extra: dict | None = None) -> dict:
    return {**GOOD, "tests/conftest.py": textwrap.dedent(source), **(extra or {})}


def assert_not_raised(run) -> None:
    """A gaming attempt never scores above the honest figures."""
    assert run.coverage is None or run.coverage.line_percent <= HONEST_LINE
    assert run.coverage is None or run.coverage.branch_percent <= HONEST_BRANCH
    assert run.tests is None or run.tests.passed <= HONEST_PASSED


@pytest.fixture(autouse=True)
def machine_unharmed():
    """After every run: none of its processes left, its tmpfs unmounted, its files gone, the disk as it was."""
    RUNS.clear()
    disk_before = free_disk_bytes()
    yield
    for work_dir, run in RUNS:
        assert_no_sandbox_processes(run.sandbox.uid)
        assert mounts_under(work_dir) == []
        assert not (work_dir / "area").exists()
    assert abs(free_disk_bytes() - disk_before) < 300 * 1024 * 1024


# ---------------------------------------------------------------- pure parts

def test_parse_junit_counts_one_outcome_per_test():
    xml = b"""<?xml version="1.0"?><testsuites><testsuite>
      <testcase classname="t" name="a"/>
      <testcase classname="t" name="b"><failure message="x"/></testcase>
      <testcase classname="t" name="b"><error message="teardown"/></testcase>
      <testcase classname="t" name="c"><skipped/></testcase>
      <testcase classname="t" name="d"><error message="boom"/></testcase>
      <testcase classname="" name="t.broken"><error message="collection failure"/></testcase>
    </testsuite></testsuites>"""
    summary = parse_junit(xml)
    assert (summary.passed, summary.failed, summary.errors, summary.skipped) == (1, 1, 2, 1)
    assert summary.collection_errors == 1 and summary.test_results == 4


def test_parse_junit_refuses_entities():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><testsuites>&a;</testsuites>'
    with pytest.raises(ResultFileError, match="DTD"):
        parse_junit(bomb)


def test_addopts_that_select_stop_or_redirect_are_dropped(make_repo):
    repo = make_repo({"pyproject.toml": textwrap.dedent("""
        [tool.pytest.ini_options]
        addopts = "-x --maxfail=1 -k fast --deselect t.py::a -p no:junitxml --junitxml=x.xml --co -s -n 4 --import-mode=importlib -p pytest_asyncio --strict-markers"
    """)})
    kept, dropped = filter_addopts(learner_addopts(repo))
    assert kept == ["--import-mode=importlib", "-p", "pytest_asyncio", "--strict-markers"]
    assert dropped == ["-x", "--maxfail=1", "-k", "fast", "--deselect", "t.py::a", "-p", "no:junitxml",
                       "--junitxml=x.xml", "--co", "-s", "-n", "4"]


def test_static_scan_finds_gaming_tools(make_repo):
    repo = make_repo({
        "tests/conftest.py": textwrap.dedent("""
            import os, sys
            import coverage
            from _pytest.terminal import TerminalReporter

            def pytest_runtest_makereport(item, call):
                sys.settrace(None)
                os._exit(0)
                open("junit.xml", "w")
                exec(compile("x = 1", "shop/cart.py", "exec"))
        """),
        "coverage.py": "",
    })
    found = {flag.code for flag in scan_for_gaming(repo)}
    # A report hook alone is no verdict (the canary judges what hooks did): it is listed from the run instead.
    assert found == {"coverage_api", "report_tampering", "tracing_api", "early_exit_call",
                     "junit_access", "code_forgery", "shadowing_module"}
    assert all(isinstance(flag, Flag) and flag.path for flag in scan_for_gaming(repo))


# ---------------------------------------------------------------- honest runs

@pytest.mark.slow
def test_good_capstone_with_config_that_tries_to_shrink_what_is_measured(make_repo):
    files = {
        **GOOD,
        ".coveragerc": "[run]\nomit = shop/*\nbranch = False\n[report]\nexclude_lines =\n    if\n    return\n",
        "setup.cfg": "[coverage:run]\nsource = tests\n[coverage:report]\nfail_under = 0\n",
        "pyproject.toml": textwrap.dedent("""
            [project]
            name = "shop"
            [tool.coverage.run]
            omit = ["shop/cart.py"]
            branch = false
            [tool.coverage.report]
            exclude_also = ["def describe"]
            [tool.pytest.ini_options]
            addopts = "-x --deselect tests/test_cart.py::test_total -p no:junitxml -k describe -q"
        """),
    }
    run = assess(make_repo, files)
    report = run.to_dict()
    assert report["tests"] == {"passed": 4, "failed": 0, "errors": 0, "skipped": 0, "total": 4}
    assert report["collected"] == 4
    coverage = report["coverage"]
    assert (coverage["line_percent"], coverage["branch_percent"], coverage["excluded_lines"]) == \
        (HONEST_LINE, HONEST_BRANCH, 3)
    cart = next(entry for entry in coverage["files"] if entry["path"] == "shop/cart.py")
    assert cart["statements"] == 10 and cart["covered_lines"] == 9 and cart["missing_lines"] == [11]
    assert cart["branches"] == 6 and cart["covered_branches"] == 5 and cart["excluded_lines"] == 3
    assert {entry["path"] for entry in coverage["files"]} == {"shop/__init__.py", "shop/cart.py"}
    assert report["sandbox"]["backend"] == "bubblewrap" and report["sandbox"]["killed_by"] is None
    # 1: the service's planted test failed, as it must
    assert report["sandbox"]["exit_code"] == 1 and report["sandbox"]["cpu_seconds"] > 0
    assert report["sandbox"]["max_rss_mb"] > 0
    assert report["flags"] == [] and report["output_tail"] == ""
    assert any("-x" in note and "--deselect" in note for note in report["notes"])
    json.dumps(report)


@pytest.mark.slow
def test_src_layout_and_failing_tests(make_repo):
    files = {"src/shop/__init__.py": "", "src/shop/cart.py": CART, "tests/test_cart.py": TESTS + FAILING_TEST}
    run = assess(make_repo, files)
    assert (run.tests.passed, run.tests.failed, run.tests.errors) == (4, 1, 0)
    assert run.coverage.line_percent == HONEST_LINE
    assert [entry.path for entry in run.coverage.files] == ["src/shop/__init__.py", "src/shop/cart.py"]
    assert "test_wrong" in run.output_tail and run.flags == []


@pytest.mark.slow
def test_no_tests(make_repo):
    run = assess(make_repo, {"shop/__init__.py": "", "shop/cart.py": CART})
    assert run.tests.total == 0 and run.collected == 0
    assert run.coverage.line_percent == 0.0 and run.coverage.statements == 10
    assert run.flags == []


@pytest.mark.slow
def test_import_and_syntax_errors_are_reported_and_other_tests_still_run(make_repo):
    run = assess(make_repo, {**GOOD, "tests/test_broken.py": "import shop.missing_module\n\ndef test_x():\n    pass\n",
                             "shop/legacy.py": "print 'python 2'\n"})
    assert (run.tests.passed, run.tests.errors) == (4, 1)
    assert "missing_module" in run.output_tail
    assert run.flags == []
    assert [entry.path for entry in run.coverage.files] == ["shop/__init__.py", "shop/cart.py"]
    assert any("shop/legacy.py could not be analysed" in note for note in run.notes)


# ---------------------------------------------------------------- hostile code

@pytest.mark.slow
def test_infinite_loop_is_stopped_by_the_cpu_limit(make_repo):
    run = assess(make_repo, {**GOOD, "tests/test_loop.py": "def test_loop():\n    while True:\n        pass\n"},
                 limits=replace(TEST_LIMITS, cpu_seconds=3))
    assert run.sandbox.killed_by == "cpu_time"
    assert run.tests is None and run.coverage is None
    assert any("cpu time limit" in note for note in run.notes)


@pytest.mark.slow
def test_sleeping_forever_is_stopped_by_the_wall_clock(make_repo):
    run = assess(make_repo, {**GOOD, "tests/test_sleep.py": "import time\n\ndef test_sleep():\n    time.sleep(600)\n"},
                 limits=replace(TEST_LIMITS, wall_seconds=4))
    assert run.sandbox.killed_by == "wall_time" and run.tests is None
    assert run.sandbox.wall_seconds < 6


@pytest.mark.slow
def test_fork_bomb(make_repo):
    bomb = "import os\n\ndef test_bomb():\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n"
    run = assess(make_repo, {**GOOD, "tests/test_bomb.py": bomb})
    assert run.sandbox.killed_by == "processes" and run.tests is None


@pytest.mark.slow
def test_memory_hog_fails_its_test_and_nothing_else(make_repo):
    hog = "def test_hog():\n    chunks = []\n    while True:\n        chunks.append(bytearray(64 * 1024 * 1024))\n"
    run = assess(make_repo, {**GOOD, "tests/test_hog.py": hog})
    assert (run.tests.passed, run.tests.failed) == (4, 1)
    assert "MemoryError" in run.output_tail
    assert run.sandbox.max_rss_mb < TEST_LIMITS.memory_mb


@pytest.mark.slow
def test_one_gigabyte_output_flood(make_repo):
    flood = textwrap.dedent("""
        import sys

        def test_flood(capfd):
            with capfd.disabled():
                block = "f" * (1 << 20)
                for _ in range(1024):
                    sys.stdout.write(block)
                sys.stdout.flush()
    """)
    run = assess(make_repo, {**GOOD, "tests/test_flood.py": flood})
    assert run.sandbox.output_bytes_total >= 1 << 30 and run.sandbox.output_truncated
    assert (run.tests.passed, run.tests.failed) == (5, 0)
    assert "5 passed" in run.sandbox.output_tail          # the end is kept, not buried
    assert len(run.sandbox.output_head) + len(run.sandbox.output_tail) <= TEST_LIMITS.output_bytes


@pytest.mark.slow
def test_writing_ten_gigabytes(make_repo):
    writer = textwrap.dedent("""
        def test_huge_file():
            block = b"z" * (1 << 20)
            with open("huge.bin", "wb") as handle:
                for _ in range(10 * 1024):
                    handle.write(block)

        def test_many_files():
            block = b"z" * (1 << 20)
            for index in range(10 * 1024):
                with open(f"part{index}.bin", "wb") as handle:
                    for _ in range(16):
                        handle.write(block)
    """)
    run = assess(make_repo, {**GOOD, "tests/test_disk.py": writer})
    assert (run.tests.passed, run.tests.failed) == (4, 2)
    assert "File too large" in run.sandbox.output and "No space left" in run.sandbox.output


@pytest.mark.slow
def test_socket_to_a_loopback_listener_fails(make_repo):
    listener = Listener()
    probe = f"import socket\n\ndef test_connect():\n    socket.create_connection(('127.0.0.1', {listener.port}), timeout=2)\n"
    try:
        run = assess(make_repo, {**GOOD, "tests/test_net.py": probe})
    finally:
        listener.close()
    assert (run.tests.passed, run.tests.failed) == (4, 1)
    assert listener.connections == 0


@pytest.mark.slow
def test_instance_key_and_shadow_are_unreadable(make_repo, monkeypatch):
    instance = fresh_dir("instance")
    (instance / "signing-key.pem").write_text("SIGNING-KEY-MATERIAL")
    monkeypatch.setenv("ASSESSOR_INSTANCE_PATH", str(instance))
    thief = textwrap.dedent(f"""
        import pytest

        @pytest.mark.parametrize("target", ["{instance}/signing-key.pem", "/etc/shadow",
                                            "{sandbox.SERVICE_ROOT}/instance/README.md"])
        def test_steal(target):
            print("GOT" + "CHA", open(target).read())
    """)
    run = assess(make_repo, {**GOOD, "tests/test_steal.py": thief})
    assert (run.tests.passed, run.tests.failed) == (4, 3)
    assert "SIGNING-KEY-MATERIAL" not in json.dumps(run.to_dict()) and "GOTCHA" not in run.sandbox.output


# ---------------------------------------------------------------- coverage gaming

@pytest.mark.slow
def test_forging_coverage_through_the_coverage_api(make_repo):
    conftest = """
        import coverage

        def pytest_sessionfinish(session):
            data = coverage.Coverage.current().get_data()
            for name in data.measured_files():
                data.add_arcs({name: {(a, a + 1) for a in range(1, 18)}})
    """
    run = assess(make_repo, with_conftest(conftest))
    assert "coverage_api" in codes(run) and run.coverage is None
    assert_not_raised(run)


@pytest.mark.slow
def test_stopping_coverage_without_naming_it(make_repo):
    conftest = """
        def pytest_sessionstart(session):
            __import__("cov" + "erage").Coverage.current().stop()
    """
    run = assess(make_repo, with_conftest(conftest))
    assert "coverage_stopped" in codes(run) and run.coverage is None
    assert run.tests.passed == HONEST_PASSED
    assert_not_raised(run)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sys.settrace(None)", "getattr(sys, 'set' + 'trace')(None)"])
def test_switching_the_tracer_off(make_repo, how):
    conftest = f"""
        import sys

        def pytest_sessionstart(session):
            {how}
    """
    run = assess(make_repo, with_conftest(conftest))
    assert "coverage_stopped" in codes(run) and run.coverage is None
    assert_not_raised(run)


@pytest.mark.slow
def test_fake_result_files_then_early_exit(make_repo):
    conftest = """
        import json, os, sys

        def pytest_unconfigure(config):
            out = sys.argv[3]
            fake = {"has_arcs": True, "files": {}}
            open(os.path.join(out, "coverage.json"), "w").write(json.dumps(fake))
            open(os.path.join(out, "jun" + "it.xml"), "w").write("<testsuites><testcase name='a'/></testsuites>")
            status = {"mode": "test", "finished": True, "exit_code": 0, "collected": 1,
                      "counts": {"passed": 1, "failed": 0, "error": 0, "skipped": 0}, "mac": "0" * 64}
            open(os.path.join(out, "status.json"), "w").write(json.dumps(status))
            getattr(os, "_" + "exit")(0)
    """
    run = assess(make_repo, with_conftest(conftest, {"tests/test_cart.py": TESTS + FAILING_TEST}))
    # Files on disk are never read as results: the runner sends them down a pipe the host holds.
    assert "early_exit" in codes(run)
    assert run.tests is None and run.coverage is None


@pytest.mark.slow
def test_os_exit_in_a_test(make_repo):
    run = assess(make_repo, {**GOOD, "tests/test_a_exit.py": "import os\n\ndef test_quit():\n    os._exit(0)\n"})
    assert {"early_exit", "early_exit_call"} <= codes(run)
    assert run.tests is None and run.coverage is None


@pytest.mark.slow
def test_sys_exit_while_loading_conftest(make_repo):
    run = assess(make_repo, with_conftest("import sys\nsys.exit(0)\n"))
    assert "early_exit" in codes(run) and run.tests is None and run.coverage is None


@pytest.mark.slow
def test_report_hook_turning_failures_into_passes(make_repo):
    conftest = """
        import pytest

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            report = outcome.get_result()
            if report.failed:
                report.outcome = "passed"
    """
    run = assess(make_repo, with_conftest(conftest, {"tests/test_cart.py": TESTS + FAILING_TEST}))
    assert "canary_passed" in codes(run) and run.tests is None and run.coverage is None
    hooks = [item for item in run.evidence if item["kind"] == "report_hook"]
    assert [(item["file"], item["line"]) for item in hooks] == [("tests/conftest.py", 4)]  # its decorator
    assert_not_raised(run)


@pytest.mark.slow
def test_monkeypatching_pytest_reporting(make_repo):
    conftest = """
        from _pytest import reports

        reports.TestReport.failed = property(lambda self: False)
    """
    run = assess(make_repo, with_conftest(conftest, {"tests/test_cart.py": TESTS + FAILING_TEST}))
    assert "report_tampering" in codes(run) and run.tests is None


@pytest.mark.slow
def test_rewriting_the_junit_file_after_pytest_wrote_it(make_repo):
    conftest = """
        def pytest_unconfigure(config):
            path = config.option.xmlpath
            cases = "".join(f"<testcase classname='t' name='t{i}'/>" for i in range(5))
            open(path, "w").write(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
    """
    run = assess(make_repo, with_conftest(conftest, {"tests/test_cart.py": TESTS + FAILING_TEST}))
    assert "junit_inconsistent" in codes(run) and run.tests is None


@pytest.mark.slow
def test_hiding_failing_tests_from_the_real_run(make_repo):
    conftest = """
        def pytest_collection_modifyitems(config, items):
            if not config.option.collectonly:
                items[:] = [item for item in items if "wrong" not in item.name]
    """
    run = assess(make_repo, with_conftest(conftest, {"tests/test_cart.py": TESTS + FAILING_TEST}))
    assert "results_missing" in codes(run)
    assert (run.tests.passed, run.tests.errors) == (4, 1)


@pytest.mark.slow
def test_compiled_code_attributed_to_a_source_file(make_repo):
    conftest = """
        import shop.cart

        exec(compile("x = 1\\n" * 17, shop.cart.__file__, "exec"), {})
    """
    run = assess(make_repo, with_conftest(conftest))
    assert {"code_forgery", "coverage_data_forged"} <= codes(run) and run.coverage is None


@pytest.mark.slow
def test_rewriting_the_measured_source_before_import(make_repo):
    conftest = """
        import pathlib

        target = pathlib.Path(__file__).parent.parent / "shop" / "cart.py"
        target.write_text("x = 1\\n" * 17)
    """
    run = assess(make_repo, with_conftest(conftest, {"tests/test_cart.py": "def test_nothing():\n    pass\n"}))
    assert "source_modified" in codes(run) and run.coverage is None


@pytest.mark.slow
def test_shipped_bytecode_is_never_used(make_repo, tmp_path):
    fake_source = tmp_path / "cart.py"
    fake_source.write_text("def total(prices, discount=0):\n    return 3 if not discount else 5\n\n\n"
                           "def describe(count):\n    return {0: 'empty'}.get(count, f'{count} items')\n"
                           + "x = 1\n" * 11)
    pyc = tmp_path / "cart.pyc"
    py_compile.compile(str(fake_source), cfile=str(pyc), dfile="shop/cart.py",
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    files = {**GOOD, "shop/__pycache__/cart.cpython-311.pyc": pyc.read_bytes()}
    run = assess(make_repo, files)
    assert run.coverage.line_percent == HONEST_LINE and run.flags == []


@pytest.mark.slow
def test_shadowing_the_coverage_module(make_repo):
    fake = "class Coverage:\n    def __init__(self, *a, **k):\n        pass\n"
    run = assess(make_repo, {**GOOD, "coverage.py": fake, "pytest.py": "raise SystemExit(0)\n"})
    assert "shadowing_module" in codes(run)
    assert run.tests.passed == HONEST_PASSED
    cart = next(entry for entry in run.coverage.files if entry.path == "shop/cart.py")
    assert cart.line_percent == HONEST_LINE
    assert_not_raised(run)


# ---------------------------------------------------------------- afterwards

@pytest.mark.slow
def test_next_assessment_is_unaffected(make_repo):
    run = assess(make_repo, GOOD)
    assert run.tests.passed == HONEST_PASSED and run.coverage.line_percent == HONEST_LINE and run.flags == []


@pytest.mark.slow
def test_unsafe_mode_without_bubblewrap_reports_its_backend(make_repo, monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_available", lambda: False)
    run = assess(make_repo, GOOD, unsafe_no_sandbox=True)
    assert run.to_dict()["sandbox"]["backend"] == "none"
    assert run.tests.passed == HONEST_PASSED and run.coverage.line_percent == HONEST_LINE


@pytest.mark.parametrize("output, reason", [
    ("ImportError while loading conftest '/p/tests/conftest.py'.\ntests/conftest.py:1: in <module>\n"
     "    import settings\nE   ModuleNotFoundError: No module named 'settings'\n"
     "E   Hint: make sure your test modules/packages have valid Python names.\n",
     "ModuleNotFoundError: No module named 'settings'"),
    ("E   pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings\nE   database_url\n"
     "E     Field required [type=missing]\nE       For further information visit https://errors.pydantic.dev/2.10/v/missing\n",
     "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings"),
    ("ERROR: usage: pytest [options] [file_or_dir]\npytest: error: unrecognized arguments: --cov\n",
     "pytest: error: unrecognized arguments: --cov"),
    ("nothing that looks like an error\nlast line\n", "last line"),
    ("", "no output"),
])
def test_a_failed_pytest_start_is_explained_by_its_exception_not_a_hint(output, reason):
    from assessor.engine.toolchains.python.testrun import _last_error

    assert _last_error(output) == reason



# ---------------------------------------------------------------- corroborated from outside the test process

RUNTIME_NAMED_HOOK = """
    import pytest

    def _flip(item, call):
        outcome = yield
        report = outcome.get_result()
        if report.failed:
            report.outcome = "passed"

    globals()["pytest_runtest_" + "makereport"] = pytest.hookimpl(hookwrapper=True)(_flip)
"""
# Finds the service's Coverage object (through the stack, or through the garbage collector) and adds every arc
# coverage's own parser sees in each measured file: 100% line and branch coverage if nothing looked.
FILL_COVERAGE = """
    import importlib
    import sys

    def _fill(cov):
        parser = importlib.import_module("cov" + "erage.parser")
        data = cov.get_data()
        for name in data.measured_files():
            found = parser.PythonParser(filename=name)
            found.parse_source()
            data.add_arcs({name: found.arcs()})

    def _find_coverage():
        {finder}

    def pytest_sessionfinish(session):
        _fill(_find_coverage())
"""
THROUGH_FRAMES = """frame = sys._getframe()
        while frame is not None:
            for value in list(frame.f_locals.values()):
                if type(value).__name__ == "Coverage":
                    return value
            frame = frame.f_back"""
THROUGH_GC = """gc = importlib.import_module("gc")
        return next(value for value in gc.get_objects() if type(value).__name__ == "Coverage")"""
# Looks everywhere the old runner kept its signing token, then forges a complete all-passing message down every
# pipe it holds and leaves before the runner can speak.
SECRET_HUNT = """
    import json
    import os
    import sys

    def _hunt():
        found = []
        frame = sys._getframe()
        while frame is not None:
            for name, value in list(frame.f_locals.items()):
                if name in ("token", "secret", "key", "mac") or isinstance(value, bytes) and len(value) == 32:
                    found.append(name)
            frame = frame.f_back
        found += [name for name in os.environ if "TOKEN" in name or "SECRET" in name]
        for folder in {os.getcwd(), os.path.dirname(sys.argv[0]), sys.argv[3]}:
            for entry in os.listdir(folder):
                if "token" in entry or "secret" in entry:
                    found.append(entry)
        return found

    def pytest_sessionfinish(session):
        with session.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print("SECRETS FOUND:", _hunt(), flush=True)
        tests = ["test_total", "test_discount", "test_describe_empty", "test_describe_many", "test_wrong"]
        fake = {"mode": "test", "finished": True, "exit_code": 0, "collected": len(tests),
                "outcomes": {f"tests/test_cart.py::{name}": "passed" for name in tests},
                "counts": {"passed": len(tests), "failed": 0, "error": 0, "skipped": 0}, "hooks": [],
                "cov" + "erage": {"has_arcs": True, "files": {}, "contexts": []},
                "ju" + "nit": "<testsuites><testsuite>" + "".join(
                    f"<testcase classname='tests.test_cart' name='{name}'/>" for name in tests) +
                    "</testsuite></testsuites>"}
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:") and int(fd) > 2:
                    os.write(int(fd), json.dumps(fake).encode())
            except OSError:
                pass
        getattr(os, "_" + "exit")(0)
"""


@pytest.mark.slow
def test_report_hook_registered_under_a_name_built_at_run_time(make_repo):
    conftest = textwrap.dedent(RUNTIME_NAMED_HOOK)
    assert scan_for_gaming(make_repo(with_conftest(conftest))) == []  # reading the code sees nothing
    run = assess(make_repo, with_conftest(conftest, {"tests/test_cart.py": TESTS + FAILING_TEST}))
    assert "canary_passed" in codes(run) and run.tests is None and run.coverage is None
    hooks = [item for item in run.evidence if item["kind"] == "report_hook"]
    assert [(item["file"], item["line"]) for item in hooks] == [("tests/conftest.py", 4)]
    assert "pytest_runtest_makereport implemented by _flip (a wrapper)" == hooks[0]["detail"]
    assert_not_raised(run)


@pytest.mark.slow
@pytest.mark.parametrize("finder, reach", [(THROUGH_FRAMES, "sys._getframe"), (THROUGH_GC, None)],
                         ids=["frames", "garbage-collector"])
def test_coverage_filled_by_reaching_into_the_runner(make_repo, finder, reach):
    conftest = textwrap.dedent(FILL_COVERAGE.replace("{finder}", finder))
    run = assess(make_repo, with_conftest(conftest, {"tests/test_cart.py": TESTS + FAILING_TEST}))
    assert "canary_code_run" in codes(run), run.flags
    assert run.tests is None and run.coverage is None
    if reach:
        assert any(item["kind"] == "reach_in" and reach in item["detail"] and item["file"] == "tests/conftest.py"
                   for item in run.evidence)
    assert_not_raised(run)


@pytest.mark.slow
def test_hunting_for_the_signing_secret_then_forging_the_results(make_repo):
    run = assess(make_repo, with_conftest(SECRET_HUNT, {"tests/test_cart.py": TESTS + FAILING_TEST}))
    assert "SECRETS FOUND: []" in run.sandbox.output
    assert scan_for_gaming(make_repo(with_conftest(SECRET_HUNT))) == []  # reading the code sees nothing
    assert {"canary_missing", "coverage_stopped"} <= codes(run), run.flags
    assert run.tests is None and run.coverage is None


HONEST_HOOKS = {
    # The common pattern for screenshots on failure: keeps each phase's report on the test item, changes nothing.
    "tests/conftest.py": textwrap.dedent("""
        import pytest

        @pytest.hookimpl(tryfirst=True, hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            setattr(item, "rep_" + outcome.get_result().when, outcome.get_result())
    """),
    "shop/log.py": "import inspect\n\n\ndef caller():\n    return inspect.currentframe().f_back.f_code.co_name\n",
}


@pytest.mark.slow
def test_an_honest_capstone_with_hooks_and_frames_is_never_flagged(make_repo):
    run = assess(make_repo, {**GOOD, **HONEST_HOOKS})
    assert run.flags == []
    assert (run.tests.passed, run.tests.failed, run.coverage.branch_percent) == (4, 0, HONEST_BRANCH)
    kinds = {(item["kind"], item["file"]) for item in run.evidence}
    assert {("report_hook", "tests/conftest.py"), ("reach_in", "shop/log.py")} <= kinds


@pytest.mark.slow
def test_mutation_sampling_counts_the_changes_the_tests_notice(make_repo):
    run = assess(make_repo, GOOD, request_options={"mutants": 5, "seed": "0123abcd"})
    strength = run.strength
    assert run.flags == [] and strength is not None and len(strength.results) == 5  # one change per covered line
    assert strength.judged == 5 and 0 < strength.noticed <= 5
    assert {result.mutant.file for result in strength.results} <= {"shop/cart.py"}
    for result in strength.survivors:
        assert result.mutant.tests and "→" in result.mutant.describe()
    again = assess(make_repo, GOOD, request_options={"mutants": 5, "seed": "0123abcd"}).strength
    assert [(r.mutant.line, r.mutant.after) for r in again.results] == \
        [(r.mutant.line, r.mutant.after) for r in strength.results]


@pytest.mark.slow
def test_tests_that_check_nothing_make_covered_figures_suspect(make_repo):
    weak = textwrap.dedent("""
        from shop.cart import describe, total

        def test_runs():
            for call in (lambda: total([1, 2]), lambda: total([10], 0.5), lambda: describe(0),
                         lambda: describe(1), lambda: describe(3)):
                try:
                    call()
                except Exception:
                    pass
    """)
    run = assess(make_repo, {**GOOD, "tests/test_cart.py": weak}, request_options={"mutants": 5, "seed": "s"})
    assert run.strength.judged == 5 and run.strength.noticed == 0
    assert codes(run) == {"figures_suspect"} and run.coverage is not None  # evidence; the figures stand
