"""Certificates for approved, passing attempts: issuing, revocation, the status list, and the issuer keys.

The certificate engine (``assessor.certificates``) is pure; this module ties it to the database. Issuing is
idempotent: ``certificates.attempt_id`` is unique, so approving twice or a retried job returns the one
certificate. The PDF is rendered and sealed once, at issue time, and stored; requests serve the stored bytes.

Keys: the service's private keys are stored in the database sealed with AES-GCM under the key-encryption key
every machine shares (``ASSESSOR_KEY_ENCRYPTION_KEY``, or derived from the secret key), so any web server or
worker can sign and none holds a key in clear; or the one file the operator names with
``ASSESSOR_SIGNING_KEY_FILE``. Key files an earlier version wrote into ``keys_dir`` are sealed in on first use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import hmac
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from assessor.certificates import CertificateData, CriterionResult, KeyRecord, build_jwks, issue
from assessor.certificates.credential import (
    AchievementData, Alignment, CONTEXTS, EXTENSION_CONTEXT_PATH, LevelDescription, ModuleResult as ModuleLine,
    identity_hash_for, iso_utc,
    sign_claims, subject_id_for,
)
from assessor.certificates.keys import (
    ES256, algorithm_of, destroy_private_key, key_states, key_url, kid_url, load_private_key,
    public_jwk, public_key_from_jwk, thumbprint,
)
from assessor.certificates import status
from assessor.certificates.hsm import HsmPrivateKey, HsmSettings
from assessor.certificates.sealing import key_encryption_key, seal, unseal
from assessor.certificates.render import load_seal_chain, render_certificate_pdf, seal_pdf
from assessor.domain.db import as_utc, utcnow
from assessor.errors import AssessorError, CertificateError
from assessor.domain.models import (
    APPROVED, Attempt, Certificate, ModuleResult, Review, RubricSnapshot, SigningKey, StoredReport, User,
)

logger = logging.getLogger("assessor.issuing")

STATUS_LIST_ID = 1
STATUS_LIST_SIZE = 131072  # bits: the spec's minimum of 16 KB, so one entry says nothing about who it is
MAX_REASON = 500
# Verifiers may cache the JWKS this long; a new key is published at least twice as long before it signs.
JWKS_MAX_AGE_SECONDS = 300
ROTATION_NOTICE = timedelta(seconds=2 * JWKS_MAX_AGE_SECONDS)


class IssuingError(AssessorError):
    """The attempt cannot be certified (not approved, not passing, no report...)."""


@dataclass(frozen=True)
class IssuerSettings:
    keys_dir: Path
    public_url: str  # https://host[:port], no trailing slash
    issuer_name: str = "Capstone Assessor"
    key_file: Path | None = None  # operator-provided private key (overrides keys_dir)
    kek: bytes | None = field(default=None, repr=False)  # seals the private keys stored in the database
    hsm: HsmSettings | None = None  # the operator's key in an HSM (overrides keys_dir and key_file)
    logo_url: str = ""  # the issuer's logo (an https image), shown on its profile and achievement pages
    seal_chain_file: Path | None = None  # a CA-issued certificate for the signing key, then its intermediates (PEM)
    jsonld_cache: Path | None = None  # the published JSON-LD contexts, cached (for the Data Integrity form)

    @property
    def issuer_id(self) -> str:
        return f"{self.public_url}/issuer"

    @property
    def context_url(self) -> str:
        return f"{self.public_url}{EXTENSION_CONTEXT_PATH}"

    def verify_url(self, public_id: str) -> str:
        return f"{self.public_url}/verify/{public_id}"

    def status_list_url(self, number: int = STATUS_LIST_ID) -> str:
        return f"{self.public_url}/status/{number}"

    def badge_url(self, rubric_id: str) -> str:
        return f"{self.public_url}/badges/{rubric_id}.png"


def settings_from_config(config: Mapping[str, Any]) -> IssuerSettings:
    key_file = config.get("SIGNING_KEY_FILE") or None
    return IssuerSettings(
        keys_dir=Path(config["KEYS_DIR"]),
        public_url=str(config.get("PUBLIC_URL") or "https://localhost").rstrip("/"),
        issuer_name=str(config.get("ISSUER_NAME") or "Capstone Assessor"),
        logo_url=str(config.get("ISSUER_LOGO_URL") or ""),
        seal_chain_file=Path(config["SEAL_CERTIFICATE_FILE"]) if config.get("SEAL_CERTIFICATE_FILE") else None,
        jsonld_cache=Path(config.get("JSONLD_CACHE_DIR")
                          or Path(config.get("CACHE_DIR") or config["KEYS_DIR"]) / "jsonld"),
        key_file=Path(key_file) if key_file else None,
        kek=key_encryption_key(configured=config.get("KEY_ENCRYPTION_KEY"), secret_key=config.get("SECRET_KEY")),
        hsm=HsmSettings(module=str(config["PKCS11_MODULE"]), token_label=str(config.get("PKCS11_TOKEN") or ""),
                        key_label=str(config.get("PKCS11_KEY_LABEL") or ""), pin=str(config.get("PKCS11_PIN") or ""))
        if config.get("PKCS11_MODULE") else None,
    )


def earlier_addresses(session: Session, *, settings: IssuerSettings) -> list[str]:
    """Every public URL certificates were issued under, today's first: each id a certificate carries was fixed
    then, so each of these addresses keeps answering for the certificates issued there."""
    suffix = "/issuer"
    found = [settings.public_url]
    for issuer_id in session.exec(select(Certificate.issuer_id).distinct()).all():
        if issuer_id and issuer_id.endswith(suffix) and issuer_id[:-len(suffix)] not in found:
            found.append(issuer_id[:-len(suffix)])
    return found


def settings_as_of(session: Session, *, settings: IssuerSettings, issuer_id: str | None = None,
                   address: str | None = None) -> IssuerSettings | None:
    """The issuer as certificates issued under an earlier address name it: by the issuer id a verifier asks for,
    else by the address the request came to, else today's. None for an issuer id that was never ours."""
    known = earlier_addresses(session, settings=settings)
    if issuer_id:
        wanted = issuer_id.removesuffix("/issuer")
        return replace(settings, public_url=wanted) if wanted in known and issuer_id.endswith("/issuer") else None
    if address and address.rstrip("/") in known:
        return replace(settings, public_url=address.rstrip("/"))
    return settings


