"""Open Badges 3.0 ``OpenBadgeCredential`` built from a ``CertificateData``, signed as a compact VC-JWT.

OB's own properties carry what they can: each rubric criterion is a ``ResultDescription`` of type
``RubricCriterionLevel`` with its levels, and the learner's ``Result`` points at the level reached
(``achievedLevel``); the total is a ``RubricScore`` result with the pass mark as ``requiredValue``; each course module
passed is a ``RawScore`` result beside them; the repository and the assessment are ``evidence``. The few terms OB
has no word for (commit, rubric hash, report hash, approving mentor, dates) are defined in the product's extension
context (``EXTENSION_TERMS``), served at a stable URL and listed last in ``@context``.

The learner's e-mail is never in the credential: the subject is an opaque ``urn:uuid`` and the
``identifier`` carries only a salted SHA-256 of the verified address, so an employer who knows the address can
check it and nobody else can read it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from assessor.certificates.keys import PrivateKey, algorithm_of, b64url, sign
from assessor.errors import CertificateError

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_V3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CONTEXTS = [VC_V2_CONTEXT, OB_V3_CONTEXT]  # always first, in this order (OB 3.0 requires it)
EXTENSION_CONTEXT_PATH = "/contexts/capstone-v1.jsonld"
SCHEMA_VALIDATOR_TYPE = "1EdTechJsonSchemaValidator2019"
SCHEMA_VALIDATOR_IRI = "https://purl.imsglobal.org/spec/vccs/v1p0/context.json#1EdTechJsonSchemaValidator2019"
OB_SCHEMA = {"id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json",
             "type": SCHEMA_VALIDATOR_TYPE}
CREDENTIAL_TYPES = ["VerifiableCredential", "OpenBadgeCredential"]
JWT_CLAIMS = ("iss", "jti", "nbf", "sub")
MAX_NAME_CHARS = 120
MAX_CRITERIA = 12
MAX_MODULES = 16
MAX_TITLE_CHARS = 100
IDENTITY_HASH_PREFIX = "sha256$"

# The extension vocabulary: every term the credential uses that OB 3.0 and VC 2.0 do not define.
EXTENSION_VOCABULARY = "urn:capstone-assessor:vocab#"
EXTENSION_TERMS = {
    "commit": "the git commit the assessment read",
    "rubric": "the rubric the capstone was assessed against",
    "rubricId": "the rubric's id",
    "rubricVersion": "the rubric's version",
    "rubricSha256": "SHA-256 of the rubric file",
    "reportSha256": "SHA-256 of the stored assessment report",
    "approvedBy": "the mentor who approved the assessment",
    "assessedAt": "when the automated assessment ran",
    "approvedAt": "when the mentor approved it",
    "completedOn": "the day a course module was completed",
}
_DATE_TERMS = {"assessedAt", "approvedAt"}

# Fixed namespace for learner subject ids: uuid5(namespace, issuer id + learner key).
SUBJECT_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-c1d2e3f4a5b6")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_COMMIT_HEX = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_URN_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SLUG = re.compile(r"[^a-z0-9]+")


def extension_context(url: str) -> dict:
    """The JSON-LD context document the product serves at ``url`` (its EXTENSION_CONTEXT_PATH)."""
    terms: dict = {"@version": 1.1, "@protected": True,
                   # OB 3.0's credentialSchema type, which neither VC 2.0's nor OB 3.0's context defines: without
                   # it a JSON-LD processor in safe mode (every Data Integrity verifier) refuses the credential.
                   SCHEMA_VALIDATOR_TYPE: {"@id": SCHEMA_VALIDATOR_IRI}}
    for term, _meaning in EXTENSION_TERMS.items():
        definition: dict = {"@id": f"{EXTENSION_VOCABULARY}{term}"}
        if term in _DATE_TERMS:
            definition["@type"] = "http://www.w3.org/2001/XMLSchema#dateTime"
        elif term == "completedOn":
            definition["@type"] = "http://www.w3.org/2001/XMLSchema#date"
        elif term == "rubric":
            definition["@type"] = "@id"
        terms[term] = definition
    return {"@context": terms, "comment": f"Capstone Assessor terms, published at {url}",
            "terms": dict(EXTENSION_TERMS)}


def score_text(value: float) -> str:
    """Every score and point figure, everywhere (credential, PDF, pages): one decimal at most."""
    rounded = round(float(value), 1)
    return str(int(rounded)) if rounded.is_integer() else f"{rounded:.1f}"


@dataclass(frozen=True)
class LevelDescription:
    level: int
    points: float
    descriptor: str = ""


@dataclass(frozen=True)
class CriterionResult:
    criterion_id: str
    name: str
    achieved: int | None  # the level reached
    points: float
    max_points: float
    levels: tuple[LevelDescription, ...] = ()

    @property
    def top_level(self) -> int | None:
        return max((level.level for level in self.levels), default=None)

    @property
    def level_label(self) -> str:
        if self.achieved is None:
            return "not scored"
        return f"level {self.achieved} of {self.top_level}" if self.top_level is not None else f"level {self.achieved}"


@dataclass(frozen=True)
class ModuleResult:
    """A course module the learner passed, as the course operator recorded it."""

    module: str
    title: str
    score: float
    max_score: float
    completed_on: date


@dataclass(frozen=True)
class Alignment:
    """A skill the capstone shows, in a framework's words (OB 3.0 ``Alignment``)."""

    name: str
    url: str
    framework: str = ""
    code: str = ""


