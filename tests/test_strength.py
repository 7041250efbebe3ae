"""Mutation sampling's pure parts: which changes are tried, what counts as noticed, when figures are suspect."""

import textwrap

import pytest

from assessor.engine.measure.strength import (
    Mutant, MutantResult, StrengthResult, choose_sample, suspect, verdict_of,
)
from assessor.engine.measure.planted import restore as restore_planted
from assessor.engine.toolchains.node import canaries as node_canaries
from assessor.engine.toolchains.python import canaries
from assessor.engine.toolchains.python.mutants import mutants_for

PRICING = textwrap.dedent('''\
    """Pricing."""


    def price(total, member):
        """Docstring is never mutated."""
        if total > 100 and member:
            return total * 0.9
        return total + 5


    LIMIT: int = 3
''')


def _mutants(tmp_path, lines):
    (tmp_path / "pricing.py").write_text(PRICING)
    return mutants_for(tmp_path, "pricing.py", lines)


def test_mutmut_operators_change_each_line_and_never_docstrings_or_signatures(tmp_path):
    found = _mutants(tmp_path, [1, 4, 5, 6, 7, 8, 11])
    assert set(found) == {6, 7, 8, 11}
    changes = {(line, m.describe()) for line, items in found.items() for m in items}
    assert (6, "> 100 → >= 100") in changes and (6, "total > 100 and member → total > 100 or member") in changes
    assert (7, "total * 0.9 → total / 0.9") in changes and (8, "total + 5 → total - 5") in changes
    for items in found.values():
        for mutant in items:
            source = mutant.build().decode()
            assert source != PRICING and source.count("\n") == PRICING.count("\n")
            compile(source, "pricing.py", "exec")


@pytest.mark.parametrize("source", [b"def broken(:\n", b"\xff\xfe not python", b""])
def test_files_that_do_not_parse_give_no_mutants(tmp_path, source):
    (tmp_path / "bad.py").write_bytes(source)
    assert mutants_for(tmp_path, "bad.py", [1, 2]) == {}


def _fake_mutants(name, lines):
    return {line: [Mutant(file=name, line=line, operator="number", before="1", after="2", source=b"x")]
            for line in lines if line % 2 == 0}


def test_the_sample_is_spread_over_files_and_the_same_for_the_same_seed():
    covered = {f"app/m{i}.py": {line: (f"t::{i}-{line}",) for line in range(1, 21)} for i in range(4)}
    first = choose_sample(covered, mutants_for=_fake_mutants, size=8, seed="abc")
    again = choose_sample(covered, mutants_for=_fake_mutants, size=8, seed="abc")
    other = choose_sample(covered, mutants_for=_fake_mutants, size=8, seed="abd")
    assert [(m.file, m.line) for m in first] == [(m.file, m.line) for m in again]
    assert [(m.file, m.line) for m in first] != [(m.file, m.line) for m in other]
    assert {m.file for m in first} == set(covered)                      # two from each of the four files
    assert all(m.line % 2 == 0 and m.tests == (f"t::{m.file[5]}-{m.line}",) for m in first)
    assert len({(m.file, m.line) for m in first}) == 8                  # never the same line twice


def test_lines_no_test_ran_are_never_sampled():
    covered = {"a.py": {2: (), 4: ("t::x",)}, "b.py": {2: ()}}
    assert [(m.file, m.line) for m in choose_sample(covered, mutants_for=_fake_mutants, size=5, seed="s")] == \
        [("a.py", 4)]


@pytest.mark.parametrize("outcomes, verdict", [
    ({"t::a": "passed", "t::b": "failed"}, "noticed"),
    ({"t::a": "error"}, "noticed"),
    ({"t::a": "passed", "t::b": "passed"}, "survived"),
    ({"t::a": "passed", "t::b": "skipped"}, "survived"),
    ({"t::a": "skipped"}, "not_run"),
    ({}, "not_run"),
    ({"t::other": "failed"}, "not_run"),    # a failure elsewhere is not the change being noticed
])
def test_what_counts_as_noticed(outcomes, verdict):
    assert verdict_of(outcomes, ["t::a", "t::b"])[0] == verdict


def _result(*verdicts):
    mutant = Mutant(file="a.py", line=1, operator="number", before="1", after="2", source=b"", tests=("t",))
    return StrengthResult(results=tuple(MutantResult(mutant, verdict) for verdict in verdicts), seed="s",
                          tool="t", seconds=1.0)


@pytest.mark.parametrize("verdicts, percent, summary", [
    (("noticed", "survived", "timed_out", "not_run"), 66.7, "your tests noticed 2 of 3 changes"),
    (("not_run",), None, "no sampled change could be run"),
    (("survived",) * 4, 0.0, "your tests noticed 0 of 4 changes"),
])
def test_the_share_leaves_out_changes_that_could_not_run(verdicts, percent, summary):
    result = _result(*verdicts)
    assert (result.noticed_percent, result.summary()) == (percent, summary)
    assert result.to_dict()["mutants"][0]["change"] == "1 → 2"


@pytest.mark.parametrize("verdicts, all_passed, expected", [
    (("survived",) * 5, True, True),
    (("survived",) * 5, False, False),      # failing tests: nothing claims the code is checked
    (("survived",) * 4, True, False),       # too few to say
    (("survived",) * 4 + ("noticed",), True, False),
])
def test_figures_are_suspect_only_when_nothing_is_ever_noticed_by_a_passing_suite(verdicts, all_passed, expected):
    assert suspect(_result(*verdicts), all_passed=all_passed) is expected