def issuer_profile(settings: IssuerSettings) -> dict:
    """The OB 3.0 Profile the issuer id dereferences to."""
    profile = {"@context": list(CONTEXTS), "id": settings.issuer_id, "type": ["Profile"],
               "name": settings.issuer_name, "url": settings.public_url + "/",
               "description": "Issues certificates for approved capstone projects."}
    if settings.logo_url:
        profile["image"] = {"id": settings.logo_url, "type": "Image", "caption": f"{settings.issuer_name} logo"}
    return profile


def course_modules(session: Session, *, course: str) -> tuple[tuple[str, str, float], ...]:
    """The modules of a course as the operator recorded them: (module id, title, most points)."""
    rows = session.exec(select(ModuleResult.module, ModuleResult.title, ModuleResult.max_score)
                        .where(ModuleResult.course == course)).all()
    latest: dict[str, tuple[str, str, float]] = {}
    for module, title, max_score in rows:
        latest[module] = (module, title, max_score)
    return tuple(sorted(latest.values()))


def achievement_data(session: Session, *, settings: IssuerSettings, rubric_id: str,
                     version: str) -> AchievementData | None:
    """The badge class of one rubric version, as certificates issued against it describe it (None: never used)."""
    from assessor.engine.rubric import parse_rubric

    if len(rubric_id) > 64 or len(version) > 64:
        return None
    snapshot = session.exec(select(RubricSnapshot).where(RubricSnapshot.rubric_id == rubric_id,
                                                         RubricSnapshot.version == version)
                            .order_by(RubricSnapshot.created_at.desc())).first()
    if snapshot is None:
        return None
    rubric = parse_rubric(snapshot.source.encode("utf-8"), source=f"{rubric_id} v{version}")
    return AchievementData(
        issuer_id=settings.issuer_id, issuer_name=settings.issuer_name, rubric_id=rubric.id,
        rubric_version=rubric.version, course=rubric.course[:100], capstone=rubric.title[:100],
        description=_capstone_description(rubric), pass_mark=float(rubric.pass_mark), max_total=100,
        criteria=tuple(CriterionResult(c.id, c.title[:100], None, 0.0, 0.0,
                                       tuple(LevelDescription(level.level, level.points, level.descriptor[:200])
                                             for level in c.levels)) for c in rubric.criteria),
        modules=course_modules(session, course=rubric.id), skills=_alignments(rubric),
        image_url=settings.badge_url(rubric.id))