@dataclass(frozen=True)
class AchievementData:
    """What every learner who passes one capstone earns: the same for all of them (the badge class)."""

    issuer_id: str
    issuer_name: str
    rubric_id: str
    rubric_version: str
    course: str
    capstone: str
    description: str
    pass_mark: float
    max_total: float
    criteria: tuple[CriterionResult, ...]  # only their ids, names and levels are read
    modules: tuple[tuple[str, str, float], ...] = ()  # (module id, title, max score) of the course
    skills: tuple[Alignment, ...] = ()
    image_url: str = ""

    @property
    def achievement_id(self) -> str:
        return f"{self.issuer_id}/achievements/{self.rubric_id}/{self.rubric_version}"

    @property
    def name(self) -> str:
        return f"{self.course}: {self.capstone}"

    @property
    def criteria_narrative(self) -> str:
        return (f"Scored at least {score_text(self.pass_mark)} of {score_text(self.max_total)} points on rubric "
                f"{self.rubric_id} v{self.rubric_version}, with the assessment approved by a mentor.")


@dataclass(frozen=True)
class CertificateData:
    certificate_id: uuid.UUID
    subject_id: str  # urn:uuid from subject_id_for(); never the email
    learner_name: str  # display name, shown on the PDF and in the credential
    course: str
    capstone: str
    rubric_id: str
    rubric_version: str
    rubric_sha256: str
    criteria: tuple[CriterionResult, ...]
    total: float
    max_total: float
    pass_mark: float
    repo_url: str | None  # None when the source is not a public https repository
    commit: str
    report_sha256: str  # sha256 of the stored report JSON
    mentor_name: str
    assessed_at: datetime
    approved_at: datetime
    issued_at: datetime
    verify_url: str  # public page for this certificate (also the QR code target)
    status_list_url: str  # BitstringStatusListCredential URL
    status_list_index: int
    issuer_id: str  # e.g. https://assessor.example.org/issuer
    issuer_name: str
    issuer_url: str = ""  # the issuer's home page
    extension_context_url: str = ""  # our JSON-LD context (EXTENSION_CONTEXT_PATH on the issuer's host)
    image_url: str = ""  # the badge image
    identity_hash: str | None = None  # identity_hash_for(verified e-mail, salt)
    identity_salt: str | None = None
    modules: tuple[ModuleResult, ...] = ()
    description: str = field(default="")
    skills: tuple[Alignment, ...] = ()
    achievement_description: str = ""  # the capstone's own description (the rubric's), the same for everyone

    @property
    def credential_id(self) -> str:
        return f"urn:uuid:{self.certificate_id}"

    @property
    def short_commit(self) -> str:
        return self.commit[:10]


