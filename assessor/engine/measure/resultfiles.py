"""Read what a sandboxed run sent or wrote, as untrusted data: no links followed, sizes capped, one message."""

import json
import os
import shutil
import stat
import textwrap
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

MAX_STATUS_BYTES = 1024 * 1024
MAX_JUNIT_BYTES = 20 * 1024 * 1024
# Characters of a failing test's message kept for the report: enough for an assertion's whole diff.
MAX_FAILURE_MESSAGE = 4000
MAX_FAILURES_KEPT = 50


class ResultFileError(Exception):
    """A result file in the sandbox's output directory is missing, too large, or not a plain file."""


class ResultChangedError(ResultFileError):
    """The results channel carried more than the service's runner sent: something else wrote to it."""


@dataclass(frozen=True)
class TestFailure:
    """One failing or erroring test as the JUnit report names it."""

    __test__ = False
    name: str
    classname: str
    outcome: str  # failed or error
    message: str
    file: str | None = None
    line: int | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "classname": self.classname, "outcome": self.outcome, "message": self.message,
                "file": self.file, "line": self.line}


@dataclass(frozen=True)
class JunitSummary:
    """Counts read from a JUnit file; collection errors are kept apart from test results."""

    passed: int
    failed: int
    errors: int
    skipped: int
    collection_errors: int
    failures: tuple[TestFailure, ...] = ()
    # Failing or erroring tests whose failure shows an absent server: (their outcome, the server), counted above.
    unavailable: tuple[tuple[str, str], ...] = ()
    left_out: str | None = None   # the outcome of the test the service added (`leave_out`), None if absent

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    @property
    def test_results(self) -> int:
        return self.total - self.collection_errors


def clear_out_dir(out_dir: Path) -> None:
    """Empty the output directory: nothing of a previous run stays."""
    for entry in out_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def read_channel_message(results: bytes | None, *, overflow: bool = False) -> dict:
    """The one JSON object the service's runner sent down the results channel. Anything else there (nothing,
    two messages, trailing bytes) means the channel was used by someone else too."""
    if overflow:
        raise ResultChangedError("the results channel carried more than the service's runner ever sends")
    if not results:
        raise ResultFileError("nothing was sent on the results channel")
    try:
        text = results.decode("utf-8")
        value, end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        raise ResultFileError("the results channel did not carry one complete message") from None
    if text[end:].strip():
        raise ResultChangedError("the results channel carried more than one message")
    if not isinstance(value, dict):
        raise ResultFileError("the results channel did not carry an object")
    return value


def read_result_file(out_dir: Path, name: str, max_bytes: int) -> bytes:
    """A result file the sandbox wrote, read without following links and only if it is small and plain."""
    try:
        directory = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise ResultFileError(f"output directory unusable: {error.strerror}") from None
    try:
        try:
            handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
        except FileNotFoundError:
            raise ResultFileError(f"{name} was not written") from None
        except OSError as error:
            raise ResultFileError(f"{name} could not be opened: {error.strerror}") from None
        try:
            info = os.fstat(handle)
            if not stat.S_ISREG(info.st_mode):
                raise ResultFileError(f"{name} is not a regular file")
            if info.st_size > max_bytes:
                raise ResultFileError(f"{name} is larger than {max_bytes} bytes")
            with os.fdopen(handle, "rb", closefd=False) as reader:
                data = reader.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise ResultFileError(f"{name} is larger than {max_bytes} bytes")
            return data
        finally:
            os.close(handle)
    finally:
        os.close(directory)


def read_json_result(out_dir: Path, name: str, max_bytes: int) -> dict:
    data = read_result_file(out_dir, name, max_bytes)
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise ResultFileError(f"{name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ResultFileError(f"{name} does not hold an object")
    return value


def parse_junit(data: bytes, *, first_line: int = 1, blame=None,
                leave_out: tuple[str, str] | None = None) -> JunitSummary:
    """Counts from a JUnit XML document; one outcome per test, the worst one when a test has several.
    `first_line`: the number the writer gives a file's first line (pytest's xunit1 `line` counts from 0).
    `blame(text)`: the absent server a failure's text shows was unreachable, or None; `leave_out`: the
    (classname, name) of a test the service added, not counted (classname None: any)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ResultFileError("junit.xml declares a DTD or entities, which test runners never write")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise ResultFileError(f"junit.xml is not well-formed XML ({error})") from None
    ranks = RANKS
    left_out: str | None = None
    outcomes: dict[tuple[str, str], str] = {}
    details: dict[tuple[str, str], TestFailure] = {}
    blamed: dict[tuple[str, str], str] = {}
    collection_errors: set[tuple[str, str]] = set()
    for case in root.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        if leave_out is not None and key[1] == leave_out[1] and leave_out[0] in (None, key[0]):
            left_out = _worst(left_out, _case_outcome(case))
            continue
        outcome = "passed"
        detail = None
        for child in case:
            found = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(child.tag)
            if found and ranks[found] > ranks[outcome]:
                outcome = found
                if found in ("failed", "error"):
                    detail = child
            if child.tag == "error" and child.get("message") == "collection failure":
                collection_errors.add(key)
        if key not in outcomes or ranks[outcome] > ranks[outcomes[key]]:
            outcomes[key] = outcome
            server = blame(f"{detail.get('message') or ''}\n{detail.text or ''}") if blame and detail is not None \
                else None
            if server:
                blamed[key] = server
            else:
                blamed.pop(key, None)
            if detail is not None and not server and len(details) < MAX_FAILURES_KEPT:
                details[key] = _failure(case, detail, outcome, first_line)
    values = list(outcomes.values())
    return JunitSummary(passed=values.count("passed"), failed=values.count("failed"), errors=values.count("error"),
                        skipped=values.count("skipped"), collection_errors=len(collection_errors),
                        failures=tuple(failure for key, failure in details.items()
                                       if outcomes[key] != "passed" and key not in blamed),
                        unavailable=tuple((outcomes[key], server) for key, server in blamed.items()
                                          if outcomes[key] in ("failed", "error")),
                        left_out=left_out)


RANKS = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}


def _case_outcome(case) -> str:
    outcome = "passed"
    for child in case:
        found = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(child.tag)
        if found:
            outcome = _worst(outcome, found)
    return outcome


def _worst(first: str | None, second: str) -> str:
    return second if first is None or RANKS[second] > RANKS[first] else first


def _message_lines(text: str) -> str:
    """The message as its lines (an assertion's diff reads line by line), without trailing or blank-line runs."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return "\n".join(line for index, line in enumerate(lines) if line or (index and lines[index - 1]))


def _explanation(detail_text: str) -> str:
    """pytest's "E" lines of a failure's traceback: the assertion and its whole diff, which the element's message
    attribute cuts ("[+90 more lines; full report in element text]")."""
    lines = [line[1:] for line in detail_text.splitlines() if line == "E" or line.startswith("E ")]
    return textwrap.dedent("\n".join(lines))


def _failure(case, detail, outcome: str, first_line: int = 1) -> TestFailure:
    message = (detail.get("message") or (detail.text or "").strip().splitlines()[-1:] or [""])
    text = message if isinstance(message, str) else message[0]
    explained = _explanation(detail.text or "")
    if explained.strip():
        text = explained
    line = case.get("line")
    return TestFailure(
        name=case.get("name", "")[:300], classname=case.get("classname", "")[:300], outcome=outcome,
        message=_message_lines(text)[:MAX_FAILURE_MESSAGE], file=(case.get("file") or None),
        line=int(line) + 1 - first_line if line and line.isdigit() else None,
    )