def _capstone_description(rubric) -> str:
    text = " ".join(rubric.description.split())
    if not text:
        return f"The {rubric.title} capstone of {rubric.course}, assessed against a rubric and approved by a mentor."
    return text if len(text) <= 1000 else text[:999].rsplit(" ", 1)[0] + "…"


def _alignments(rubric) -> tuple[Alignment, ...]:
    return tuple(Alignment(skill.name, skill.url, skill.framework, skill.code) for skill in rubric.skills)


# ------------------------------------------------------------------------------------------------------- keys

def _secure_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)


def _add_key(session: Session, *, path: Path, settings: IssuerSettings, active: bool,
             activates_at: datetime | None) -> SigningKey:
    private = load_private_key(path)
    kid = thumbprint(private.public_key())
    existing = session.exec(select(SigningKey).where(SigningKey.kid == kid)).first()
    if existing is not None:
        return existing
    row = SigningKey(kid=kid, key_url=key_url(settings.issuer_id, kid), algorithm=algorithm_of(private),
                     public_jwk=json.dumps(public_jwk(private.public_key(), kid)), private_key_path=str(path),
                     active=active, activates_at=activates_at)
    session.add(row)
    session.flush()
    return row


def published_kid(row: SigningKey, settings: IssuerSettings) -> str:
    """The key's URL in JWT headers and the JWKS: the one fixed when it was made (or first used)."""
    return row.key_url or kid_url(settings.issuer_id, row.kid)


def _new_key(session: Session, *, settings: IssuerSettings, active: bool,
             activates_at: datetime | None) -> SigningKey:
    """A P-256 key made in memory and stored sealed: any machine with the key-encryption key can sign with it."""
    private = ec.generate_private_key(ec.SECP256R1())
    kid = thumbprint(private.public_key())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    row = SigningKey(kid=kid, key_url=key_url(settings.issuer_id, kid), algorithm=ES256,
                     public_jwk=json.dumps(public_jwk(private.public_key(), kid)), private_key_path="",
                     private_key_sealed=seal(pem, kek=sealing_key(settings), kid=kid), active=active,
                     activates_at=activates_at)
    session.add(row)
    session.flush()
    return row


class SigningUnavailable(IssuingError):
    """This machine cannot sign (no key-encryption key, another one, an unreadable key file): the service's problem,
    never the learner's, so it is told to the admins and the certificate waits."""


CERTIFICATE_BLOCKED = "certificate_blocked"
# A status list may be cached for STATUS_LIST_TTL_MS and is worth nothing after STATUS_LIST_VALIDITY.
STATUS_LIST_TTL_MS = 5 * 60 * 1000
STATUS_LIST_VALIDITY = timedelta(days=1)  # the event that says an approved attempt's certificate waits


def sealing_key(settings: IssuerSettings) -> bytes:
    """The key-encryption key that seals this issuer's private keys in the database."""
    if settings.kek is None:
        raise SigningUnavailable("no key-encryption key is configured "
                                 "(ASSESSOR_KEY_ENCRYPTION_KEY or ASSESSOR_SECRET_KEY)")
    return settings.kek


def private_key_of(row: SigningKey, settings: IssuerSettings):
    """The key's private half: unsealed from the database, or read from the operator's key file."""
    try:
        if row.private_key_path.startswith("pkcs11:"):
            if settings.hsm is None or settings.hsm.uri != row.private_key_path:
                raise SigningUnavailable(f"the key {row.kid} is in an HSM ({row.private_key_path}) this machine is "
                                         f"not configured for: set ASSESSOR_PKCS11_MODULE, _TOKEN, _KEY_LABEL, _PIN")
            return HsmPrivateKey(settings.hsm)
        if row.private_key_sealed:
            return load_pem_private_key(unseal(row.private_key_sealed, kek=sealing_key(settings), kid=row.kid),
                                        password=None)
        if row.private_key_path:
            return load_private_key(row.private_key_path)
    except CertificateError as error:
        raise SigningUnavailable(str(error)) from None
    raise SigningUnavailable(f"the private key of {row.kid} was destroyed")


def blocked_certificates(session: Session) -> list[tuple[int, str]]:
    """(attempt id, why) for approved attempts whose certificate could not be signed and is still missing."""
    from assessor.domain.models import Event

    events = session.exec(select(Event).where(Event.kind == CERTIFICATE_BLOCKED).order_by(Event.id.desc())).all()
    latest: dict[int, str] = {}
    for event in events:
        latest.setdefault(event.attempt_id, event.detail)
    return [(attempt_id, why) for attempt_id, why in sorted(latest.items())
            if certificate_for_attempt(session, attempt_id=attempt_id) is None]


