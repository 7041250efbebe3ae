"""Scoring: levels from facts, weights, gates and the overall outcome, table-driven."""

import pytest

from assessor.engine.rubric import parse_rubric
from assessor.engine.scoring import decide, reached_level, score_given, score_measured, score_pending

RUBRIC = b"""
id = "demo"
title = "Demo capstone"
version = "1.0.0"
course = "Demo course"
pass_mark = 70

[[criteria]]
id = "tests"
kind = "tests"
title = "Tests"
weight = 30
levels = [
  { level = 0, points = 0, descriptor = "none" },
  { level = 1, points = 1, descriptor = "some pass", min_tests = 1 },
  { level = 2, points = 2, descriptor = "ten pass, none fail", min_tests = 10, all_pass = true },
]

[[criteria]]
id = "coverage"
kind = "coverage"
title = "Coverage"
weight = 20
levels = [
  { level = 0, points = 0, descriptor = "low" },
  { level = 1, points = 2, descriptor = "fair", min_line = 60, min_branch = 40 },
  { level = 2, points = 4, descriptor = "good", min_line = 85, min_branch = 70 },
]

[[criteria]]
id = "complexity"
kind = "complexity"
title = "Complexity"
weight = 10
levels = [
  { level = 0, points = 0, descriptor = "tangled" },
  { level = 1, points = 1, descriptor = "clean", max_average = 5, max_worst = 12, max_share_c_or_worse = 5, min_maintainability = 50 },
]

[[criteria]]
id = "runbook"
kind = "artifact"
title = "Runbook"
weight = 10
levels = [
  { level = 0, points = 0, descriptor = "missing" },
  { level = 1, points = 1, descriptor = "present", min_found = 1 },
  { level = 2, points = 2, descriptor = "complete", min_complete = 1 },
]
artifacts = [{ id = "runbook", title = "Runbook", patterns = ["runbook.md"] }]

[[criteria]]
id = "defense"
kind = "manual"
title = "Defense"
weight = 30
levels = [
  { level = 0, points = 0, descriptor = "absent" },
  { level = 1, points = 1, descriptor = "adequate" },
  { level = 2, points = 2, descriptor = "convincing" },
]

[[gates]]
id = "tests-pass"
criterion = "tests"
min_level = 2
description = "the test suite passes"
"""


@pytest.fixture
def rubric():
    return parse_rubric(RUBRIC, source="demo.toml")


@pytest.mark.parametrize(("criterion_id", "facts", "expected_level"), [
    ("tests", {"passed": 0, "all_pass": False}, 0),
    ("tests", {"passed": 3, "all_pass": False}, 1),
    ("tests", {"passed": 12, "all_pass": False}, 1),
    ("tests", {"passed": 9, "all_pass": True}, 1),
    ("tests", {"passed": 10, "all_pass": True}, 2),
    ("coverage", {"line_percent": 59.9, "branch_percent": 90}, 0),
    ("coverage", {"line_percent": 60, "branch_percent": 40}, 1),
    ("coverage", {"line_percent": 95, "branch_percent": 69.9}, 1),
    ("coverage", {"line_percent": 85, "branch_percent": 70}, 2),
    ("complexity", {"average": 5, "worst": 12, "share_c_or_worse": 5, "maintainability": 50}, 1),
    ("complexity", {"average": 5.1, "worst": 3, "share_c_or_worse": 0, "maintainability": 90}, 0),
    ("complexity", {"average": 2, "worst": 13, "share_c_or_worse": 0, "maintainability": 90}, 0),
    ("complexity", {"average": 2, "worst": 3, "share_c_or_worse": 0, "maintainability": None}, 0),
    ("runbook", {"found": 0, "complete": 0}, 0),
    ("runbook", {"found": 1, "complete": 0}, 1),
    ("runbook", {"found": 1, "complete": 1}, 2),
])
def test_reached_level_is_highest_level_whose_thresholds_all_hold(rubric, criterion_id, facts, expected_level):
    assert reached_level(rubric.criterion(criterion_id), facts).level == expected_level


def test_measured_score_carries_points_and_a_hint_for_the_next_level(rubric):
    score = score_measured(rubric.criterion("coverage"), {"line_percent": 78.04, "branch_percent": 52}, ["line 78%"])
    assert (score.status, score.level, score.points, score.max_points) == ("scored", 1, 2, 4)
    assert score.weighted == pytest.approx(10)
    assert score.evidence[0] == "line 78%"
    assert "to reach level 2 of 2: line coverage of at least 85% (now 78.0%)" in score.evidence
    assert "to reach level 2 of 2: branch coverage of at least 70% (now 52%)" in score.evidence
    assert score.top_level == 2


def test_unmeasured_criterion_is_never_zero_or_full(rubric):
    score = score_measured(rubric.criterion("coverage"), None, not_measured_reason="tests not run: no wheel for lxml")
    assert score.status == "not_measured"
    assert score.level is None and score.points is None and score.weighted is None
    assert score.evidence == ("tests not run: no wheel for lxml",)


