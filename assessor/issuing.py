"""Certificates for approved, passing attempts: issuing, revocation, the status list, and the issuer keys.

The certificate engine (``assessor.certificates``) is pure; this module ties it to the database. Issuing is
idempotent: ``certificates.attempt_id`` is unique, so approving twice or a retried job returns the one
certificate. The PDF is rendered and sealed once, at issue time, and stored; requests serve the stored bytes.

Keys: private keys are PEM files (0600) in ``keys_dir`` (0700), or one file the operator names with
``ASSESSOR_SIGNING_KEY_FILE``; the database holds only the public JWK and the file's path.
"""

from __future__ import annotations

import base64
import gzip
import json
import hashlib
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from assessor.certificates import (
    CertificateData,
    CriterionResult,
    KeyRecord,
    build_jwks,
    generate_key,
    issue,
    kid_url,
    load_private_key,
    public_jwk,
    retired_keys,
    subject_id_for,
)
from assessor.certificates.credential import CONTEXTS, encode_segment, iso_utc
from assessor.certificates.keys import b64url, public_key_from_jwk, thumbprint
from assessor.certificates.render import render_certificate_pdf, seal_pdf
from assessor.db import utcnow
from assessor.errors import AssessorError, CertificateError
from assessor.models import APPROVED, Attempt, Certificate, Review, SigningKey, StoredReport, User

logger = logging.getLogger("assessor.issuing")

STATUS_LIST_ID = 1
STATUS_LIST_SIZE = 131072  # bits: the spec's minimum of 16 KB, so one entry says nothing about who it is
MAX_REASON = 500
MULTIBASE_BASE64URL = "u"  # multibase prefix of base64url without padding


class IssuingError(AssessorError):
    """The attempt cannot be certified (not approved, not passing, no report...)."""


@dataclass(frozen=True)
class IssuerSettings:
    keys_dir: Path
    public_url: str  # https://host[:port], no trailing slash
    issuer_name: str = "Capstone Assessor"
    key_file: Path | None = None  # operator-provided private key (overrides keys_dir)

    @property
    def issuer_id(self) -> str:
        return f"{self.public_url}/issuer"

    def verify_url(self, public_id: str) -> str:
        return f"{self.public_url}/verify/{public_id}"

    def status_list_url(self, number: int = STATUS_LIST_ID) -> str:
        return f"{self.public_url}/status/{number}"


def settings_from_config(config: Mapping[str, Any]) -> IssuerSettings:
    key_file = config.get("SIGNING_KEY_FILE") or None
    return IssuerSettings(
        keys_dir=Path(config["KEYS_DIR"]),
        public_url=str(config.get("PUBLIC_URL") or "https://localhost").rstrip("/"),
        issuer_name=str(config.get("ISSUER_NAME") or "Capstone Assessor"),
        key_file=Path(key_file) if key_file else None,
    )


# ------------------------------------------------------------------------------------------------------- keys

def _secure_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)


def _add_key(session: Session, *, path: Path, active: bool) -> SigningKey:
    private = load_private_key(path)
    kid = thumbprint(private.public_key())
    existing = session.exec(select(SigningKey).where(SigningKey.kid == kid)).first()
    if existing is not None:
        return existing
    row = SigningKey(kid=kid, public_jwk=json.dumps(public_jwk(private.public_key(), kid)),
                     private_key_path=str(path), active=active)
    session.add(row)
    session.flush()
    return row


def active_key(session: Session, *, settings: IssuerSettings) -> SigningKey:
    """The key that signs new certificates; the operator's key file, or a key created on first use."""
    if settings.key_file is not None:
        private = load_private_key(settings.key_file)
        kid = thumbprint(private.public_key())
        row = session.exec(select(SigningKey).where(SigningKey.kid == kid)).first()
        if row is None:
            row = _add_key(session, path=settings.key_file, active=False)
        if not row.active:
            _retire_others(session, keep=row)
            row.active, row.retired_at = True, None
            session.add(row)
            session.commit()
        return row
    row = session.exec(select(SigningKey).where(SigningKey.active == True)).first()  # noqa: E712
    if row is not None:
        return row
    _secure_dir(settings.keys_dir)
    info = generate_key(settings.keys_dir)
    row = _add_key(session, path=info.path, active=True)
    session.commit()
    return row


def _retire_others(session: Session, *, keep: SigningKey) -> None:
    now = utcnow()
    for other in session.exec(select(SigningKey).where(SigningKey.active == True)).all():  # noqa: E712
        if other.id != keep.id:
            other.active, other.retired_at = False, now
            session.add(other)