def _hsm_key(settings: IssuerSettings) -> HsmPrivateKey:
    key = HsmPrivateKey(settings.hsm)
    try:
        key.public_key()  # the token opens and holds a P-256 key under that label
    except CertificateError as error:
        raise SigningUnavailable(str(error)) from None
    return key


def _operator_key(session: Session, *, private, where: str, settings: IssuerSettings, now: datetime) -> SigningKey:
    """The operator's own key (in an HSM): recorded by its public half and where it is, made the active key."""
    kid = thumbprint(private.public_key())
    row = session.exec(select(SigningKey).where(SigningKey.kid == kid)).first()
    if row is None:
        row = SigningKey(kid=kid, key_url=key_url(settings.issuer_id, kid), algorithm=ES256,
                         public_jwk=json.dumps(public_jwk(private.public_key(), kid)), private_key_path=where,
                         active=False, activates_at=now)
        session.add(row)
        session.flush()
    if row.compromised_at is not None:
        raise IssuingError(f"the key {where} was declared compromised: put a new key in the HSM")
    if not row.active:
        _make_active(session, row, settings=settings, now=now)
        session.commit()
    return row


def seal_key_files(session: Session, *, settings: IssuerSettings, now: datetime | None = None) -> list[str]:
    """Key files an earlier version wrote into keys_dir, sealed into the database and the files destroyed, so every
    machine can sign (the machine that has the files does this on its first use of a key)."""
    sealed = []
    rows = session.exec(select(SigningKey).where(SigningKey.private_key_path != "",
                                                 SigningKey.private_key_sealed == None)).all()  # noqa: E711
    for row in rows:
        path = Path(row.private_key_path)
        if settings.key_file is not None and path == settings.key_file or \
                path.parent.resolve() != settings.keys_dir.resolve() or not path.is_file():
            continue  # the operator's own file, or one this machine does not have
        private = load_private_key(path)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        row.private_key_sealed = seal(pem, kek=sealing_key(settings), kid=row.kid)
        row.private_key_path = ""
        session.add(row)
        session.commit()
        destroy_private_key(path)
        sealed.append(row.kid)
        logger.warning("signing key %s moved from %s into the database (sealed)", row.kid, path)
    return sealed


def _retire(session: Session, row: SigningKey, *, settings: IssuerSettings, now: datetime) -> None:
    """Stop signing with `row` and destroy its private key (a key the operator keeps elsewhere is only let go)."""
    row.active = False
    row.retired_at = row.retired_at or now
    if row.private_key_sealed:
        row.private_key_sealed = None
        row.destroyed_at = now
    if row.private_key_path:
        path = Path(row.private_key_path)
        if path.parent.resolve() == settings.keys_dir.resolve():
            destroy_private_key(path)
            row.destroyed_at = now
        row.private_key_path = ""
    session.add(row)


def _make_active(session: Session, row: SigningKey, *, settings: IssuerSettings, now: datetime) -> None:
    for other in session.exec(select(SigningKey).where(SigningKey.active == True)).all():  # noqa: E712
        if other.id != row.id:
            _retire(session, other, settings=settings, now=now)
    row.active, row.retired_at = True, None
    row.activates_at = min(as_utc(row.activates_at), now) if row.activates_at else now
    row.key_url = published_kid(row, settings)
    session.add(row)


def _promote_due(session: Session, *, settings: IssuerSettings, now: datetime) -> None:
    """The announced key whose time has come takes over (the one it replaces retires)."""
    waiting = session.exec(select(SigningKey).where(
        SigningKey.active == False, SigningKey.retired_at == None,  # noqa: E711,E712
        SigningKey.compromised_at == None, SigningKey.activates_at != None)  # noqa: E711
        .order_by(SigningKey.activates_at.desc())).all()
    due = [row for row in waiting if as_utc(row.activates_at) <= now]
    if due:
        _make_active(session, due[0], settings=settings, now=now)
        session.commit()