def subject_id_for(issuer_id: str, learner_key: str) -> str:
    """A stable opaque subject id per learner: pass an internal account id, not the email."""
    if "@" in learner_key:
        raise CertificateError("subject ids must not be derived from an email address")
    return f"urn:uuid:{uuid.uuid5(SUBJECT_NAMESPACE, f'{issuer_id}|{learner_key}')}"


def normalise_identity(email: str) -> str:
    return (email or "").strip().lower()


def identity_hash_for(email: str, salt: str) -> str:
    """OB 3.0's IdentityHash of an e-mail address: ``sha256$`` + hex SHA-256 of the address then the salt."""
    digest = hashlib.sha256((normalise_identity(email) + salt).encode("utf-8")).hexdigest()
    return IDENTITY_HASH_PREFIX + digest


def identity_matches(credential: dict, email: str) -> bool:
    """Whether the credential's hashed e-mail identifier is this address (what an employer asks)."""
    subject = credential.get("credentialSubject") if isinstance(credential, dict) else None
    for identity in (subject or {}).get("identifier") or []:
        if (isinstance(identity, dict) and identity.get("identityType") == "emailAddress" and identity.get("hashed")
                and isinstance(identity.get("salt"), str)
                and identity.get("identityHash") == identity_hash_for(email, identity["salt"])):
            return True
    return False


def iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise CertificateError("certificate dates must be timezone-aware")
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


# Plain http is accepted only for this machine itself, so a demo on one laptop issues working links.
_LOOPBACK_HTTP = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?(/|$)")


def is_public_url(url: str) -> bool:
    """https anywhere, or http on the loopback interface."""
    return url.startswith("https://") or bool(_LOOPBACK_HTTP.match(url))


def _check(data: CertificateData) -> None:
    problems = []
    if not _URN_UUID.match(data.subject_id):
        problems.append("subject_id must be a lowercase urn:uuid")
    if not _SHA256_HEX.match(data.rubric_sha256) or not _SHA256_HEX.match(data.report_sha256):
        problems.append("rubric_sha256 and report_sha256 must be 64 lowercase hex digits")
    if not _COMMIT_HEX.match(data.commit):
        problems.append("commit must be a full lowercase hex SHA")
    if not data.criteria:
        problems.append("at least one criterion result is needed")
    if data.total < data.pass_mark:
        problems.append(f"total {data.total} is below the pass mark {data.pass_mark}")
    if data.status_list_index < 0:
        problems.append("status_list_index must be >= 0")
    urls = [data.verify_url, data.status_list_url, data.issuer_id]
    urls += [url for url in (data.repo_url, data.issuer_url, data.extension_context_url, data.image_url) if url]
    for url in urls:
        if not is_public_url(url):
            problems.append(f"not an https URL: {url!r}")
    if not data.learner_name.strip() or len(data.learner_name) > MAX_NAME_CHARS:
        problems.append(f"learner_name must be 1-{MAX_NAME_CHARS} characters")
    for label, text in (("course", data.course), ("capstone", data.capstone)):
        if not text.strip() or len(text) > MAX_TITLE_CHARS:
            problems.append(f"{label} must be 1-{MAX_TITLE_CHARS} characters")
    if any(len(c.name) > MAX_TITLE_CHARS for c in data.criteria):
        problems.append("criterion names are too long for a certificate")
    if len({c.criterion_id for c in data.criteria}) != len(data.criteria):
        problems.append("criterion ids must be unique")
    if len(data.criteria) > MAX_CRITERIA:
        problems.append(f"at most {MAX_CRITERIA} criteria fit on a certificate")
    if len(data.modules) > MAX_MODULES:
        problems.append(f"at most {MAX_MODULES} modules fit on a certificate")
    if len({m.module for m in data.modules}) != len(data.modules):
        problems.append("module ids must be unique")
    if any(not m.title.strip() or len(m.title) > MAX_TITLE_CHARS for m in data.modules):
        problems.append(f"module titles must be 1-{MAX_TITLE_CHARS} characters")
    if (data.identity_hash is None) != (data.identity_salt is None):
        problems.append("an identity hash needs its salt")
    if problems:
        raise CertificateError("; ".join(problems))


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-") or "module"


