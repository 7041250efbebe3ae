"""Turn measurements and people's levels into criterion scores, gate results and an outcome."""

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from assessor.engine.rubric import Criterion, Level, Rubric


@dataclass(frozen=True)
class Threshold:
    fact: str
    compare: Callable[[Any, Any], bool]
    symbol: str
    label: str
    need: str  # what the level asks for, in words: {wanted} and {have} are filled in


# Every threshold a rubric level can set: which measured fact it reads, how it compares, and how to say it.
THRESHOLDS: dict[str, Threshold] = {
    "min_tests": Threshold("passed", operator.ge, "≥", "tests passed",
                           "at least {wanted} passing tests (now {have})"),
    "all_pass": Threshold("all_pass", operator.eq, "=", "all tests pass", "every test passing (some fail now)"),
    "min_line": Threshold("line_percent", operator.ge, "≥", "line coverage %",
                          "line coverage of at least {wanted}% (now {have}%)"),
    "min_branch": Threshold("branch_percent", operator.ge, "≥", "branch coverage %",
                            "branch coverage of at least {wanted}% (now {have}%)"),
    "min_noticed": Threshold("noticed_percent", operator.ge, "≥", "% of sampled changes your tests noticed",
                             "tests that notice at least {wanted}% of small changes to covered code (now {have}%)"),
    "max_average": Threshold("average", operator.le, "≤", "average complexity",
                             "an average complexity of at most {wanted} (now {have})"),
    "max_worst": Threshold("worst", operator.le, "≤", "worst function's complexity",
                           "no function more complex than {wanted} (the worst is {have})"),
    "max_share_c_or_worse": Threshold("share_c_or_worse", operator.le, "≤", "% of blocks ranked C or worse",
                                      "at most {wanted}% of functions ranked C or worse (now {have}%)"),
    "min_maintainability": Threshold("maintainability", operator.ge, "≥", "maintainability index",
                                     "a maintainability index of at least {wanted} (now {have})"),
    "min_found": Threshold("found", operator.ge, "≥", "documents found",
                           "at least {wanted} of the required documents present (now {have})"),
    "min_complete": Threshold("complete", operator.ge, "≥", "documents complete",
                              "every required section and field in at least {wanted} of the documents (now {have})"),
}

SCORED, NOT_MEASURED, PENDING = "scored", "not_measured", "pending"


@dataclass(frozen=True)
class CriterionScore:
    id: str
    kind: str
    title: str
    weight: float
    max_points: float
    status: str
    level: int | None = None
    points: float | None = None
    descriptor: str | None = None
    evidence: tuple[str, ...] = ()
    assessed_by: str = "automated"
    top_level: int | None = None  # the rubric's highest level for this criterion ("level 2 of 3")

    @property
    def weighted(self) -> float | None:
        if self.points is None:
            return None
        return self.weight * self.points / self.max_points

    def to_dict(self) -> dict[str, Any]:
        weighted = self.weighted
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "status": self.status,
            "level": self.level,
            "points": self.points,
            "max_points": self.max_points,
            "weight": self.weight,
            "weighted": None if weighted is None else round(weighted, 2),
            "descriptor": self.descriptor,
            "assessed_by": self.assessed_by,
            "evidence": list(self.evidence),
            "top_level": self.top_level,
        }


@dataclass(frozen=True)
class GateResult:
    id: str
    criterion: str
    min_level: int
    description: str
    status: str  # passed, failed or pending

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "criterion": self.criterion, "min_level": self.min_level,
                "description": self.description, "status": self.status}


@dataclass(frozen=True)
class Score:
    automated: float
    total: float
    max: float
    best_possible: float
    pass_mark: float
    outcome: str  # pass, fail or pending
    reasons: tuple[str, ...]

    @property
    def percent(self) -> float:
        return 100 * self.total / self.max if self.max else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "automated": round(self.automated, 2),
            "total": round(self.total, 2),
            "max": round(self.max, 2),
            "percent": round(self.percent, 2),
            "best_possible": round(self.best_possible, 2),
            "pass_mark": self.pass_mark,
            "reasons": list(self.reasons),
        }


def meets(level: Level, facts: Mapping[str, Any], toolchain: str | None = None) -> bool:
    return not unmet_thresholds(level, facts, toolchain)


def unmet_thresholds(level: Level, facts: Mapping[str, Any], toolchain: str | None = None) -> list[str]:
    """Plain-language lines, one per threshold of `level` (for this toolchain) that `facts` do not reach."""
    lines = []
    for key, wanted in level.thresholds_for(toolchain).items():
        threshold = THRESHOLDS[key]
        have = facts.get(threshold.fact)
        if have is None:
            lines.append(f"{threshold.need.split(' (')[0].format(wanted=_format(wanted))} (not measured)")
        elif not threshold.compare(have, wanted):
            lines.append(threshold.need.format(wanted=_format(wanted), have=_format(have)))
    return lines


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) else f"{value:.1f}"
    return str(value)


def reached_level(criterion: Criterion, facts: Mapping[str, Any], toolchain: str | None = None) -> Level:
    """The highest level whose thresholds the facts all meet; the floor always counts."""
    reached = criterion.levels[0]
    for level in criterion.levels[1:]:
        if meets(level, facts, toolchain):
            reached = level
    return reached