def active_key(session: Session, *, settings: IssuerSettings, now: datetime | None = None) -> SigningKey:
    """The key that signs new certificates: the operator's key file, the announced key once its time has come,
    or a P-256 key made on first use (also replacing an Ed25519 key of an earlier version)."""
    now = now or utcnow()
    if settings.hsm is not None:
        return _operator_key(session, private=_hsm_key(settings), where=settings.hsm.uri, settings=settings, now=now)
    if settings.key_file is not None:
        private = load_private_key(settings.key_file)
        if algorithm_of(private) != ES256:
            raise IssuingError(f"{settings.key_file} (ASSESSOR_SIGNING_KEY_FILE) is an Ed25519 key; Open Badges "
                               f"verifiers need ES256: make a P-256 key, e.g. `openssl genpkey -algorithm EC -pkeyopt "
                               f"ec_paramgen_curve:P-256 -out issuer.pem`")
        row = session.exec(select(SigningKey).where(SigningKey.kid == thumbprint(private.public_key()))).first()
        if row is None:
            row = _add_key(session, path=settings.key_file, settings=settings, active=False, activates_at=now)
        if row.compromised_at is not None:
            raise IssuingError(f"the key in {settings.key_file} was declared compromised: replace the file")
        if not row.active:
            _make_active(session, row, settings=settings, now=now)
            session.commit()
        return row
    seal_key_files(session, settings=settings)
    _promote_due(session, settings=settings, now=now)
    row = session.exec(select(SigningKey).where(SigningKey.active == True)).first()  # noqa: E712
    if row is not None and row.algorithm == ES256 and (row.private_key_sealed or row.private_key_path):
        if row.key_url is None:
            row.key_url = published_kid(row, settings)
            session.add(row)
            session.commit()
        return row
    # No key yet, or an Ed25519 key from before ES256 (what it signed keeps verifying: its public half stays).
    row = _new_key(session, settings=settings, active=False, activates_at=now)
    _make_active(session, row, settings=settings, now=now)
    session.commit()
    return row


def rotate_key(session: Session, *, settings: IssuerSettings, now: datetime | None = None,
               immediately: bool = False) -> SigningKey:
    """A new key, published at once and signing from ROTATION_NOTICE later (verifiers' cached key sets hold it
    by then); `immediately` for an emergency. The old key then retires and its private key is destroyed, while
    its public half stays published, so what it signed still verifies."""
    now = now or utcnow()
    if settings.key_file is not None:
        raise IssuingError("the signing key is given by ASSESSOR_SIGNING_KEY_FILE: rotate it by changing that file")
    if settings.hsm is not None:
        raise IssuingError("the signing key is in the HSM (ASSESSOR_PKCS11_*): rotate it there, then change "
                           "ASSESSOR_PKCS11_KEY_LABEL")
    _promote_due(session, settings=settings, now=now)
    pending = session.exec(select(SigningKey).where(
        SigningKey.active == False, SigningKey.retired_at == None,  # noqa: E711,E712
        SigningKey.compromised_at == None, SigningKey.activates_at != None)).first()  # noqa: E711
    if pending is not None and not immediately:
        raise IssuingError(f"a rotation is already under way: key {pending.kid} signs from "
                           f"{as_utc(pending.activates_at):%Y-%m-%d %H:%M} UTC")
    if pending is not None:
        row = pending
    else:
        row = _new_key(session, settings=settings, active=False, activates_at=now + ROTATION_NOTICE)
    if immediately:
        _make_active(session, row, settings=settings, now=now)
    session.commit()
    return row


def find_key(session: Session, *, kid: str) -> SigningKey | None:
    """A key by its thumbprint or its published URL."""
    if not isinstance(kid, str) or len(kid) > 1000:
        return None
    return session.exec(select(SigningKey).where((SigningKey.kid == kid) | (SigningKey.key_url == kid))).first()


