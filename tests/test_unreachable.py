"""Which failures an absent server explains: the driver's own words, the declared port or host, never a guess."""

import json
from pathlib import Path

import pytest

from assessor.engine.measure.outcomes import TestCounts, absent_server_verdict, unavailable_note
from assessor.engine.measure.resultfiles import parse_junit
from assessor.engine.services import AbsentService, blame_for
from assessor.engine.toolchains.node.runners import parse_jest_json

MONGO = AbsentService(label="MongoDB", kind="mongodb", ports=(27017,), hosts=("mongo",))
MYSQL = AbsentService(label="MySQL/MariaDB", kind="mysql", ports=(3306,), hosts=("db",))
SMTP = AbsentService(label="an SMTP mail catcher", kind="smtp", ports=(1025,), hosts=("mailhog",))


@pytest.mark.parametrize("text, absent, blamed", [
    # pymongo, mongoose and the socket module, each reaching the absent server
    ("pymongo.errors.ServerSelectionTimeoutError: localhost:27017: [Errno 111] Connection refused", [MONGO],
     "MongoDB"),
    ("MongooseServerSelectionError: connect ECONNREFUSED 127.0.0.1:27017", [MONGO], "MongoDB"),
    ("socket.create_connection(('mongo', 27017))\nConnectionRefusedError: [Errno 111] Connection refused",
     [MONGO], "MongoDB"),
    ("pymysql.err.OperationalError: (2003, \"Can't connect to MySQL server on 'localhost'\")", [MYSQL],
     "MySQL/MariaDB"),
    ("smtplib.py:312: in _get_socket\nConnectionRefusedError: [Errno 111] Connection refused", [SMTP],
     "an SMTP mail catcher"),
    ("getaddrinfo ENOTFOUND mailhog", [SMTP], "an SMTP mail catcher"),
    # the first absent server the text names, when there are several
    ("connect ECONNREFUSED 127.0.0.1:3306", [MONGO, MYSQL], "MySQL/MariaDB"),
    # the learner's own failures: no sign of an unreachable server, or another server's port
    ("AssertionError: assert 41 == 42", [MONGO], None),
    ("mongo_document_to_dict() returned None", [MONGO], None),
    ("connect ECONNREFUSED 127.0.0.1:8080", [MONGO], None),
    ("port 270170 is not open: Connection refused", [MONGO], None),
    ("requests.exceptions.ConnectionError: Failed to establish a new connection: api.example.org", [MYSQL], None),
])
def test_an_absent_server_explains_only_failures_that_show_it(text, absent, blamed):
    assert blame_for(absent)(text) == blamed


def test_nothing_is_blamed_when_every_server_was_there():
    assert blame_for([]) is None


def test_junit_failures_an_absent_server_explains_are_counted_apart():
    xml = b"""<?xml version="1.0"?><testsuites><testsuite>
      <testcase classname="t" name="ok"/>
      <testcase classname="t" name="wrong"><failure message="assert 41 == 42">assert 41 == 42</failure></testcase>
      <testcase classname="t" name="stored"><failure message="ConnectionRefusedError: [Errno 111] Connection refused">
        socket.create_connection(("mongo", 27017))</failure></testcase>
      <testcase classname="t" name="setup"><error message="failed on setup">pymongo.errors.ServerSelectionTimeoutError:
        mongo:27017: [Errno 111] Connection refused</error></testcase>
    </testsuite></testsuites>"""
    summary = parse_junit(xml, blame=blame_for([MONGO]))
    # The raw counts stay what the runner saw (they are checked against it); the blamed ones are listed apart.
    assert (summary.passed, summary.failed, summary.errors) == (1, 2, 1)
    assert summary.unavailable == (("failed", "MongoDB"), ("error", "MongoDB"))
    assert [failure.name for failure in summary.failures] == ["wrong"]
    counts = TestCounts.of(passed=summary.passed, failed=summary.failed, errors=summary.errors,
                           skipped=summary.skipped, unavailable=summary.unavailable)
    assert counts == TestCounts(passed=1, failed=1, errors=0, skipped=0, total=2, unavailable=2,
                                needs={"MongoDB": 2})
    assert unavailable_note(counts) == ("2 need MongoDB (not available here): counted apart, not as failures; tests "
                                        "and coverage are scored on the 2 tests that could run")


def test_jest_failures_an_absent_server_explains_are_counted_apart(tmp_path: Path):
    report = {"testResults": [
        {"name": str(tmp_path / "orders.test.js"), "status": "failed", "assertionResults": [
            {"status": "passed", "fullName": "sums"},
            {"status": "failed", "fullName": "stores an order",
             "failureMessages": ["MongooseServerSelectionError: connect ECONNREFUSED 127.0.0.1:27017\n    at x"]},
            {"status": "failed", "fullName": "totals", "failureMessages": ["expect(received).toBe(expected)"]},
        ]},
        {"name": str(tmp_path / "db.test.js"), "status": "failed", "assertionResults": [],
         "message": "MongoNetworkError: failed to connect to server [mongo:27017]"},
    ]}
    counts = parse_jest_json(json.dumps(report).encode(), root=tmp_path, blame=blame_for([MONGO]))
    assert (counts.passed, counts.failed, counts.errors) == (1, 2, 1)
    assert counts.unavailable == (("failed", "MongoDB"), ("error", "MongoDB"))
    assert [failure.name for failure in counts.failures] == ["totals"]


@pytest.mark.parametrize("tests, output, verdict", [
    (TestCounts.of(passed=0, failed=2, errors=0, skipped=0, unavailable=(("failed", "MongoDB"),) * 2), "",
     "none of the tests could run without MongoDB, which this run did not have (2 needed it), so their results "
     "cannot be scored"),
    (TestCounts.of(passed=3, failed=1, errors=0, skipped=0, unavailable=(("failed", "MongoDB"),)), "", None),
    (None, "E   ConnectionRefusedError: [Errno 111] Connection refused ('mongo', 27017)",
     "the tests could not start without MongoDB, which this run did not have, so they cannot be scored"),
    # A run that produced nothing for another reason (forged, crashed) is not excused by an absent server.
    (None, "the service's runner did not report", None),
])
def test_a_suite_is_unmeasurable_only_when_nothing_could_run_without_the_absent_server(tests, output, verdict):
    assert absent_server_verdict(tests, [MONGO], output, blame_for([MONGO])) == verdict


def test_a_run_stopped_by_a_limit_while_a_declared_server_was_absent_is_not_scored_zero():
    # Drivers wait for an absent server (mongoose: 30 s a connection), which can use the whole time limit.
    assert absent_server_verdict(None, [MONGO], "", blame_for([MONGO]), "wall_time") == (
        "the test run was stopped by the wall time limit while MongoDB, which the tests declare, was not available "
        "here: tests waiting for it may have used the time, so the results cannot be scored")
    assert absent_server_verdict(None, [], "", None, "wall_time") is None
