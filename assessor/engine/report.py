"""The assessment report: one per (commit, rubric version), as dataclasses and as JSON."""

import json
from dataclasses import dataclass, field
from typing import Any

from assessor.errors import ReportError
from assessor.engine.rubric import Rubric
from assessor.engine.scoring import CriterionScore, GateResult, Score
from assessor.engine.sources import SourceSnapshot

SCHEMA_VERSION = 1
MAX_REPORT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class RubricRef:
    id: str
    version: str
    sha256: str
    title: str
    course: str

    @classmethod
    def of(cls, rubric: Rubric) -> "RubricRef":
        return cls(rubric.id, rubric.version, rubric.sha256, rubric.title, rubric.course)


@dataclass(frozen=True)
class Report:
    source: str
    ref: str | None
    commit: str
    rubric: RubricRef
    assessed_at: str
    criteria: tuple[CriterionScore, ...]
    gates: tuple[GateResult, ...]
    score: Score
    complexity: dict[str, Any] | None = None
    artifacts: tuple[dict[str, Any], ...] = ()
    tests: dict[str, Any] | None = None
    coverage: dict[str, Any] | None = None
    sandbox: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    flags: tuple[dict[str, Any], ...] = ()
    output_tail: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    toolchain: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    services: dict[str, Any] | None = None
    failures: tuple[dict[str, Any], ...] = ()
    tree: str | None = None   # the commit's git tree, for finding the same work submitted under another commit
    integrity: dict[str, Any] | None = None   # authorship from the history, near copies found by the worker
    strength: dict[str, Any] | None = None    # mutation sampling: the share of small changes the tests noticed
    # Not part of the JSON: stored beside it, once per commit (see assessor.codeview).
    sources: SourceSnapshot | None = field(default=None, compare=False, repr=False)

    @property
    def outcome(self) -> str:
        return self.score.outcome

    def criterion(self, criterion_id: str) -> CriterionScore:
        for score in self.criteria:
            if score.id == criterion_id:
                return score
        raise KeyError(criterion_id)


INTEGRITY_VERSION = 1


def integrity_section(*, authorship=None, similarity: dict | None = None,
                      evidence: list | tuple = ()) -> dict[str, Any]:
    """The report's integrity findings, versioned on their own: `authorship` from the pipeline (an
    assessor.authorship.Authorship), `similarity` added by the worker after scoring, `evidence` what the learner's
    code did to the test process (report hooks, reaches into frames...), for the mentor."""
    return {"version": INTEGRITY_VERSION,
            "authorship": authorship.to_dict() if authorship is not None else None,
            "similarity": similarity,
            "evidence": list(evidence)}


def report_to_dict(report: Report) -> dict[str, Any]:
    """The JSON shape documented in docs/report.md; other parts of the product rely on these keys."""
    return {
        "schema": SCHEMA_VERSION,
        "source": report.source,
        "ref": report.ref,
        "commit": report.commit,
        "rubric": {
            "id": report.rubric.id,
            "version": report.rubric.version,
            "sha256": report.rubric.sha256,
            "title": report.rubric.title,
            "course": report.rubric.course,
        },
        "assessed_at": report.assessed_at,
        "criteria": [score.to_dict() for score in report.criteria],
        "gates": [gate.to_dict() for gate in report.gates],
        "complexity": report.complexity,
        "artifacts": list(report.artifacts),
        "tests": report.tests,
        "coverage": report.coverage,
        "sandbox": report.sandbox,
        "environment": report.environment,
        "flags": list(report.flags),
        "failures": list(report.failures),
        "tree": report.tree,
        "integrity": report.integrity,
        "strength": report.strength,
        "toolchain": report.toolchain,
        "services": report.services,
        "notes": list(report.notes),
        "output_tail": report.output_tail,
        "stage_seconds": {stage: round(seconds, 3) for stage, seconds in report.stage_seconds.items()},
        "score": report.score.to_dict(),
        "outcome": report.outcome,
    }


def report_to_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False, sort_keys=False)


def _criterion_from_dict(data: dict[str, Any]) -> CriterionScore:
    return CriterionScore(
        id=data["id"], kind=data["kind"], title=data["title"], weight=data["weight"],
        max_points=data["max_points"], status=data["status"], level=data["level"], points=data["points"],
        descriptor=data["descriptor"], evidence=tuple(data["evidence"]), assessed_by=data["assessed_by"],
        top_level=data.get("top_level"),  # absent from reports stored before it was recorded
    )


def report_from_json(text: str | bytes) -> Report:
    """Read back a stored report; a damaged or foreign document is a ReportError."""
    if len(text) > MAX_REPORT_BYTES:
        raise ReportError("report is larger than the stored-report limit")
    try:
        data = json.loads(text)
        if data.get("schema") != SCHEMA_VERSION:
            raise ReportError(f"report schema {data.get('schema')!r} is not {SCHEMA_VERSION}")
        rubric = data["rubric"]
        score = data["score"]
        return Report(
            source=data["source"],
            ref=data["ref"],
            commit=data["commit"],
            rubric=RubricRef(rubric["id"], rubric["version"], rubric["sha256"], rubric["title"], rubric["course"]),
            assessed_at=data["assessed_at"],
            criteria=tuple(_criterion_from_dict(item) for item in data["criteria"]),
            gates=tuple(GateResult(g["id"], g["criterion"], g["min_level"], g["description"], g["status"]) for g in data["gates"]),
            score=Score(
                automated=score["automated"], total=score["total"], max=score["max"],
                best_possible=score["best_possible"], pass_mark=score["pass_mark"], outcome=data["outcome"],
                reasons=tuple(score["reasons"]),
            ),
            complexity=data["complexity"],
            artifacts=tuple(data["artifacts"]),
            tests=data["tests"],
            coverage=data["coverage"],
            sandbox=data["sandbox"],
            environment=data["environment"],
            flags=tuple(data["flags"]),
            output_tail=data["output_tail"],
            stage_seconds=dict(data["stage_seconds"]),
            # Reports stored before these fields existed read back without them.
            toolchain=data.get("toolchain"),
            notes=tuple(data.get("notes") or ()),
            services=data.get("services"),
            failures=tuple(data.get("failures") or ()),
            tree=data.get("tree") if isinstance(data.get("tree"), str) else None,
            integrity=data.get("integrity") if isinstance(data.get("integrity"), dict) else None,
            strength=data.get("strength") if isinstance(data.get("strength"), dict) else None,
        )
    except ReportError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ReportError(f"stored report is damaged: {type(error).__name__}: {error}") from None