def rotate_key(session: Session, *, settings: IssuerSettings) -> SigningKey:
    """A new active key; the old one is retired but stays in the JWKS, so what it signed still verifies."""
    if settings.key_file is not None:
        raise IssuingError("the signing key is given by ASSESSOR_SIGNING_KEY_FILE: rotate it by changing that file")
    _secure_dir(settings.keys_dir)
    info = generate_key(settings.keys_dir)
    row = _add_key(session, path=info.path, active=True)
    _retire_others(session, keep=row)
    session.commit()
    return row


def list_keys(session: Session) -> list[SigningKey]:
    return list(session.exec(select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.id.desc())).all())


def _records(session: Session, settings: IssuerSettings) -> list[KeyRecord]:
    records = []
    for row in list_keys(session):
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
        retired = row.retired_at
        if retired is not None and retired.tzinfo is None:
            retired = retired.replace(tzinfo=timezone.utc)
        records.append(KeyRecord(kid=kid_url(settings.issuer_id, row.kid),
                                 public_key=public_key_from_jwk(json.loads(row.public_jwk)),
                                 created=created, retired_at=retired))
    return records


def jwks(session: Session, *, settings: IssuerSettings) -> dict:
    """Every key, active and retired; retired ones listed under the non-standard ``retired`` member."""
    records = _records(session, settings)
    document = build_jwks(records)
    document.update(retired_keys(records))
    return document


# ------------------------------------------------------------------------------------------------------ issuing

def approved_without_certificate(session: Session, *, user_id: int) -> list[int]:
    """Attempts of `user_id` a mentor approved that have no certificate yet (waiting, say, for a verified
    address); issuing checks again that each one passes."""
    certified = select(Certificate.attempt_id)
    return list(session.exec(select(Attempt.id).where(Attempt.user_id == user_id, Attempt.review_state == APPROVED,
                                                      Attempt.id.not_in(certified))))


def certificate_for_attempt(session: Session, *, attempt_id: int) -> Certificate | None:
    return session.exec(select(Certificate).where(Certificate.attempt_id == attempt_id)).first()


def get_certificate(session: Session, *, public_id: str) -> Certificate | None:
    if not isinstance(public_id, str) or len(public_id) > 36:
        return None
    # The PDF (tens of KB) is loaded only when it is served.
    return session.exec(select(Certificate).options(defer(Certificate.pdf))
                        .where(Certificate.public_id == public_id)).first()


@dataclass(frozen=True)
class CertificateStatus:
    public_id: str
    token: str
    issued_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


_PLACEHOLDERS = {"qmark": "?", "numeric": ":1", "named": ":public_id", "format": "%s", "pyformat": "%s"}


