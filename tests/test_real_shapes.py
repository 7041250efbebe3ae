"""Capstones shaped the way people shape them, assessed end to end in the real sandbox, and the figures compared
with coverage.py run by hand on the same code: Poetry, a service in a subfolder, requirements with includes,
unittest's tests.py, typed code, PostgreSQL from a GitHub Actions service, Redis from compose, a manifest, a pin
that clashes with the runner's default, services this installation lacks, and a language it does not assess."""

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from assessor.engine import sandbox
from assessor.cli import render_report
from assessor.config import resolve_paths
from assessor.engine.intake import SourcePolicy
from assessor.engine.pipeline import PipelineSettings, assess
from assessor.engine.rubric import find_rubric
from assessor.engine.toolchains.python.environment import uv_binary
from tests.conftest import with_strength
from tests.sandbox_fixtures import fresh_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.bubblewrap_available() and not os.environ.get("CI"),
                       reason="bubblewrap is not available on this machine"),
]

RUBRIC_ID = "senior-backend-capstone"


@pytest.fixture(scope="module")
def rubric():
    return find_rubric(RUBRIC_ID, resolve_paths().rubrics)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return PipelineSettings(work_root=fresh_dir("work"), cache_dir=tmp_path_factory.mktemp("cache"),
                            source_policy=SourcePolicy(allow_local=True))


def criterion(report, kind):
    return next(score for score in report.criteria if score.kind == kind)


