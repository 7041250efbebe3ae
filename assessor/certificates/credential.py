"""Open Badges 3.0 ``OpenBadgeCredential`` built from a ``CertificateData``, signed as a compact JWT.

The JWT is produced here with ``cryptography`` alone (header exactly
``{"alg":"EdDSA","kid":<kid URL>,"typ":"JWT"}``), so a JOSE library can check it
independently. The learner's email is never an input: the subject is an opaque
``urn:uuid`` (see ``subject_id_for``).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from assessor.certificates.keys import b64url
from assessor.errors import CertificateError

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_V3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CONTEXTS = [VC_V2_CONTEXT, OB_V3_CONTEXT]
CREDENTIAL_TYPES = ["VerifiableCredential", "OpenBadgeCredential"]
JWT_ALG = "EdDSA"
MAX_NAME_CHARS = 120
MAX_CRITERIA = 12
MAX_TITLE_CHARS = 100

# Fixed namespace for learner subject ids: uuid5(namespace, issuer id + learner key).
SUBJECT_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-c1d2e3f4a5b6")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_COMMIT_HEX = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_URN_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class CriterionResult:
    criterion_id: str
    name: str
    level: str  # e.g. "meets", "exceeds"
    points: float
    max_points: float


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
    repo_url: str
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
    description: str = field(default="")

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
    for url in (data.verify_url, data.status_list_url, data.issuer_id, data.repo_url):
        if not is_public_url(url):
            problems.append(f"not an https URL: {url!r}")
    if not data.learner_name.strip() or len(data.learner_name) > MAX_NAME_CHARS:
        problems.append(f"learner_name must be 1-{MAX_NAME_CHARS} characters")
    for label, text in (("course", data.course), ("capstone", data.capstone)):
        if not text.strip() or len(text) > MAX_TITLE_CHARS:
            problems.append(f"{label} must be 1-{MAX_TITLE_CHARS} characters")
    if any(len(c.name) > MAX_TITLE_CHARS or len(c.level) > 40 for c in data.criteria):
        problems.append("criterion names and levels are too long for a certificate")
    if len({c.criterion_id for c in data.criteria}) != len(data.criteria):
        problems.append("criterion ids must be unique")
    if len(data.criteria) > MAX_CRITERIA:
        problems.append(f"at most {MAX_CRITERIA} criteria fit on a certificate")
    if problems:
        raise CertificateError("; ".join(problems))


def build_credential(data: CertificateData) -> dict:
    """The unsigned OpenBadgeCredential (W3C VC 2.0 shape) for a passed assessment."""
    _check(data)
    achievement_id = f"{data.issuer_id}/achievements/{data.rubric_id}/{data.rubric_version}"
    criteria_ids = {c.criterion_id: f"{achievement_id}#{c.criterion_id}" for c in data.criteria}
    description = data.description or (
        f"Completed the {data.capstone} capstone of {data.course}, assessed against rubric "
        f"{data.rubric_id} v{data.rubric_version} and approved by a mentor."
    )
    return {
        "@context": list(CONTEXTS),
        "id": data.credential_id,
        "type": list(CREDENTIAL_TYPES),
        "issuer": {"id": data.issuer_id, "type": ["Profile"], "name": data.issuer_name},
        "validFrom": iso_utc(data.issued_at),
        "name": f"{data.course}: {data.capstone}",
        "credentialSubject": {
            "id": data.subject_id,
            "type": ["AchievementSubject"],
            "name": data.learner_name,
            "achievement": {
                "id": achievement_id,
                "type": ["Achievement"],
                "name": f"{data.course}: {data.capstone}",
                "description": description,
                "criteria": {
                    "narrative": (
                        f"Scored at least {_number(data.pass_mark)} of {_number(data.max_total)} points on "
                        f"rubric {data.rubric_id} v{data.rubric_version}, with the assessment approved by a mentor."
                    )
                },
                "resultDescription": [
                    {
                        "id": criteria_ids[c.criterion_id],
                        "type": ["ResultDescription"],
                        "name": c.name,
                        "resultType": "RawScore",
                        "valueMax": str(_number(c.max_points)),
                    }
                    for c in data.criteria
                ],
            },
            "result": [
                {
                    "type": ["Result"],
                    "resultDescription": criteria_ids[c.criterion_id],
                    "value": str(_number(c.points)),
                    "level": c.level,
                    "points": _number(c.points),
                }
                for c in data.criteria
            ],
        },
        "evidence": [
            {
                "id": data.repo_url,
                "type": ["Evidence"],
                "name": "Capstone repository",
                "genre": "Source code",
                "description": f"Assessed at commit {data.commit}",
                "commit": data.commit,
            },
            {
                "type": ["Evidence"],
                "name": "Assessment",
                "genre": "Assessment report",
                "description": f"Automated assessment against rubric {data.rubric_id} v{data.rubric_version}, "
                f"approved by {data.mentor_name}",
                "rubric": {"id": data.rubric_id, "version": data.rubric_version, "sha256": data.rubric_sha256},
                "reportSha256": data.report_sha256,
                "total": _number(data.total),
                "maxTotal": _number(data.max_total),
                "passMark": _number(data.pass_mark),
                "approvedBy": data.mentor_name,
                "assessedAt": iso_utc(data.assessed_at),
                "approvedAt": iso_utc(data.approved_at),
            },
        ],
        "credentialStatus": {
            "id": f"{data.status_list_url}#{data.status_list_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(data.status_list_index),
            "statusListCredential": data.status_list_url,
        },
    }


def jwt_claims(credential: dict) -> dict:
    """The credential plus the registered claims mirrored from its body."""
    issued = datetime.fromisoformat(credential["validFrom"].replace("Z", "+00:00"))
    return {
        **credential,
        "iss": credential["issuer"]["id"],
        "jti": credential["id"],
        "nbf": int(issued.timestamp()),
        "sub": credential["credentialSubject"]["id"],
    }


def encode_segment(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def sign_credential(credential: dict, private_key: Ed25519PrivateKey, kid: str) -> str:
    """Compact JWS (VC-JWT as OB 3.0 describes): header exactly {alg, kid, typ}."""
    if not isinstance(private_key, Ed25519PrivateKey):
        raise CertificateError("certificates are signed with an Ed25519 key")
    header = {"alg": JWT_ALG, "kid": kid, "typ": "JWT"}
    signing_input = f"{encode_segment(header)}.{encode_segment(jwt_claims(credential))}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def issue(data: CertificateData, private_key: Ed25519PrivateKey, kid: str) -> tuple[dict, str]:
    """Build and sign: returns (credential, token)."""
    credential = build_credential(data)
    return credential, sign_credential(credential, private_key, kid)