def _as_utc(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back the stored text
        value = datetime.fromisoformat(value)
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def certificate_status(engine, *, public_id: str) -> CertificateStatus | None:
    """The few columns the public API needs, read on every request (so a revocation shows at once).

    The hot path of verification: one parameterised query on a pooled DBAPI connection, without the ORM or
    Core result machinery (which cost several times the query itself)."""
    if not isinstance(public_id, str) or len(public_id) > 36:
        return None
    placeholder = _PLACEHOLDERS[engine.dialect.paramstyle]
    params = {"public_id": public_id} if placeholder == ":public_id" else (public_id,)
    sql = ("SELECT public_id, token, issued_at, revoked_at, revoked_reason FROM certificates "
           f"WHERE public_id = {placeholder}")
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        connection.close()  # back to the pool (rolled back there)
    if row is None:
        return None
    return CertificateStatus(row[0], row[1], _as_utc(row[2]), _as_utc(row[3]), row[4])


def _free_index(session: Session) -> int:
    """A random free slot: neighbouring indexes then say nothing about who was certified when."""
    for _ in range(64):
        index = secrets.randbelow(STATUS_LIST_SIZE)
        taken = session.exec(select(Certificate.id).where(Certificate.status_list == STATUS_LIST_ID,
                                                          Certificate.status_index == index)).first()
        if taken is None:
            return index
    raise IssuingError("the status list is full")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def certificate_data(session: Session, *, attempt: Attempt, settings: IssuerSettings, public_id: str,
                     status_index: int, issued_at: datetime) -> CertificateData:
    from assessor.reviews import final_score, get_review, review_levels
    from assessor.submissions import attempt_rubric, load_report

    if attempt.review_state != APPROVED:
        raise IssuingError(f"attempt {attempt.id} is not approved")
    review: Review | None = get_review(session, attempt=attempt)
    if review is None or review.decision != APPROVED or review.final_outcome != "pass":
        raise IssuingError(f"attempt {attempt.id} did not pass")
    report = load_report(session, attempt=attempt)
    stored = session.get(StoredReport, attempt.report_id) if attempt.report_id else None
    if report is None or stored is None:
        raise IssuingError(f"attempt {attempt.id} has no stored report")
    rubric = attempt_rubric(session, attempt=attempt)
    result = final_score(rubric, report, review_levels(session, review=review))
    if result.outcome != "pass":
        raise IssuingError(f"attempt {attempt.id} did not pass")
    learner = session.get(User, attempt.user_id)
    mentor = session.get(User, review.mentor_id)
    # Display names only: an account without a name is shown as "Learner", never by its email.
    learner_name = (learner.name if learner and learner.name else "Learner")[:120]
    mentor_name = (mentor.name if mentor and mentor.name else "Mentor")[:120]
    verify_url = settings.verify_url(public_id)
    repo_url = attempt.source_url if attempt.source_url.startswith("https://") else verify_url
    criteria = tuple(
        CriterionResult(score.id, score.title[:100], f"level {score.level}" if score.level is not None else "n/a",
                        float(score.points or 0), float(score.max_points))
        for score in result.criteria
    )
    assessed_at = _aware(stored.created_at)
    try:
        assessed_at = datetime.fromisoformat(report.assessed_at)
        assessed_at = _aware(assessed_at)
    except (TypeError, ValueError):
        pass
    return CertificateData(
        certificate_id=uuid.UUID(public_id),
        subject_id=subject_id_for(settings.issuer_id, f"user-{attempt.user_id}"),
        learner_name=learner_name,
        course=rubric.course[:100],
        capstone=rubric.title[:100],
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        rubric_sha256=rubric.sha256,
        criteria=criteria,
        total=round(result.score.percent, 2),
        max_total=100,
        pass_mark=float(rubric.pass_mark),
        repo_url=repo_url,
        commit=(attempt.commit or report.commit).lower(),
        report_sha256=hashlib.sha256(stored.document.encode("utf-8")).hexdigest(),
        mentor_name=mentor_name,
        assessed_at=assessed_at,
        approved_at=_aware(review.decided_at or issued_at),
        issued_at=issued_at,
        verify_url=verify_url,
        status_list_url=settings.status_list_url(),
        status_list_index=status_index,
        issuer_id=settings.issuer_id,
        issuer_name=settings.issuer_name,
    )


def issue_certificate(session: Session, *, attempt_id: int, settings: IssuerSettings) -> Certificate:
    """The attempt's certificate, issued now if it has none (idempotent, also under races)."""
    from assessor.submissions import record_event

    existing = certificate_for_attempt(session, attempt_id=attempt_id)
    if existing is not None:
        return existing
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        raise IssuingError(f"no attempt {attempt_id}")
    learner = session.get(User, attempt.user_id)
    if learner is None or learner.email_verified_at is None:
        # A certificate names a verified address; it is issued once the learner confirms theirs.
        raise IssuingError(f"the learner of attempt {attempt_id} has not confirmed their e-mail address yet")
    key = active_key(session, settings=settings)
    private = load_private_key(key.private_key_path)
    kid = kid_url(settings.issuer_id, key.kid)
    for _ in range(3):
        public_id = str(uuid.uuid4())
        index = _free_index(session)
        issued_at = utcnow().replace(microsecond=0)
        data = certificate_data(session, attempt=attempt, settings=settings, public_id=public_id,
                                status_index=index, issued_at=issued_at)
        try:
            _credential, token = issue(data, private, kid)
            pdf = seal_pdf(render_certificate_pdf(data, token), private, issuer_name=settings.issuer_name, kid=kid)
        except CertificateError as error:  # e.g. ASSESSOR_PUBLIC_URL is not https: retrying will not help
            raise IssuingError(f"cannot issue the certificate of attempt {attempt_id}: {error}") from error
        certificate = Certificate(public_id=public_id, attempt_id=attempt.id, user_id=attempt.user_id, kid=key.kid,
                                  token=token, pdf=pdf, status_list=STATUS_LIST_ID, status_index=index,
                                  issued_at=issued_at)
        session.add(certificate)
        record_event(session, attempt=attempt, kind="certified", detail=f"certificate {public_id}")
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            existing = certificate_for_attempt(session, attempt_id=attempt_id)
            if existing is not None:  # another worker issued it first
                return existing
            continue  # a status index collision: try another slot
        logger.info("issued certificate %s for attempt %s", public_id, attempt_id)
        return certificate
    raise IssuingError(f"could not allocate a certificate for attempt {attempt_id}")


def revoke(session: Session, *, certificate_id: str, admin: User | None, reason: str) -> Certificate:
    """Revoke with a reason; revoking again keeps the first revocation."""
    from assessor.submissions import record_event

    reason = (reason or "").strip()
    if not reason:
        raise IssuingError("give a reason for the revocation")
    if len(reason) > MAX_REASON:
        raise IssuingError(f"keep the reason under {MAX_REASON} characters")
    certificate = get_certificate(session, public_id=certificate_id)
    if certificate is None:
        raise IssuingError(f"no certificate {certificate_id}")
    if certificate.revoked_at is not None:
        return certificate
    certificate.revoked_at = utcnow()
    certificate.revoked_reason = reason
    certificate.revoked_by = admin.id if admin is not None else None
    session.add(certificate)
    record_event(session, attempt_id=certificate.attempt_id, actor=admin, kind="revoked",
                 detail=f"certificate {certificate.public_id}: {reason}")
    session.commit()
    return certificate


def list_certificates(session: Session, *, limit: int = 200) -> list[Certificate]:
    return list(session.exec(select(Certificate).order_by(Certificate.id.desc()).limit(limit)).all())


def is_revoked_token(session: Session, *, credential: dict) -> Certificate | None:
    """The revoked certificate a verified credential belongs to, if it is revoked."""
    cred_id = str(credential.get("id", ""))
    public_id = cred_id.removeprefix("urn:uuid:")
    certificate = get_certificate(session, public_id=public_id)
    if certificate is not None and certificate.revoked_at is not None:
        return certificate
    return None


# -------------------------------------------------------------------------------------------------- status list

def encode_bitstring(indexes: list[int], size: int = STATUS_LIST_SIZE) -> str:
    """The spec's encodedList: multibase ("u" prefix) base64url, no padding, of the GZIP-compressed bitstring;
    index 0 is the left-most bit of the first byte."""
    bits = bytearray(size // 8)
    for index in indexes:
        bits[index // 8] |= 0x80 >> (index % 8)
    return MULTIBASE_BASE64URL + b64url(gzip.compress(bytes(bits), mtime=0))


def decode_bitstring(encoded: str) -> bytes:
    if not encoded.startswith(MULTIBASE_BASE64URL):
        raise IssuingError("encodedList is not multibase base64url (no 'u' prefix)")
    body = encoded[len(MULTIBASE_BASE64URL):]
    return gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def bit_is_set(bitstring: bytes, index: int) -> bool:
    return bool(bitstring[index // 8] & (0x80 >> (index % 8)))


def status_list_credential(session: Session, *, settings: IssuerSettings, number: int = STATUS_LIST_ID,
                           now: datetime | None = None) -> tuple[dict, str]:
    """The W3C BitstringStatusListCredential for revocation, and the same signed as a JWT."""
    revoked = session.exec(select(Certificate.status_index).where(Certificate.status_list == number,
                                                                  Certificate.revoked_at.is_not(None))).all()
    url = settings.status_list_url(number)
    now = now or utcnow()
    credential = {
        "@context": [CONTEXTS[0]],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": settings.issuer_id,
        "validFrom": iso_utc(now),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_bitstring(list(revoked)),
        },
    }
    key = active_key(session, settings=settings)
    private = load_private_key(key.private_key_path)
    header = {"alg": "EdDSA", "kid": kid_url(settings.issuer_id, key.kid), "typ": "JWT"}
    claims = {**credential, "iss": settings.issuer_id, "jti": url, "nbf": int(now.timestamp())}
    signing_input = f"{encode_segment(header)}.{encode_segment(claims)}"
    token = f"{signing_input}.{b64url(private.sign(signing_input.encode('ascii')))}"
    return credential, token


__all__ = [
    "IssuerSettings", "IssuingError", "active_key", "certificate_for_attempt", "get_certificate", "issue_certificate",
    "jwks", "list_certificates", "list_keys", "revoke", "rotate_key", "settings_from_config", "status_list_credential",
]