def _criterion_description(achievement_id: str, criterion: CriterionResult) -> dict:
    description = {"id": f"{achievement_id}#{criterion.criterion_id}", "type": ["ResultDescription"],
                   "name": criterion.name, "resultType": "RubricCriterionLevel"}
    if criterion.levels:
        description["rubricCriterionLevel"] = [
            {"id": f"{achievement_id}#{criterion.criterion_id}-level-{level.level}", "type": ["RubricCriterionLevel"],
             "name": f"Level {level.level} of {criterion.top_level}", "level": str(level.level),
             "points": score_text(level.points), **({"description": level.descriptor} if level.descriptor else {})}
            for level in criterion.levels
        ]
    return description


def _criterion_result(achievement_id: str, criterion: CriterionResult) -> dict:
    result = {"type": ["Result"], "resultDescription": f"{achievement_id}#{criterion.criterion_id}",
              "value": score_text(criterion.points), "status": "Completed"}
    if criterion.achieved is not None and any(level.level == criterion.achieved for level in criterion.levels):
        result["achievedLevel"] = f"{achievement_id}#{criterion.criterion_id}-level-{criterion.achieved}"
    return result


def build_achievement(data: AchievementData) -> dict:
    """The OB 3.0 ``Achievement`` (the badge class): what its id dereferences to, and what each credential embeds."""
    achievement_id = data.achievement_id
    result_descriptions = [_criterion_description(achievement_id, c) for c in data.criteria]
    result_descriptions.append({"id": f"{achievement_id}#total", "type": ["ResultDescription"],
                                "name": "Capstone score", "resultType": "RubricScore", "valueMin": "0",
                                "valueMax": score_text(data.max_total), "requiredValue": score_text(data.pass_mark)})
    for module, title, max_score in data.modules:
        result_descriptions.append({"id": f"{achievement_id}#module-{_slug(module)}", "type": ["ResultDescription"],
                                    "name": title, "resultType": "RawScore", "valueMin": "0",
                                    "valueMax": score_text(max_score)})
    achievement = {
        "id": achievement_id,
        "type": ["Achievement"],
        "achievementType": "Certificate",
        "name": data.name,
        "description": data.description,
        "criteria": {"id": achievement_id, "narrative": data.criteria_narrative},
        "creator": {"id": data.issuer_id, "type": ["Profile"], "name": data.issuer_name},
        "resultDescription": result_descriptions,
    }
    if data.skills:
        achievement["alignment"] = [
            {"type": ["Alignment"], "targetName": skill.name, "targetUrl": skill.url, "targetType": "ceasn:Competency",
             **({"targetFramework": skill.framework} if skill.framework else {}),
             **({"targetCode": skill.code} if skill.code else {})}
            for skill in data.skills
        ]
    if data.image_url:
        achievement["image"] = {"id": data.image_url, "type": "Image", "caption": f"{data.name} badge"}
    return achievement


def achievement_of(data: CertificateData) -> AchievementData:
    return AchievementData(
        issuer_id=data.issuer_id, issuer_name=data.issuer_name, rubric_id=data.rubric_id,
        rubric_version=data.rubric_version, course=data.course, capstone=data.capstone,
        description=data.achievement_description or (
            f"The {data.capstone} capstone of {data.course}, assessed against rubric {data.rubric_id} "
            f"v{data.rubric_version} and approved by a mentor."),
        pass_mark=data.pass_mark, max_total=data.max_total, criteria=data.criteria,
        modules=tuple((m.module, m.title, m.max_score) for m in data.modules), skills=data.skills,
        image_url=data.image_url)