@pytest.mark.parametrize("original", ["", "x = 1\n", "x = 1", "def f():\n    return 2\n"])
def test_planted_code_sits_after_the_learners_lines_and_comes_out_of_the_arcs(tmp_path, original):
    (tmp_path / "m.py").write_text(original)
    project = tmp_path / "copy"
    project.mkdir()
    (project / "m.py").write_text(original)
    [canary] = canaries.plant_code(project, tmp_path, ["m.py"])
    planted = (project / "m.py").read_text()
    assert planted.startswith(original) and planted.splitlines()[canary.def_line - 1].startswith("def _")
    compile(planted, "m.py", "exec")
    arcs = [(-1, 1), (1, canary.def_line), (canary.def_line, -1)] if original else [(-1, canary.def_line),
                                                                                    (canary.def_line, -1)]
    assert canaries.covered_canary_lines(arcs, canary) == []
    assert canaries.without_canary(arcs, canary) == ([(-1, 1), (1, -1)] if original else [])
    body = sorted(canary.body_lines)
    assert canaries.covered_canary_lines([(canary.def_line, body[0])], canary) == [body[0]]
    restore_planted(project, [canary])
    assert (project / "m.py").read_text() == original


def test_the_canary_test_is_named_as_pytest_is_told_to_name_tests(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "check_cart.py").write_text("def check_total():\n    assert True\n")
    canary = canaries.plant_test(tmp_path, collected_files=["tests/check_cart.py"],
                                 ini={"python_functions": ["check_*"]})
    assert canary.file == "tests/check_cart.py" and canary.function.startswith("check_")
    text = (tmp_path / "tests" / "check_cart.py").read_text()
    assert text.startswith("def check_total():") and f"def {canary.function}():" in text
    compile(text, "check_cart.py", "exec")


PYTEST_OUTPUT = """\
tests/test_cart.py ....F
tests/test_more.py F

=================================== FAILURES ===================================
_____________________________ test_retry_ledger_74 _____________________________

    def test_retry_ledger_74():
        total = 20 + 24
>       assert total == 48
E       assert 44 == 48

tests/test_cart.py:22: AssertionError
__________________________________ test_more ___________________________________

>   assert 1 == 2
E   assert 1 == 2
=========================== short test summary info ============================
FAILED tests/test_cart.py::test_retry_ledger_74 - assert 44 == 48
FAILED tests/test_more.py::test_more - assert 1 == 2
========================= {failed} failed, 4 passed in 0.36s ========================="""


def test_the_planted_tests_failure_is_taken_out_of_the_output():
    canary = canaries.TestCanary(file="tests/test_cart.py", function="test_retry_ledger_74", original=b"",
                                 appended=b"")
    scrubbed = canaries.scrub_output(PYTEST_OUTPUT.format(failed=2), canary)
    assert "retry_ledger" not in scrubbed and "44 == 48" not in scrubbed
    assert "test_more" in scrubbed and "FAILED tests/test_more.py::test_more" in scrubbed
    assert scrubbed.endswith("= 1 failed, 4 passed in 0.36s =========================")
    alone = PYTEST_OUTPUT.format(failed=1).replace("FAILED tests/test_more.py::test_more - assert 1 == 2\n", "")
    assert canaries.scrub_output(alone, canary).endswith("= 4 passed in 0.36s =========================")
    assert canaries.scrub_output(PYTEST_OUTPUT, None) == PYTEST_OUTPUT


def test_changes_land_in_place_after_text_that_is_not_ascii(tmp_path):
    source = 'def label(n):\n    if "café" and n > 1:  # déjà vu\n        return "plusieurs élèves"\n    return "un"\n'
    (tmp_path / "label.py").write_text(source, encoding="utf-8")
    found = mutants_for(tmp_path, "label.py", [2])
    changed = {m.describe(): m.build().decode("utf-8") for m in found[2]}
    assert changed["> 1 → >= 1"] == source.replace("n > 1", "n >= 1")
    assert all(text.endswith('return "un"\n') and "# déjà vu" in text for text in changed.values())


@pytest.mark.parametrize("name, source, exported", [
    ("src/cart.js", "const a = require('a');\nmodule.exports = { a };\n", False),
    ("src/cart.mjs", "import a from 'a';\nexport const b = a;\n", False),       # JavaScript never needs it
    ("src/cart.ts", "import { a } from './a';\nexport const b = a;", True),     # unused locals may be refused
    ("src/script.ts", "const b = 1;\n", False),                                  # no module: export would make one
])
def test_planted_javascript_code_fits_the_file(tmp_path, name, source, exported):
    (tmp_path / "src").mkdir()
    (tmp_path / name).write_text(source)
    [canary] = node_canaries.plant_code(tmp_path, [name])
    text = (tmp_path / name).read_text()
    lines = text.splitlines()
    assert text.startswith(source) and lines[canary.def_line - 1].startswith("export function" if exported else
                                                                            "function")
    assert canary.line_count == source.count("\n") + (0 if source.endswith("\n") else 1)
    entry = {"statementMap": {"0": {"start": {"line": 1}}, "1": {"start": {"line": canary.def_line + 2}}},
             "s": {"0": 1, "1": 3}, "branchMap": {}, "b": {}, "fnMap": {}, "f": {}}
    cleaned, ran = node_canaries.strip_canary(entry, canary)
    assert ran == [canary.def_line + 2] and cleaned["statementMap"] == {"0": {"start": {"line": 1}}}
