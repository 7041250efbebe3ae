"""The JSON report: documented keys present, and a stored report reads back unchanged."""

import dataclasses
import json

import pytest

from assessor.errors import ReportError
from assessor.engine.report import Report, RubricRef, report_from_json, report_to_dict, report_to_json
from assessor.engine.rubric import parse_rubric
from assessor.engine.scoring import decide, score_measured, score_pending

from tests.test_scoring import RUBRIC


@pytest.fixture
def report():
    rubric = parse_rubric(RUBRIC, source="demo.toml")
    scores = [
        score_measured(rubric.criterion("tests"), {"passed": 12, "all_pass": True}, ["12 passed"]),
        score_measured(rubric.criterion("coverage"), None, not_measured_reason="tests not run"),
        score_measured(rubric.criterion("complexity"), {"average": 2.0, "worst": 4, "share_c_or_worse": 0.0, "maintainability": 70.0}),
        score_measured(rubric.criterion("runbook"), {"found": 1, "complete": 0}, ["Runbook: incomplete"]),
        score_pending(rubric.criterion("defense")),
    ]
    gates, score = decide(rubric, scores)
    return Report(
        source="https://git.example.org/learner/shop.git", ref="main", commit="a" * 40,
        rubric=RubricRef.of(rubric), assessed_at="2026-11-23T12:00:00+00:00", criteria=tuple(scores),
        gates=tuple(gates), score=score, complexity={"average": 2.0, "worst": []},
        artifacts=({"criterion": "runbook", "id": "runbook", "status": "incomplete", "path": "runbook.md",
                    "missing_sections": ["Escalation"]},),
        stage_seconds={"cloning": 0.25},
    )


def test_documented_fields_are_present(report):
    data = json.loads(report_to_json(report))
    assert data["commit"] == "a" * 40
    assert set(data["rubric"]) >= {"id", "version", "sha256"}
    assert data["rubric"]["sha256"] == parse_rubric(RUBRIC, source="x").sha256
    for criterion in data["criteria"]:
        assert set(criterion) >= {"id", "kind", "level", "points", "max_points", "status", "evidence"}
    assert [c["status"] for c in data["criteria"]] == ["scored", "not_measured", "scored", "scored", "pending"]
    assert data["complexity"]["average"] == 2.0
    assert data["artifacts"][0]["missing_sections"] == ["Escalation"]
    assert data["score"]["automated"] == 30 + 10 + 5
    assert data["score"]["max"] == 100
    assert data["outcome"] == "pending"


def test_report_round_trips_through_json(report):
    again = report_from_json(report_to_json(report))
    assert again == report
    assert report_to_dict(again) == report_to_dict(report)


def test_integrity_findings_round_trip_and_older_reports_read_without_them(report):
    findings = {"version": 1, "authorship": {"commits": 3}, "similarity": {"matches": [], "threshold_percent": 50}}
    with_findings = dataclasses.replace(report, integrity=findings)
    assert report_from_json(report_to_json(with_findings)).integrity == findings
    older = json.loads(report_to_json(report))
    del older["integrity"]
    assert report_from_json(json.dumps(older)).integrity is None


@pytest.mark.parametrize("damaged", [
    "not json",
    "[]",
    '{"schema": 99}',
    '{"schema": 1, "source": "x"}',
])
def test_damaged_report_is_a_report_error(damaged):
    with pytest.raises(ReportError):
        report_from_json(damaged)
