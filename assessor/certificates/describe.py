"""What a verified credential says, in plain terms for a person (the verify pages and the CLI): from the current
credential shape and from the shape certificates had before OB's rubric properties were used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from assessor.certificates.credential import score_text


@dataclass(frozen=True)
class CriterionLine:
    name: str
    level: str  # "level 2 of 3"
    points: str
    max_points: str


@dataclass(frozen=True)
class ModuleLine:
    title: str
    score: str
    max_score: str
    completed_on: str


@dataclass(frozen=True)
class CredentialView:
    learner_name: str
    achievement: str
    description: str
    narrative: str
    issuer_name: str
    issued_on: str
    total: str
    max_total: str
    pass_mark: str
    rubric: str
    rubric_sha256: str
    repository: str | None
    commit: str
    report_sha256: str
    assessed_on: str
    approved_by: str
    approved_on: str
    criteria: tuple[CriterionLine, ...] = ()
    modules: tuple[ModuleLine, ...] = ()
    identity_hashed: bool = False
    image: str | None = None


def human_date(text) -> str:
    """"2026-11-20T14:30:00Z" -> "20 November 2026" (the text itself when it is not a date)."""
    if not isinstance(text, str) or not text:
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return f"{moment.day} {moment:%B %Y}"


def _figure(value) -> str:
    try:
        return score_text(float(value))
    except (TypeError, ValueError):
        return str(value or "")


def describe(credential: dict) -> CredentialView:
    subject = credential.get("credentialSubject") or {}
    achievement = subject.get("achievement") or {}
    descriptions = {d.get("id"): d for d in achievement.get("resultDescription") or [] if isinstance(d, dict)}
    evidence = [e for e in credential.get("evidence") or [] if isinstance(e, dict)]
    repository = next((e for e in evidence if "commit" in e), {})
    assessment = next((e for e in evidence if "reportSha256" in e), {})
    old_rubric = assessment.get("rubric") if isinstance(assessment.get("rubric"), dict) else None

    criteria, modules = [], []
    total = max_total = pass_mark = ""
    for result in subject.get("result") or []:
        if not isinstance(result, dict):
            continue
        described = descriptions.get(result.get("resultDescription"), {})
        kind = described.get("resultType")
        if kind == "RubricScore":
            total, max_total = _figure(result.get("value")), _figure(described.get("valueMax"))
            pass_mark = _figure(described.get("requiredValue"))
        elif "completedOn" in result:
            modules.append(ModuleLine(described.get("name", ""), _figure(result.get("value")),
                                      _figure(described.get("valueMax")), human_date(result.get("completedOn"))))
        else:
            levels = {level.get("id"): level for level in described.get("rubricCriterionLevel") or []}
            reached = levels.get(result.get("achievedLevel"))
            level = reached.get("name", "").lower() if reached else str(result.get("level", ""))
            maximum = max((_number(level.get("points")) for level in levels.values()), default=None)
            criteria.append(CriterionLine(described.get("name", ""), level, _figure(result.get("value")),
                                          _figure(maximum if maximum is not None else described.get("valueMax"))))
    if old_rubric is not None:  # certificates issued before the OB rubric properties
        total, max_total = _figure(assessment.get("total")), _figure(assessment.get("maxTotal"))
        pass_mark = _figure(assessment.get("passMark"))
    repo_url = repository.get("id")
    image = credential.get("image") or achievement.get("image")
    return CredentialView(
        learner_name=str(subject.get("name", "")),
        achievement=str(achievement.get("name", "")),
        description=str(achievement.get("description", "")),
        narrative=str((achievement.get("criteria") or {}).get("narrative", "")),
        issuer_name=str((credential.get("issuer") or {}).get("name", "")),
        issued_on=human_date(credential.get("validFrom")),
        total=total, max_total=max_total, pass_mark=pass_mark,
        rubric=(f"{old_rubric.get('id')} version {old_rubric.get('version')}" if old_rubric
                else f"{assessment.get('rubricId', '')} version {assessment.get('rubricVersion', '')}"),
        rubric_sha256=str((old_rubric or {}).get("sha256") or assessment.get("rubricSha256", "")),
        # Only a real repository is linked (older certificates could name their own verify page here).
        repository=repo_url if isinstance(repo_url, str) and repo_url.startswith("https://")
        and "/verify/" not in repo_url else None,
        commit=str(repository.get("commit", "")),
        report_sha256=str(assessment.get("reportSha256", "")),
        assessed_on=human_date(assessment.get("assessedAt")),
        approved_by=str(assessment.get("approvedBy", "")),
        approved_on=human_date(assessment.get("approvedAt")),
        criteria=tuple(criteria),
        modules=tuple(modules),
        identity_hashed=bool(subject.get("identifier")),
        image=image.get("id") if isinstance(image, dict) else None,
    )


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