def by_hand(repo: Path, *, requirements: list[str], source: list[str], env: dict | None = None,
            args: tuple[str, ...] = (), root: str = ".", omit: str | None = None) -> dict:
    """What a mentor gets with uv and coverage.py on the same code: passed tests, line and branch percent."""
    work = fresh_dir("by-hand")
    checkout = work / "checkout"
    shutil.copytree(repo, checkout, ignore=shutil.ignore_patterns(".git"))
    venv = work / "venv"
    subprocess.run([uv_binary(), "venv", "-q", "--python", "/usr/bin/python3", str(venv)], check=True)
    subprocess.run([uv_binary(), "pip", "install", "-q", "--python", str(venv / "bin/python"), *requirements,
                    "pytest", "coverage"], check=True)
    project = checkout / root
    run_env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(work), **(env or {})}
    subprocess.run([str(venv / "bin/python"), "-m", "coverage", "run", "--branch",
                    *[f"--source={name}" for name in source], *([f"--omit={omit}"] if omit else []), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={work / 'junit.xml'}", *args], cwd=project, env=run_env, capture_output=True)
    subprocess.run([str(venv / "bin/python"), "-m", "coverage", "json", "-q", "-o", str(work / "cov.json")],
                   cwd=project, env=run_env, check=True)
    totals = json.loads((work / "cov.json").read_text())["totals"]
    junit = (work / "junit.xml").read_text()
    failed = junit.count("<failure") + junit.count("<error")
    tests = int(junit.split('tests="')[1].split('"')[0])
    excluded = sum(len(entry["excluded_lines"]) for entry in json.loads((work / "cov.json").read_text())["files"].values())
    return {"passed": tests - failed - junit.count("<skipped"), "excluded_lines": excluded,
            "line_percent": round(100 * totals["covered_lines"] / totals["num_statements"], 2),
            "branch_percent": round(100 * totals["covered_branches"] / totals["num_branches"], 2)
            if totals["num_branches"] else 100.0}


def figures(report) -> dict:
    return {"passed": report.tests["passed"], "excluded_lines": report.coverage["excluded_lines"],
            "line_percent": report.coverage["line_percent"],
            "branch_percent": report.coverage["branch_percent"]}


LEDGER = '''\
"""A small typed ledger."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable


class Clock(Protocol):
    def now(self) -> float: ...


@attrs.define
class Ledger:
    entries: list[int] = attrs.field(factory=list)

    def add(self, amount: int) -> int:
        if amount == 0:
            raise ValueError("zero")
        self.entries.append(amount)
        return self.balance()

    def add_all(self, amounts: Iterable[int]) -> int:
        for amount in amounts:
            self.add(amount)
        return self.balance()

    def balance(self) -> int:
        return sum(self.entries)

    def overdrawn(self) -> bool:
        if self.balance() < 0:
            return True
        return False
'''
LEDGER_TESTS = '''\
import pytest

from ledger.book import Ledger


def test_add():
    assert Ledger().add(5) == 5


def test_add_all():
    assert Ledger().add_all([1, 2, 3]) == 6


def test_zero_is_refused():
    with pytest.raises(ValueError):
        Ledger().add(0)
'''


def test_poetry_project_with_typed_code_matches_coverage_by_hand(make_repo, settings, rubric):
    repo = make_repo({
        "pyproject.toml": """
            [tool.poetry]
            name = "ledger"
            version = "0.1.0"
            [tool.poetry.dependencies]
            python = "^3.11"
            attrs = "^23.1"
            [tool.poetry.group.dev.dependencies]
            pytest = "^8.0"
            [build-system]
            requires = ["poetry-core"]
            build-backend = "poetry.core.masonry.api"
        """,
        "ledger/__init__.py": "",
        "ledger/book.py": LEDGER,
        "tests/test_book.py": LEDGER_TESTS,
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.toolchain == {"name": "python", "root": ".", "detected_from": ["pyproject.toml"]}
    assert any(name.startswith("attrs==23.") for name in report.environment["installed"])
    assert any(name.startswith("pytest==8.") for name in report.environment["installed"])  # the group's ^8.0
    assert report.tests == {"passed": 3, "failed": 0, "errors": 0, "skipped": 0, "total": 3}
    # coverage.py's own exclusions hold: `if TYPE_CHECKING:` and the `...` stub are excluded, and counted.
    book = next(entry for entry in report.coverage["files"] if entry["path"] == "ledger/book.py")
    assert book["excluded_lines"] > 0
    assert figures(report) == by_hand(repo, requirements=["attrs>=23.1,<24"], source=["ledger"])


def test_service_in_a_subfolder_with_requirement_includes(make_repo, settings, rubric):
    repo = make_repo({
        "README.md": "# Shop\n",
        "docs/requirements.txt": "sphinx\n",  # a docs folder's requirements are not the service's
        "project/requirements.txt": "-r requirements-base.txt\n",
        "project/requirements-base.txt": "attrs>=23\n",
        "project/requirements-dev.txt": "-r requirements.txt\npytest>=8\n",
        "project/src/setup.py": "from setuptools import setup\nsetup(name='ledger', packages=['ledger'])\n",
        "project/src/ledger/__init__.py": "",
        "project/src/ledger/book.py": LEDGER,
        "project/tests/conftest.py": "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'src'))\n",
        "project/tests/test_book.py": LEDGER_TESTS,
    })
    report = assess(str(repo), rubric, settings=replace(settings, keep_sources=True))

    assert report.toolchain["root"] == "project"
    # The code view finds each measured file under the name coverage gives it (from the checkout, not the project).
    assert {entry["path"] for entry in report.coverage["files"]} <= set(report.sources.paths())
    assert "project/requirements.txt" in report.toolchain["detected_from"]
    assert any(name.startswith("attrs==") for name in report.environment["installed"])
    assert not any(name.startswith("sphinx") for name in report.environment["installed"])
    assert report.tests["passed"] == 3
    measured = {entry["path"] for entry in report.coverage["files"]}
    assert measured == {"project/src/ledger/__init__.py", "project/src/ledger/book.py"}  # never src/setup.py
    assert not any(worst["path"].endswith("setup.py") for worst in report.complexity["worst"])
    assert figures(report) == by_hand(repo, requirements=["attrs>=23"], source=["src/ledger"], root="project")


MEGA_TUTORIAL_APP = '''\
class User:
    def __init__(self, name):
        self.name = name
        self.following = set()

    def follow(self, other):
        if other is self:
            return False
        self.following.add(other.name)
        return True

    def is_following(self, other):
        return other.name in self.following
'''
MEGA_TUTORIAL_TESTS = '''\
import unittest

from app.models import User


class UserModelCase(unittest.TestCase):
    def test_follow(self):
        alice, bob = User("alice"), User("bob")
        self.assertTrue(alice.follow(bob))
        self.assertTrue(alice.is_following(bob))

    def test_self_follow(self):
        alice = User("alice")
        self.assertFalse(alice.follow(alice))


if __name__ == "__main__":
    unittest.main(verbosity=2)
'''


def test_unittest_tests_py_is_collected_and_never_measured(make_repo, settings, rubric):
    repo = make_repo({
        "requirements.txt": "",
        "app/__init__.py": "",
        "app/models.py": MEGA_TUTORIAL_APP,
        "microblog.py": "from app.models import User\n",
        "tests.py": MEGA_TUTORIAL_TESTS,
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests == {"passed": 2, "failed": 0, "errors": 0, "skipped": 0, "total": 2}
    measured = {entry["path"] for entry in report.coverage["files"]}
    assert "tests.py" not in measured and "app/models.py" in measured
    assert figures(report) == by_hand(repo, requirements=[], source=["."], omit="tests.py",
                                      args=("-o", "python_files=tests.py"))


PG_STORE = '''\
import os

import psycopg


def connect():
    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


def setup(connection):
    connection.execute("CREATE TABLE IF NOT EXISTS stock (sku text PRIMARY KEY, count int NOT NULL)")
    connection.execute("INSERT INTO stock VALUES ('apple', 0) ON CONFLICT (sku) DO UPDATE SET count = 0")


def reserve(connection, sku):
    with connection.transaction():
        row = connection.execute("SELECT count FROM stock WHERE sku = %s FOR UPDATE", (sku,)).fetchone()
        if row is None:
            raise KeyError(sku)
        connection.execute("UPDATE stock SET count = count + 1 WHERE sku = %s", (sku,))
        return row[0] + 1
'''
PG_TESTS = '''\
import threading

import pytest

from stock.store import connect, reserve, setup


def test_reserve_counts():
    with connect() as connection:
        setup(connection)
        assert reserve(connection, "apple") == 1


def test_concurrent_reservations_lose_no_update():
    with connect() as connection:
        setup(connection)

    def worker():
        with connect() as mine:
            for _ in range(10):
                reserve(mine, "apple")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with connect() as connection:
        assert connection.execute("SELECT count FROM stock WHERE sku = 'apple'").fetchone()[0] == 40


def test_unknown_sku():
    with connect() as connection:
        setup(connection)
        with pytest.raises(KeyError):
            reserve(connection, "pear")
'''
PG_WORKFLOW = """
    name: ci
    on: [push, pull_request]
    jobs:
      test:
        runs-on: ubuntu-latest
        services:
          postgres:
            image: postgres:16
            env:
              POSTGRES_USER: stock
              POSTGRES_PASSWORD: stock
              POSTGRES_DB: stock_test
            ports: ["5432:5432"]
            options: --health-cmd pg_isready
        steps:
          - uses: actions/checkout@v4
          - run: pip install -r requirements.txt
          - name: Tests
            env:
              DATABASE_URL: postgresql://stock:stock@localhost:5432/stock_test
            run: python -m pytest tests -q
"""


def host_database_url() -> str | None:
    url = os.environ.get("ASSESSOR_TEST_DATABASE_URL")
    return url.replace("postgresql+psycopg://", "postgresql://") if url else None


def test_postgresql_from_a_github_actions_service_is_started_and_used(make_repo, settings, rubric):
    repo = make_repo({
        ".github/workflows/ci.yml": PG_WORKFLOW,
        "requirements.txt": "psycopg[binary]>=3.1\n",
        "stock/__init__.py": "",
        "stock/store.py": PG_STORE,
        "tests/test_store.py": PG_TESTS,
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests == {"passed": 3, "failed": 0, "errors": 0, "skipped": 0, "total": 3}, report.output_tail
    started = report.services["started"]
    assert [(entry["name"], entry["status"]) for entry in started] == [("postgresql", "started")]
    assert report.services["env"] == ["DATABASE_URL"]
    assert "job 'test', step 'Tests'" in report.services["env_sources"][0]
    assert criterion(report, "tests").status == "scored"
    url = host_database_url()
    if url is None and not os.environ.get("CI"):
        pytest.skip("no PostgreSQL server for the by-hand comparison (set ASSESSOR_TEST_DATABASE_URL)")
    assert figures(report) == by_hand(repo, requirements=["psycopg[binary]>=3.1"], source=["stock"],
                                      env={"DATABASE_URL": url}, args=("tests",))


REDIS_CACHE = '''\
import os

import redis


def client():
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def hit(key):
    count = client().incr(key)
    if count == 1:
        client().expire(key, 60)
    return count
'''
REDIS_TESTS = '''\
import uuid

from cache.counter import client, hit


def test_ping():
    assert client().ping()


def test_hits_count_up():
    key = uuid.uuid4().hex
    assert [hit(key), hit(key)] == [1, 2]
    assert 0 < client().ttl(key) <= 60
'''


def test_redis_from_compose_with_the_app_environment(make_repo, settings, rubric):
    repo = make_repo({
        "docker-compose.yml": """
            services:
              api:
                build: .
                environment:
                  REDIS_URL: redis://cache:6379/0
              cache:
                image: redis:7-alpine
                ports: ["6380:6379"]
        """,
        "requirements.txt": "redis>=5\n",
        "cache/__init__.py": "",
        "cache/counter.py": REDIS_CACHE,
        "tests/test_counter.py": REDIS_TESTS,
    })
    report = assess(str(repo), with_strength(rubric, mutants=5), settings=settings)

    assert report.tests["passed"] == 2 and report.tests["failed"] == 0, report.output_tail
    assert report.services["needed"][0]["ports"] == [6379, 6380]
    assert "cache" in report.services["hosts"]
    assert report.coverage["line_percent"] == 100.0
    # With a server, each change gets its own sandbox and a fresh Redis: no count carries over between them.
    strength = report.strength
    assert strength["sampled"] == strength["judged"] == 4, strength  # the four covered lines a change fits
    assert strength["noticed"] >= 3, strength["mutants"]
    assert criterion(report, "strength").status == "scored"


def test_manifest_names_root_services_env_and_test_command(make_repo, settings, rubric, monkeypatch):
    monkeypatch.setenv("ASSESSOR_WORKER_SECRET", "never-in-the-sandbox")
    repo = make_repo({
        "capstone.toml": """
            root = "svc"
            test = "pytest tests/unit"
            services = ["redis"]
            [env]
            REDIS_URL = "redis://localhost:6379/3"
        """,
        "web/package.json": '{"name": "frontend"}\n',
        "svc/requirements.txt": "redis>=5\n",
        "svc/cache/__init__.py": "",
        "svc/cache/counter.py": REDIS_CACHE,
        "svc/tests/unit/test_counter.py": REDIS_TESTS,
        "svc/tests/slow/test_never.py": "def test_not_selected():\n    assert False\n",
        "svc/tests/unit/test_environment.py": """
            import os

            def test_only_declared_variables_arrive():
                assert os.environ["REDIS_URL"] == "redis://localhost:6379/3"
                assert "ASSESSOR_WORKER_SECRET" not in os.environ
                assert not any(name.startswith("ASSESSOR_") for name in os.environ)
        """,
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.toolchain["root"] == "svc"
    assert report.tests == {"passed": 3, "failed": 0, "errors": 0, "skipped": 0, "total": 3}, report.output_tail
    assert report.services["env_sources"] == ["capstone.toml"]


def test_a_pin_that_clashes_with_the_runners_default_is_resolved_not_refused(make_repo, settings, rubric):
    repo = make_repo({
        "requirements.txt": "packaging==23.2\n",
        "shop/__init__.py": "def answer():\n    return 42\n",
        "tests/test_shop.py": "from shop import answer\n\ndef test_answer():\n    assert answer() == 42\n",
    })
    report = assess(str(repo), rubric, settings=settings)

    installed = dict(line.split("==") for line in report.environment["installed"])
    assert installed["packaging"] == "23.2"
    major, minor = (int(part) for part in installed["pytest"].split(".")[:2])
    assert 7 <= major <= 9 and (major, minor) < (9, 2)  # pytest 9.2 needs packaging>=24
    assert report.tests["passed"] == 1


def test_a_pytest_pin_outside_the_supported_range_is_explained(make_repo, settings, rubric):
    repo = make_repo({
        "requirements.txt": "pytest<7\n",
        "shop/__init__.py": "def answer():\n    return 42\n",
        "tests/test_shop.py": "from shop import answer\n\ndef test_answer():\n    assert answer() == 42\n",
    })
    report = assess(str(repo), rubric, settings=settings)

    assert any("you ask for pytest<7" in note and "7.0 and <10" in note for note in report.notes)
    assert report.tests["passed"] == 1


def test_no_tests_is_a_finding_with_pytests_message(make_repo, settings, rubric):
    repo = make_repo({"requirements.txt": "", "shop/__init__.py": "def answer():\n    return 42\n",
                      "check_shop.py": "from shop import answer\nassert answer() == 42\n"})
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests["total"] == 0
    assert any(note.startswith("pytest collected no tests (no tests ran") for note in report.notes)
    assert "no tests ran" in report.output_tail
    assert criterion(report, "tests").status == "scored" and criterion(report, "tests").level == 0
    # The lines run on import are no measure of the tests: coverage is not scored, never a 0.
    coverage = criterion(report, "coverage")
    assert coverage.status == "not_measured" and coverage.points is None
    assert coverage.evidence[0] == "no test ran, so coverage (only the lines run on import) was not measured"


def test_pytest_that_cannot_start_names_the_exception_and_scores_no_coverage(make_repo, settings, rubric):
    repo = make_repo({"requirements.txt": "", "shop/__init__.py": "TAX = 0.2\n\n\ndef answer():\n    return 42\n",
                      "tests/conftest.py": "import shop\nimport settings_that_do_not_exist\n",
                      "tests/test_shop.py": "def test_answer():\n    assert True\n"})
    report = assess(str(repo), rubric, settings=settings)

    assert "pytest could not run the tests: ModuleNotFoundError: No module named 'settings_that_do_not_exist'" \
        in report.notes
    assert criterion(report, "coverage").status == "not_measured"


MONGO_TESTS = (
    "import os\nimport socket\nfrom urllib.parse import urlsplit\n\n\n"
    "def orders_collection():\n"
    "    address = urlsplit(os.environ['MONGO_URL'])\n"
    "    return socket.create_connection((address.hostname, address.port), timeout=2)\n\n\n"
    "def test_orders_are_stored():\n    orders_collection().close()\n\n\n"
    "def test_orders_are_listed():\n    orders_collection().close()\n"
)


def test_tests_that_need_nothing_run_when_a_declared_server_is_absent(make_repo, settings, rubric):
    repo = make_repo({
        "docker-compose.yml": "services:\n  mongo:\n    image: mongo:7\n  app:\n    build: .\n    environment:\n"
                              "      MONGO_URL: mongodb://mongo:27017/shop\n",
        "requirements.txt": "",
        "shop/__init__.py": "def answer():\n    return 42\n\n\ndef unused():\n    return 0\n",
        "tests/test_shop.py": "from shop import answer\n\ndef test_answer():\n    assert answer() == 42\n\n\n"
                              "def test_wrong():\n    assert answer() == 41\n",
        "tests/test_orders.py": MONGO_TESTS,
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests == {"passed": 1, "failed": 1, "errors": 0, "skipped": 0, "total": 2, "unavailable": 2,
                            "needs": {"MongoDB": 2}}
    # The learner's own failure is listed; the two that could not reach MongoDB are not failures.
    assert [failure["name"] for failure in report.failures] == ["test_wrong"]
    tests = criterion(report, "tests")
    assert tests.status == "scored" and list(tests.evidence[:2]) == [
        "1 passed, 1 failed, 0 errors, 0 skipped", "2 more need MongoDB (not available here)"]
    assert criterion(report, "coverage").status == "scored"
    assert report.coverage["covered_lines"] == 3 and report.coverage["statements"] == 4
    assert ("MongoDB (docker-compose.yml service 'mongo' (mongo:7); the URL in MONGO_URL) is not available here: "
            "this installation does not provide MongoDB; the tests that need it are counted apart") in report.notes
    assert "2 need MongoDB (not available here): counted apart, not as failures; tests and coverage are scored on " \
           "the 2 tests that could run" in report.notes
    table = render_report(report)
    assert "2 need MongoDB (not available here)" in table


def test_a_suite_that_cannot_run_without_an_absent_server_is_not_measured(make_repo, settings, rubric):
    repo = make_repo({
        "docker-compose.yml": "services:\n  mongo:\n    image: mongo:7\n  app:\n    build: .\n    environment:\n"
                              "      MONGO_URL: mongodb://mongo:27017/shop\n",
        "requirements.txt": "",
        "shop/__init__.py": "def answer():\n    return 42\n",
        "tests/test_orders.py": MONGO_TESTS,
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests["unavailable"] == 2 and report.tests["total"] == 0
    for kind in ("tests", "coverage"):
        score = criterion(report, kind)
        assert score.status == "not_measured" and score.points is None
        assert score.evidence[0] == ("none of the tests could run without MongoDB, which this run did not have "
                                     "(2 needed it), so their results cannot be scored")
    assert criterion(report, "complexity").status == "scored"


def test_an_unsupported_language_is_named_and_never_scored_zero(make_repo, settings, rubric):
    repo = make_repo({"go.mod": "module example.org/shop\n\ngo 1.22\n",
                      "main.go": "package main\n\nfunc main() {}\n",
                      "main_test.go": "package main\n"})
    report = assess(str(repo), rubric, settings=settings)

    for kind in ("tests", "coverage", "complexity"):
        score = criterion(report, kind)
        assert score.status == "not_measured" and score.points is None
        assert score.evidence[0].startswith("a Go module (go.mod): this installation assesses Python")
    assert report.toolchain is None and report.tests is None
    assert "tamper" not in json.dumps([score.evidence for score in report.criteria])


def test_a_setup_py_project_is_read_by_building_it_in_the_sandbox(make_repo, settings, rubric):
    flag = Path("/tmp/assessor-setup-py-ran-on-the-host")
    flag.unlink(missing_ok=True)
    repo = make_repo({
        "setup.py": f"""
            from setuptools import setup
            open({str(flag)!r}, "w").write("ran")  # inside the sandbox this /tmp is the sandbox's own
            setup(name="shop", version="1.0", packages=["shop"], install_requires=["attrs>=23"],
                  extras_require={{"test": ["iniconfig"], "docs": ["sphinx"]}})
        """,
        "shop/__init__.py": "import attrs\n\n\ndef answer():\n    return 42\n",
        "tests/test_shop.py": "from shop import answer\n\ndef test_answer():\n    assert answer() == 42\n",
    })
    report = assess(str(repo), rubric, settings=settings)

    assert not flag.exists()
    installed = {line.split("==")[0] for line in report.environment["installed"]}
    assert {"attrs", "iniconfig"} <= installed and "sphinx" not in installed
    assert any("setup.py declares 2 dependencies" in note for note in report.notes)
    assert report.tests["passed"] == 1


def test_the_python_a_project_declares_is_the_one_its_tests_run_on(make_repo, settings, rubric):
    # collections.MutableMapping went away in Python 3.10: this 2019-style code runs only on the Python it names.
    repo = make_repo({
        ".python-version": "3.9.18\n",
        "requirements.txt": "",
        "shop/__init__.py": "import collections\n\n\nclass Basket(collections.MutableMapping):\n    pass\n\n\n"
                            "def answer():\n    return 42\n",
        "tests/test_shop.py": "import sys\n\nfrom shop import answer\n\n\ndef test_answer():\n"
                              "    assert sys.version_info[:2] == (3, 9) and answer() == 42\n",
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests["passed"] == 1 and report.tests["failed"] == 0
    assert report.environment["interpreter"]["version"].startswith("3.9.")
    assert report.environment["interpreter"]["reason"].endswith("as .python-version: 3.9")
    assert any(note.startswith("the tests ran on Python 3.9.") for note in report.notes)
    assert criterion(report, "coverage").status == "scored"


def test_a_project_needing_a_python_this_worker_lacks_is_not_measured(make_repo, settings, rubric):
    repo = make_repo({
        "pyproject.toml": "[project]\nname = 'shop'\nversion = '1'\nrequires-python = '>=3.99'\n",
        "shop/__init__.py": "def answer():\n    return 42\n",
        "tests/test_shop.py": "from shop import answer\n\ndef test_answer():\n    assert answer() == 42\n",
    })
    report = assess(str(repo), rubric, settings=settings)

    for kind in ("tests", "coverage"):
        score = criterion(report, kind)
        assert score.status == "not_measured" and score.points is None
        assert score.evidence[0].startswith("this project needs Python requires-python in pyproject.toml: >=3.99; "
                                            "this worker has ")
        assert "3.11" in score.evidence[0]
    assert report.tests is None


DJANGO_SETTINGS = '''\
import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

SECRET_KEY = os.environ.get("SECRET_KEY", "test")
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "catalog"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if os.environ.get("FILE_UPLOAD_STRATEGY") not in ("direct", "s3"):
    raise ImproperlyConfigured(f"FILE_UPLOAD_STRATEGY must be direct or s3, not {os.environ.get('FILE_UPLOAD_STRATEGY')!r}")
_url = urlsplit(os.environ["DATABASE_URL"])
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _url.path.lstrip("/"),
                         "USER": _url.username, "PASSWORD": _url.password, "HOST": _url.hostname, "PORT": _url.port}}
'''
DJANGO_MODELS = '''\
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    stock = models.IntegerField(default=0)

    def take(self, quantity):
        if quantity > self.stock:
            raise ValueError("not enough stock")
        self.stock -= quantity
        self.save()
        return self.stock
'''
DJANGO_TESTS = '''\
import pytest

from catalog.models import Product


@pytest.mark.django_db
def test_take_lowers_the_stock():
    product = Product.objects.create(name="pen", stock=5)
    assert product.take(2) == 3
    assert Product.objects.get(pk=product.pk).stock == 3


@pytest.mark.django_db
def test_taking_too_much_is_refused():
    product = Product.objects.create(name="pen", stock=1)
    with pytest.raises(ValueError):
        product.take(2)
'''
DJANGO_WORKFLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    services:
      postgres:
        image: postgres:16
        env: {POSTGRES_USER: shop, POSTGRES_PASSWORD: secret, POSTGRES_DB: shop}
        ports: ["5432:5432"]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install -r requirements.txt
      - run: pytest
"""


def test_django_with_pytest_django_postgresql_in_ci_and_a_quoted_env_file(make_repo, settings, rubric):
    repo = make_repo({
        ".github/workflows/ci.yml": DJANGO_WORKFLOW,
        ".env": 'DATABASE_URL="postgres://shop:secret@localhost:5432/shop" # local database\n'
                'FILE_UPLOAD_STRATEGY="direct" # pass-thru\n',
        "requirements.txt": "django>=5.0,<6\npytest-django>=4.8\npsycopg[binary]>=3.1\n",
        "pytest.ini": "[pytest]\nDJANGO_SETTINGS_MODULE = shop.settings\n",
        "manage.py": "import os\nimport sys\n\nif __name__ == '__main__':\n"
                     "    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings')\n"
                     "    from django.core.management import execute_from_command_line\n"
                     "    execute_from_command_line(sys.argv)\n",
        "shop/__init__.py": "",
        "shop/settings.py": DJANGO_SETTINGS,
        "catalog/__init__.py": "",
        "catalog/models.py": DJANGO_MODELS,
        "tests/test_products.py": DJANGO_TESTS,
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests == {"passed": 2, "failed": 0, "errors": 0, "skipped": 0, "total": 2}, report.output_tail
    assert [(entry["name"], entry["status"]) for entry in report.services["started"]] == [("postgresql", "started")]
    assert report.environment["interpreter"]["version"].startswith("3.11.")
    models = next(entry for entry in report.coverage["files"] if entry["path"] == "catalog/models.py")
    assert models["line_percent"] == 100.0
    assert "manage.py" not in {entry["path"] for entry in report.coverage["files"]}


def test_a_failing_assertion_keeps_its_whole_diff_line_by_line(make_repo, settings, rubric):
    """pytest cuts an assertion's diff ("use '-vv' to show") unless asked; the learner cannot ask here."""
    repo = make_repo({
        "requirements.txt": "",
        "inventory/__init__.py": "def stock():\n    return {f'item{n:02}': n for n in range(40)}\n",
        "tests/test_inventory.py": "from inventory import stock\n\n\ndef test_stock():\n"
                                   "    expected = {f'item{n:02}': n for n in range(40)}\n"
                                   "    expected['item39'] = 0\n    assert stock() == expected\n",
    })
    report = assess(str(repo), rubric, settings=settings)
    [failure] = report.failures
    assert failure["name"] == "test_stock"
    assert "'item39': 39" in failure["message"] and "'item39': 0" in failure["message"]
    assert "-vv" not in failure["message"] and "\n" in failure["message"]


def test_a_project_on_pytest_7_that_turns_warnings_into_errors_still_runs(make_repo, settings, rubric):
    """A project pinned to pytest 7 (which has no option for whole diffs) with warnings as errors runs as before."""
    repo = make_repo({
        "requirements.txt": "pytest==7.4.0\n",
        "pyproject.toml": '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n',
        "shop/__init__.py": "def answer():\n    return 42\n",
        "tests/test_shop.py": "from shop import answer\n\n\ndef test_answer():\n    assert answer() == 42\n\n\n"
                              "def test_wrong():\n    assert answer() == 41\n",
    })
    report = assess(str(repo), rubric, settings=settings)
    assert (report.tests["passed"], report.tests["failed"], report.tests["errors"]) == (1, 1, 0)
    [failure] = report.failures
    assert failure["name"] == "test_wrong" and "assert 42 == 41" in failure["message"]