def compromise_key(session: Session, *, settings: IssuerSettings, kid: str, since: datetime, reason: str,
                   admin: User | None = None, now: datetime | None = None) -> tuple[SigningKey, list[Certificate]]:
    """Declare a key compromised from `since`: every credential it signed from then on is refused by every
    verifier that reads our key set (ours compares with what was issued as well), the certificates we issued
    with it since then are revoked with the reason, its private key is destroyed, and if it was signing, a new
    key takes over at once."""
    from assessor.domain.submissions import record_event

    now = now or utcnow()
    reason = _reason(reason, missing="give the reason (how the key was exposed)")
    row = find_key(session, kid=kid)
    if row is None:
        raise IssuingError(f"no key {kid}")
    since = as_utc(since)
    if since > now:
        raise IssuingError("the compromise date cannot be in the future")
    was_signing = row.active or (row.retired_at is None and row.activates_at is not None)
    row.compromised_at = min(since, as_utc(row.compromised_at)) if row.compromised_at else since
    row.compromise_reason = reason
    _retire(session, row, settings=settings, now=now)
    affected = session.exec(select(Certificate).where(Certificate.kid == row.kid,
                                                      Certificate.issued_at >= row.compromised_at,
                                                      Certificate.revoked_at == None)).all()  # noqa: E711
    detail = f"signing key compromised since {row.compromised_at:%Y-%m-%d %H:%M} UTC: {reason}"
    for certificate in affected:
        certificate.revoked_at, certificate.revoked_reason = now, detail[:MAX_REASON]
        certificate.revoked_by = admin.id if admin is not None else None
        session.add(certificate)
        record_event(session, attempt_id=certificate.attempt_id, actor=admin, kind="revoked",
                     detail=f"certificate {certificate.public_id}: {detail}"[:1000])
    session.commit()
    if was_signing and settings.key_file is None:
        replacement = _new_key(session, settings=settings, active=False, activates_at=now)
        _make_active(session, replacement, settings=settings, now=now)
        session.commit()
    logger.warning("key %s declared compromised since %s; %s certificates revoked", row.kid, row.compromised_at,
                   len(affected))
    return row, list(affected)


def list_keys(session: Session) -> list[SigningKey]:
    return list(session.exec(select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.id.desc())).all())


def key_state(row: SigningKey, *, now: datetime | None = None) -> str:
    now = now or utcnow()
    if row.compromised_at is not None:
        return "compromised"
    if row.active:
        return "active"
    if row.retired_at is not None:
        return "retired"
    if row.activates_at is not None and as_utc(row.activates_at) > now:
        return "next"
    return "published"


def _records(session: Session, settings: IssuerSettings) -> list[KeyRecord]:
    return [KeyRecord(kid=published_kid(row, settings), public_key=public_key_from_jwk(json.loads(row.public_jwk)),
                      created=as_utc(row.created_at), retired_at=as_utc(row.retired_at),
                      compromised_at=as_utc(row.compromised_at), compromise_reason=row.compromise_reason)
            for row in list_keys(session)]


def jwks(session: Session, *, settings: IssuerSettings) -> dict:
    """Every key (next, active, retired, compromised), with the retired and compromised ones listed beside
    ``keys`` (JWKS has no standard member for either)."""
    records = _records(session, settings)
    document = build_jwks(records)
    document.update(key_states(records))
    return document


def key_document(session: Session, *, settings: IssuerSettings, thumb: str) -> dict | None:
    """The JWK a key's URL dereferences to."""
    row = session.exec(select(SigningKey).where(SigningKey.kid == thumb)).first() if len(thumb) <= 64 else None
    if row is None:
        return None
    return public_jwk(public_key_from_jwk(json.loads(row.public_jwk)), published_kid(row, settings))


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
    return CertificateStatus(row[0], row[1], as_utc(row[2]), as_utc(row[3]), row[4])


def _free_index(session: Session) -> int:
    """A random free slot: neighbouring indexes then say nothing about who was certified when."""
    for _ in range(64):
        index = secrets.randbelow(STATUS_LIST_SIZE)
        taken = session.exec(select(Certificate.id).where(Certificate.status_list == STATUS_LIST_ID,
                                                          Certificate.status_index == index)).first()
        if taken is None:
            return index
    raise IssuingError("the status list is full")


def module_lines(session: Session, *, email: str, course: str) -> tuple[ModuleLine, ...]:
    """The course modules recorded for this address and course, in the order they were completed."""
    rows = session.exec(select(ModuleResult).where(ModuleResult.email == email.strip().lower(),
                                                   ModuleResult.course == course)
                        .order_by(ModuleResult.completed_on, ModuleResult.module)).all()
    return tuple(ModuleLine(row.module, row.title, row.score, row.max_score, row.completed_on) for row in rows)


def _subject_id(session: Session, *, settings: IssuerSettings, user_id: int) -> str:
    """The learner's subject id as their first certificate fixed it, so a move does not split one learner in two."""
    first = session.exec(select(Certificate.token).where(Certificate.user_id == user_id)
                         .order_by(Certificate.issued_at, Certificate.id)).first()
    if first:
        try:
            segment = first.split(".")[1]
            subject = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))).get("sub")
        except (IndexError, ValueError, AttributeError):
            subject = None
        if isinstance(subject, str) and subject.startswith("urn:uuid:"):
            return subject
    return subject_id_for(settings.issuer_id, f"user-{user_id}")