def _scores(rubric, **levels):
    """Criterion scores with the given levels; a criterion not named is pending."""
    scores = []
    for criterion in rubric.criteria:
        if criterion.id in levels:
            scores.append(score_given(criterion, levels[criterion.id], assessed_by="mentor" if criterion.kind == "manual" else "automated"))
        else:
            scores.append(score_pending(criterion))
    return scores


@pytest.mark.parametrize(("levels", "outcome", "total"), [
    # Everything at the top: 100%.
    ({"tests": 2, "coverage": 2, "complexity": 1, "runbook": 2, "defense": 2}, "pass", 100),
    # Exactly the pass mark: 30 + 20 + 0 + 5 + 15 = 70.
    ({"tests": 2, "coverage": 2, "complexity": 0, "runbook": 1, "defense": 1}, "pass", 70),
    # Just under: 30 + 10 + 0 + 5 + 15 = 60.
    ({"tests": 2, "coverage": 1, "complexity": 0, "runbook": 1, "defense": 1}, "fail", 60),
    # Full marks elsewhere cannot save a failed gate.
    ({"tests": 1, "coverage": 2, "complexity": 1, "runbook": 2, "defense": 2}, "fail", 85),
    # Manual criterion still open and the pass mark still reachable.
    ({"tests": 2, "coverage": 2, "complexity": 1, "runbook": 2}, "pending", 70),
    # Manual criterion open but even full marks there cannot reach 70: 15 + 0 + 0 + 0 + 30 = 45.
    ({"tests": 1, "coverage": 0, "complexity": 0, "runbook": 0}, "fail", 15),
])
def test_outcome(rubric, levels, outcome, total):
    gates, score = decide(rubric, _scores(rubric, **levels))
    assert score.outcome == outcome
    assert score.total == pytest.approx(total)
    assert score.max == 100


def test_gate_is_pending_until_its_criterion_is_scored(rubric):
    gates, score = decide(rubric, _scores(rubric, coverage=2))
    assert [(gate.id, gate.status) for gate in gates] == [("tests-pass", "pending")]
    assert score.outcome == "pending"


def test_failed_gate_is_named_in_the_reasons(rubric):
    gates, score = decide(rubric, _scores(rubric, tests=0, coverage=2, complexity=1, runbook=2, defense=2))
    assert gates[0].status == "failed"
    assert score.reasons[0] == "Required to pass: the test suite passes"


def test_automated_score_excludes_mentor_levels(rubric):
    _, score = decide(rubric, _scores(rubric, tests=2, coverage=2, complexity=1, runbook=2, defense=2))
    assert score.automated == pytest.approx(70)
    assert score.total == pytest.approx(100)


@pytest.mark.parametrize(("key", "wanted", "have", "line"), [
    ("min_tests", 5, 3, "at least 5 passing tests (now 3)"),
    ("all_pass", True, False, "every test passing (some fail now)"),
    ("min_line", 80, 62.5, "line coverage of at least 80% (now 62.5%)"),
    ("min_branch", 70, 40.0, "branch coverage of at least 70% (now 40%)"),
    ("max_average", 5, 7.25, "an average complexity of at most 5 (now 7.2)"),
    ("max_worst", 10, 14, "no function more complex than 10 (the worst is 14)"),
    ("max_share_c_or_worse", 10, 25.0, "at most 10% of functions ranked C or worse (now 25%)"),
    ("min_maintainability", 65, 50.5, "a maintainability index of at least 65 (now 50.5)"),
    ("min_found", 2, 1, "at least 2 of the required documents present (now 1)"),
    ("min_complete", 2, 0, "every required section and field in at least 2 of the documents (now 0)"),
    ("min_line", 80, None, "line coverage of at least 80% (not measured)"),
])
def test_what_a_level_asks_for_is_said_in_words(key, wanted, have, line):
    from assessor.engine.rubric import Level
    from assessor.engine.scoring import THRESHOLDS, unmet_thresholds

    level = Level(level=2, points=2, descriptor="", thresholds={key: wanted})
    facts = {} if have is None else {THRESHOLDS[key].fact: have}
    assert unmet_thresholds(level, facts) == [line]
    assert "=" not in line and "have" not in line  # no internals: no operators, no "(have no)"


@pytest.mark.parametrize(("levels", "expected"), [
    # The failed gate comes first (its level jumps to what the gate needs), then the most points (ties by title).
    ({"tests": 0, "coverage": 0, "complexity": 0, "runbook": 1},
     [("tests", 2, 30.0, True), ("complexity", 1, 10.0, False), ("coverage", 1, 10.0, False),
      ("runbook", 2, 5.0, False)]),
    # At the top everywhere measured: nothing to gain; the mentor's criterion is never listed.
    ({"tests": 2, "coverage": 2, "complexity": 1, "runbook": 2}, []),
    # One step at a time: coverage 1 -> 2 is worth 10 of its 20.
    ({"tests": 2, "coverage": 1, "complexity": 1, "runbook": 2, "defense": 0}, [("coverage", 2, 10.0, False)]),
])
def test_what_gains_the_most_points_is_ranked_from_the_rubric(rubric, levels, expected):
    from assessor.engine.scoring import gains

    found = gains(rubric, _scores(rubric, **levels))
    assert [(gain.criterion, gain.to_level, gain.points, gain.required) for gain in found] == expected
    assert all(gain.descriptor for gain in found)