def build_credential(data: CertificateData) -> dict:
    """The unsigned OpenBadgeCredential (W3C VC 2.0 shape) for a passed assessment."""
    _check(data)
    achievement = build_achievement(achievement_of(data))
    achievement_id = achievement["id"]
    total_id, modules_id = f"{achievement_id}#total", f"{achievement_id}#module-"
    description = data.description or (
        f"Completed the {data.capstone} capstone of {data.course}, assessed against rubric "
        f"{data.rubric_id} v{data.rubric_version} and approved by a mentor."
        + (f" Course modules passed: {len(data.modules)}." if data.modules else "")
    )
    results = [_criterion_result(achievement_id, c) for c in data.criteria]
    results.append({"type": ["Result"], "resultDescription": total_id, "value": score_text(data.total),
                    "status": "Completed"})
    for module in data.modules:
        results.append({"type": ["Result"], "resultDescription": modules_id + _slug(module.module),
                        "value": score_text(module.score), "status": "Completed",
                        "completedOn": module.completed_on.isoformat()})
    subject = {"id": data.subject_id, "type": ["AchievementSubject"], "name": data.learner_name,
               "achievement": achievement, "result": results}
    if data.identity_hash:
        subject["identifier"] = [{"type": "IdentityObject", "identityHash": data.identity_hash,
                                  "identityType": "emailAddress", "hashed": True, "salt": data.identity_salt}]
    assessment = {
        "type": ["Evidence"],
        "name": "Assessment",
        "genre": "Assessment report",
        "description": f"Automated assessment against rubric {data.rubric_id} v{data.rubric_version}, "
                       f"approved by {data.mentor_name}",
        "rubric": achievement_id,
        "rubricId": data.rubric_id,
        "rubricVersion": data.rubric_version,
        "rubricSha256": data.rubric_sha256,
        "reportSha256": data.report_sha256,
        "approvedBy": data.mentor_name,
        "assessedAt": iso_utc(data.assessed_at),
        "approvedAt": iso_utc(data.approved_at),
    }
    repository = {"type": ["Evidence"], "name": "Capstone repository", "genre": "Source code",
                  "description": f"Assessed at commit {data.commit}", "commit": data.commit}
    if data.repo_url:
        repository["id"] = data.repo_url
    issuer = {"id": data.issuer_id, "type": ["Profile"], "name": data.issuer_name}
    if data.issuer_url:
        issuer["url"] = data.issuer_url
    credential = {
        "@context": list(CONTEXTS) + ([data.extension_context_url] if data.extension_context_url else []),
        "id": data.credential_id,
        "type": list(CREDENTIAL_TYPES),
        "issuer": issuer,
        "validFrom": iso_utc(data.issued_at),
        "awardedDate": iso_utc(data.approved_at),
        "name": f"{data.course}: {data.capstone}",
        "description": description,
        "credentialSubject": subject,
        "evidence": [repository, assessment],
        "credentialSchema": [dict(OB_SCHEMA)],
        "credentialStatus": {
            "id": f"{data.status_list_url}#{data.status_list_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(data.status_list_index),
            "statusListCredential": data.status_list_url,
        },
    }
    if data.image_url:
        credential["image"] = {"id": data.image_url, "type": "Image"}
    return credential


def jwt_claims(credential: dict) -> dict:
    """The credential plus the registered claims mirrored from its body."""
    issued = datetime.fromisoformat(credential["validFrom"].replace("Z", "+00:00"))
    return {
        **credential,
        "iss": credential["issuer"]["id"] if isinstance(credential["issuer"], dict) else credential["issuer"],
        "jti": credential["id"],
        "nbf": int(issued.timestamp()),
        **({"sub": credential["credentialSubject"]["id"]} if "credentialSubject" in credential else {}),
    }


def encode_segment(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def sign_claims(claims: dict, private_key: PrivateKey, kid: str) -> str:
    """Compact JWS with the header exactly {alg, kid, typ}; alg follows the key (ES256 for P-256)."""
    header = {"alg": algorithm_of(private_key), "kid": kid, "typ": "JWT"}
    signing_input = f"{encode_segment(header)}.{encode_segment(claims)}"
    _alg, signature = sign(private_key, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def sign_credential(credential: dict, private_key: PrivateKey, kid: str) -> str:
    """The VC-JWT of a credential, as OB 3.0 describes it."""
    return sign_claims(jwt_claims(credential), private_key, kid)


def issue(data: CertificateData, private_key: PrivateKey, kid: str) -> tuple[dict, str]:
    """Build and sign: returns (credential, token)."""
    credential = build_credential(data)
    return credential, sign_credential(credential, private_key, kid)