def certificate_data(session: Session, *, attempt: Attempt, settings: IssuerSettings, public_id: str,
                     status_index: int, issued_at: datetime) -> CertificateData:
    from assessor.domain.reviews import final_score, get_review, review_levels
    from assessor.domain.submissions import attempt_rubric, load_report

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
    levels_of = {criterion.id: criterion.levels for criterion in rubric.criteria}
    criteria = tuple(
        CriterionResult(score.id, score.title[:100], score.level, float(score.points or 0), float(score.max_points),
                        tuple(LevelDescription(level.level, level.points, level.descriptor[:200])
                              for level in levels_of.get(score.id, ())))
        for score in result.criteria
    )
    assessed_at = as_utc(stored.created_at)
    try:
        assessed_at = as_utc(report.assessed_at)
    except (TypeError, ValueError):
        pass
    salt = secrets.token_hex(16)
    return CertificateData(
        certificate_id=uuid.UUID(public_id),
        subject_id=_subject_id(session, settings=settings, user_id=attempt.user_id),
        learner_name=learner_name,
        course=rubric.course[:100],
        capstone=rubric.title[:100],
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        rubric_sha256=rubric.sha256,
        criteria=criteria,
        total=round(result.score.percent, 1),
        max_total=100,
        pass_mark=float(rubric.pass_mark),
        # Only a real public repository is named: a local or ssh source would be a meaningless link.
        repo_url=attempt.source_url if attempt.source_url.startswith("https://") else None,
        commit=(attempt.commit or report.commit).lower(),
        report_sha256=hashlib.sha256(stored.document.encode("utf-8")).hexdigest(),
        mentor_name=mentor_name,
        assessed_at=assessed_at,
        approved_at=as_utc(review.decided_at or issued_at),
        issued_at=issued_at,
        verify_url=settings.verify_url(public_id),
        status_list_url=settings.status_list_url(),
        status_list_index=status_index,
        issuer_id=settings.issuer_id,
        issuer_name=settings.issuer_name,
        issuer_url=settings.public_url + "/",
        extension_context_url=settings.context_url,
        image_url=settings.badge_url(rubric.id),
        identity_hash=identity_hash_for(learner.email, salt) if learner else None,
        identity_salt=salt if learner else None,
        modules=module_lines(session, email=learner.email, course=rubric.id) if learner else (),
        skills=_alignments(rubric),
        achievement_description=_capstone_description(rubric),
    )


def _seal_chain(settings: IssuerSettings):
    if settings.seal_chain_file is None:
        return ()
    try:
        return load_seal_chain(settings.seal_chain_file.read_bytes())
    except OSError as error:
        raise IssuingError(f"cannot read the seal certificate {settings.seal_chain_file} "
                           f"(ASSESSOR_SEAL_CERTIFICATE_FILE): {error.strerror}") from None
    except CertificateError as error:
        raise IssuingError(f"{settings.seal_chain_file} (ASSESSOR_SEAL_CERTIFICATE_FILE): {error}") from None


def issue_certificate(session: Session, *, attempt_id: int, settings: IssuerSettings) -> Certificate:
    """The attempt's certificate, issued now if it has none (idempotent, also under races)."""
    from assessor.domain.submissions import record_event

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
    private = private_key_of(key, settings)
    kid = published_kid(key, settings)
    chain = _seal_chain(settings)
    for _ in range(3):
        public_id = str(uuid.uuid4())
        index = _free_index(session)
        issued_at = utcnow().replace(microsecond=0)
        data = certificate_data(session, attempt=attempt, settings=settings, public_id=public_id,
                                status_index=index, issued_at=issued_at)
        try:
            _credential, token = issue(data, private, kid)
            pdf = seal_pdf(render_certificate_pdf(data, token), private, issuer_name=settings.issuer_name, kid=kid,
                           chain=chain)
        except CertificateError as error:  # e.g. ASSESSOR_PUBLIC_URL is not https: retrying will not help
            raise IssuingError(f"cannot issue the certificate of attempt {attempt_id}: {error}") from error
        certificate = Certificate(public_id=public_id, attempt_id=attempt.id, user_id=attempt.user_id, kid=key.kid,
                                  issuer_id=settings.issuer_id, token=token, pdf=pdf, status_list=STATUS_LIST_ID,
                                  status_index=index, issued_at=issued_at)
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