def score_measured(criterion: Criterion, facts: Mapping[str, Any] | None, evidence: Sequence[str] = (),
                   *, not_measured_reason: str = "not measured", toolchain: str | None = None) -> CriterionScore:
    """Score an automated criterion from its facts; None facts means it could not be measured."""
    if facts is None:
        return CriterionScore(
            id=criterion.id, kind=criterion.kind, title=criterion.title, weight=criterion.weight,
            max_points=criterion.max_points, status=NOT_MEASURED, evidence=(not_measured_reason, *evidence),
            top_level=criterion.levels[-1].level,
        )
    level = reached_level(criterion, facts, toolchain)
    next_levels = [candidate for candidate in criterion.levels if candidate.level > level.level]
    top = criterion.levels[-1].level
    hints = tuple(f"to reach level {next_levels[0].level} of {top}: {line}"
                  for line in unmet_thresholds(next_levels[0], facts, toolchain)) if next_levels else ()
    return CriterionScore(
        id=criterion.id, kind=criterion.kind, title=criterion.title, weight=criterion.weight,
        max_points=criterion.max_points, status=SCORED, level=level.level, points=level.points,
        descriptor=level.descriptor, evidence=(*evidence, *hints), top_level=top,
    )


def score_pending(criterion: Criterion, reason: str = "awaiting self-assessment and mentor review") -> CriterionScore:
    return CriterionScore(
        id=criterion.id, kind=criterion.kind, title=criterion.title, weight=criterion.weight,
        max_points=criterion.max_points, status=PENDING, evidence=(reason,), assessed_by="mentor",
        top_level=criterion.levels[-1].level,
    )


def score_given(criterion: Criterion, level_number: int, *, assessed_by: str, evidence: Sequence[str] = ()) -> CriterionScore:
    """A level set by a person (mentor review, or an override with its reason in the evidence)."""
    level = criterion.level(level_number)
    return CriterionScore(
        id=criterion.id, kind=criterion.kind, title=criterion.title, weight=criterion.weight,
        max_points=criterion.max_points, status=SCORED, level=level.level, points=level.points,
        descriptor=level.descriptor, evidence=tuple(evidence), assessed_by=assessed_by,
        top_level=criterion.levels[-1].level,
    )


def evaluate_gates(rubric: Rubric, scores: Mapping[str, CriterionScore]) -> list[GateResult]:
    results = []
    for gate in rubric.gates:
        score = scores[gate.criterion]
        if score.level is None:
            status = "pending"
        else:
            status = "passed" if score.level >= gate.min_level else "failed"
        results.append(GateResult(gate.id, gate.criterion, gate.min_level, gate.description, status))
    return results


def decide(rubric: Rubric, criterion_scores: Sequence[CriterionScore]) -> tuple[list[GateResult], Score]:
    """Gate results and the overall score; the outcome stays pending while anything can still change it."""
    by_id = {score.id: score for score in criterion_scores}
    gates = evaluate_gates(rubric, by_id)
    maximum = rubric.total_weight
    known = [score for score in criterion_scores if score.weighted is not None]
    total = sum(score.weighted for score in known)
    automated = sum(score.weighted for score in known if score.assessed_by == "automated")
    unknown_weight = sum(score.weight for score in criterion_scores if score.weighted is None)
    best_possible = total + unknown_weight
    needed = maximum * rubric.pass_mark / 100

    reasons = [f"Required to pass: {gate.description}" for gate in gates if gate.status == "failed"]
    if best_possible + 1e-9 < needed:
        reasons.append(
            f"Even full marks on what is still open would give {100 * best_possible / maximum:.1f}%, "
            f"below the pass mark of {rubric.pass_mark:g}%"
        )
    if reasons:
        outcome = "fail"
    elif unknown_weight or any(gate.status == "pending" for gate in gates):
        outcome = "pending"
        reasons.append(f"{sum(1 for s in criterion_scores if s.weighted is None)} criteria still to be scored")
    elif total + 1e-9 >= needed:
        outcome = "pass"
    else:
        outcome = "fail"
        reasons.append(f"{100 * total / maximum:.1f}% is below the pass mark of {rubric.pass_mark:g}%")
    score = Score(automated=automated, total=total, max=maximum, best_possible=best_possible,
                  pass_mark=rubric.pass_mark, outcome=outcome, reasons=tuple(reasons))
    return gates, score


@dataclass(frozen=True)
class Gain:
    """One step a learner can take: reach `to_level` of a criterion (what its descriptor says), worth `points`
    weighted points; `required` when a gate needs it before the attempt can pass at all."""

    criterion: str
    title: str
    from_level: int | None
    to_level: int
    points: float
    descriptor: str
    required: bool = False


def gains(rubric: Rubric, criterion_scores: Sequence[CriterionScore]) -> list[Gain]:
    """The next level of every measured criterion below its top, most points first, gates needed to pass first:
    the report's "what gains you the most points". Criteria a mentor judges are left to the mentor."""
    by_id = {score.id: score for score in criterion_scores}
    needed_by_gate = {gate.criterion: gate.min_level for gate in rubric.gates
                      if by_id.get(gate.criterion) is not None and by_id[gate.criterion].level is not None
                      and by_id[gate.criterion].level < gate.min_level}
    found = []
    for criterion in rubric.criteria:
        score = by_id.get(criterion.id)
        if score is None or not criterion.automated or score.assessed_by != "automated":
            continue
        current = score.level
        higher = [level for level in criterion.levels if current is None or level.level > current]
        if not higher:
            continue
        target = higher[0]
        gate_level = needed_by_gate.get(criterion.id)
        if gate_level is not None:
            target = next((level for level in higher if level.level >= gate_level), target)
        before = score.points or 0.0
        points = criterion.weight * (target.points - before) / criterion.max_points if criterion.max_points else 0.0
        found.append(Gain(criterion.id, criterion.title, current, target.level, round(points, 2), target.descriptor,
                          required=gate_level is not None))
    return sorted(found, key=lambda gain: (not gain.required, -gain.points, gain.title))