def _reason(text: str | None, *, missing: str) -> str:
    """A revocation's reason, as shown to verifiers: required and bounded."""
    reason = (text or "").strip()
    if not reason:
        raise IssuingError(missing)
    if len(reason) > MAX_REASON:
        raise IssuingError(f"keep the reason under {MAX_REASON} characters")
    return reason


def revoke(session: Session, *, certificate_id: str, admin: User | None, reason: str,
           base_url: str | None = None) -> Certificate:
    """Revoke with a reason; revoking again keeps the first revocation. With `base_url` (the service's public
    address) the learner is mailed, in the same transaction."""
    from assessor.domain import notifications
    from assessor.domain.submissions import record_event

    reason = _reason(reason, missing="give a reason for the revocation")
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
    learner, attempt = session.get(User, certificate.user_id), session.get(Attempt, certificate.attempt_id)
    if base_url is not None and learner is not None and attempt is not None:
        notifications.certificate_revoked(session, user=learner, course=attempt.course, reason=reason,
                                          attempt_id=certificate.attempt_id, base_url=base_url)
    session.commit()
    return certificate


def list_certificates(session: Session, *, limit: int = 200) -> list[Certificate]:
    return list(session.exec(select(Certificate).order_by(Certificate.id.desc()).limit(limit)).all())


NOT_ISSUED, REVOKED = "not_issued", "revoked"


@dataclass(frozen=True)
class RecordCheck:
    """What our records say of a credential whose signature verified."""

    status: str  # valid, revoked, not_issued or tampered
    reason: str
    certificate: Certificate | None


def check_record(session: Session, *, credential: dict, token: str) -> RecordCheck:
    """A signature is not enough: the token must be exactly one we issued (a leaked key signs anything) and the
    certificate must not be revoked."""
    public_id = str(credential.get("id", "")).removeprefix("urn:uuid:")
    certificate = get_certificate(session, public_id=public_id)
    if certificate is None:
        return RecordCheck(NOT_ISSUED, "we never issued a certificate with this id", None)
    if not hmac.compare_digest(certificate.token.encode(), token.strip().encode()):
        return RecordCheck("tampered", "signed with our key, but not the certificate we issued under this id",
                           None)
    if certificate.revoked_at is not None:
        return RecordCheck(REVOKED, f"revoked: {certificate.revoked_reason}", certificate)
    return RecordCheck("valid", "this is the certificate we issued, and it is not revoked", certificate)


# -------------------------------------------------------------------------------------------------- status list

def encode_bitstring(indexes: list[int], size: int = STATUS_LIST_SIZE) -> str:
    return status.encode_bitstring(indexes, size)


def decode_bitstring(encoded: str) -> bytes:
    try:
        return status.decode_bitstring(encoded)
    except CertificateError as error:
        raise IssuingError(str(error)) from None


bit_is_set = status.bit_is_set


def status_list_credential(session: Session, *, settings: IssuerSettings, number: int = STATUS_LIST_ID,
                           now: datetime | None = None) -> tuple[dict, str]:
    """The W3C BitstringStatusListCredential for revocation, and the same signed as a JWT."""
    revoked = session.exec(select(Certificate.status_index).where(Certificate.status_list == number,
                                                                  Certificate.revoked_at.is_not(None))).all()
    url = settings.status_list_url(number)
    now = now or utcnow()
    until = now + STATUS_LIST_VALIDITY
    credential = {
        "@context": [CONTEXTS[0]],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": settings.issuer_id,
        "validFrom": iso_utc(now),
        # Freshness: a saved list older than this says nothing about a revocation since.
        "validUntil": iso_utc(until),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_bitstring(list(revoked)),
            "ttl": STATUS_LIST_TTL_MS,
        },
    }
    key = active_key(session, settings=settings)
    claims = {**credential, "iss": settings.issuer_id, "jti": url, "nbf": int(now.timestamp()),
              "exp": int(until.timestamp())}
    token = sign_claims(claims, private_key_of(key, settings), published_kid(key, settings))
    return credential, token


__all__ = [
    "IssuerSettings", "IssuingError", "active_key", "check_record", "compromise_key", "certificate_for_attempt", "get_certificate", "issue_certificate",
    "jwks", "list_certificates", "list_keys", "revoke", "rotate_key", "settings_from_config", "status_list_credential",
]
