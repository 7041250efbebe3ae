"""LTI 1.3 (Advantage) with PyLTI1p3: the platforms an operator registers, the tool's own key, launch data kept in
the database, accounts from launches (by the platform's user id, then its e-mail), roles from LTI roles, and the
scores sent back through Assignment and Grade Services after a mentor's decision."""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding, NoEncryption, PrivateFormat, PublicFormat, load_pem_public_key,
)
from pylti1p3.deployment import Deployment
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from assessor.domain import accounts
from assessor.certificates.keys import b64url
from assessor.certificates.sealing import seal, unseal
from assessor.domain.db import as_utc, utcnow
from assessor.errors import AssessorError
from assessor.domain.models import (
    Attempt, LtiAccount, LtiGradeSend, LtiGradeTarget, LtiLaunchValue, LtiPlatform, LtiToolKey, User,
)

logger = logging.getLogger("assessor.lti")

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
MENTOR_ROLES = ("membership#Instructor", "membership#TeachingAssistant", "membership/Instructor#",
                "membership#ContentDeveloper", "membership#Mentor")
LEARNER_ROLE = "membership#Learner"
MAX_GRADE_TRIES = 8
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


class LtiError(AssessorError):
    """A registration is refused, or a launch cannot sign anyone in (with what to tell them)."""


# ------------------------------------------------------------------------------------------------ platforms

def _check_url(value: str, name: str) -> str:
    value = (value or "").strip()
    if not _URL.match(value) or len(value) > 1000:
        raise LtiError(f"{name} must be an http(s) address")
    return value


def register_platform(session: Session, *, name: str, issuer: str, client_id: str, auth_login_url: str,
                      auth_token_url: str, key_set_url: str, deployment_ids: list[str]) -> LtiPlatform:
    """A platform as its administrator gives it (issuer, client id, deployments, its endpoints)."""
    issuer = (issuer or "").strip()
    client_id = (client_id or "").strip()
    if not issuer or len(issuer) > 500 or any(c.isspace() for c in issuer):
        raise LtiError("the issuer is the platform's address as its launches name it (no spaces)")
    if not client_id or len(client_id) > 255:
        raise LtiError("the client id is the one the platform gave this tool")
    deployments = [d.strip() for d in deployment_ids if d and d.strip()]
    if not deployments or any(len(d) > 255 for d in deployments):
        raise LtiError("give at least one deployment id")
    platform = LtiPlatform(name=(name or issuer).strip()[:120], issuer=issuer, client_id=client_id,
                           auth_login_url=_check_url(auth_login_url, "the authentication (login) URL"),
                           auth_token_url=_check_url(auth_token_url, "the access token URL"),
                           key_set_url=_check_url(key_set_url, "the platform's key set URL"),
                           deployment_ids=json.dumps(deployments), created_at=utcnow())
    session.add(platform)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise LtiError("that issuer and client id are registered already") from None
    return platform


def platforms(session: Session) -> list[LtiPlatform]:
    return list(session.exec(select(LtiPlatform).order_by(LtiPlatform.name, LtiPlatform.id)))


def remove_platform(session: Session, *, platform_id: int) -> None:
    platform = session.get(LtiPlatform, platform_id)
    if platform is None:
        raise LtiError("no such platform")
    for model in (LtiAccount,):
        for row in session.exec(select(model).where(model.platform_id == platform.id)).all():
            session.delete(row)
    session.delete(platform)
    session.commit()


# ------------------------------------------------------------------------------------------------ tool key

def tool_key(session: Session, *, kek: bytes) -> tuple[LtiToolKey, str]:
    """The tool's RSA key (made on first use): its row and its private key as PEM text (what PyLTI1p3 takes)."""
    row = session.exec(select(LtiToolKey).order_by(LtiToolKey.id.desc())).first()
    if row is None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        kid = "lti-" + secrets.token_hex(8)
        row = LtiToolKey(kid=kid, public_pem=public_pem, private_sealed=seal(pem, kek=kek, kid=kid),
                         created_at=utcnow())
        session.add(row)
        session.commit()
    return row, unseal(row.private_sealed, kek=kek, kid=row.kid).decode()


def tool_jwks(session: Session, *, kek: bytes) -> dict:
    tool_key(session, kek=kek)  # made on first use, so the key set is never empty
    keys = []
    for row in session.exec(select(LtiToolKey).order_by(LtiToolKey.id)).all():
        numbers = load_pem_public_key(row.public_pem.encode()).public_numbers()
        keys.append({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": row.kid,
                     "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                     "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))})
    return {"keys": keys}


# ------------------------------------------------------------------------------------------------ PyLTI1p3 glue

class ToolConf(ToolConfAbstract):
    """PyLTI1p3's tool configuration, read from the registered platforms (many client ids per issuer)."""

    def __init__(self, session: Session, *, kek: bytes):
        super().__init__()
        self.session = session
        self.kek = kek

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def _platform(self, iss: str, client_id: str | None) -> LtiPlatform | None:
        query = select(LtiPlatform).where(LtiPlatform.issuer == iss)
        if client_id:
            query = query.where(LtiPlatform.client_id == client_id)
        return self.session.exec(query).first()

    def _registration(self, platform: LtiPlatform | None) -> Registration | None:
        if platform is None:
            return None
        row, private_pem = tool_key(self.session, kek=self.kek)
        return (Registration().set_issuer(platform.issuer).set_client_id(platform.client_id)
                .set_auth_login_url(platform.auth_login_url).set_auth_token_url(platform.auth_token_url)
                .set_key_set_url(platform.key_set_url).set_tool_private_key(private_pem)
                .set_tool_public_key(row.public_pem))

    def find_registration_by_issuer(self, iss, *args, **kwargs):
        return self._registration(self._platform(iss, None))

    def find_registration_by_params(self, iss, client_id, *args, **kwargs):
        return self._registration(self._platform(iss, client_id))

    def find_deployment(self, iss, deployment_id):
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        platform = self._platform(iss, client_id)
        if platform is None or deployment_id not in json.loads(platform.deployment_ids):
            return None
        return Deployment().set_deployment_id(deployment_id)


class DatabaseLaunchStorage(LaunchDataStorage):
    """State, nonces and launch claims in the database, so a launch posted from the LMS's site (where the browser
    sends no session cookie) still finds them. Nonces are single-use."""

    _session_cookie_name = ""  # no session-id cookie: state and nonce are random and stored by themselves
    LIFETIME = 3600

    def __init__(self, session: Session):
        super().__init__()
        self.session = session

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str):
        row = self.session.get(LtiLaunchValue, self._prepare_key(key)[:255])
        if row is None or as_utc(row.expires_at) < utcnow():
            return None
        return json.loads(row.value)

    def set_value(self, key: str, value, exp: int | None = None) -> None:
        key = self._prepare_key(key)[:255]
        row = self.session.get(LtiLaunchValue, key) or LtiLaunchValue(key=key, value="", expires_at=utcnow())
        row.value = json.dumps(value)
        row.expires_at = utcnow() + timedelta(seconds=min(exp or self.LIFETIME, 86400))
        self.session.add(row)
        self.session.commit()

    def check_value(self, key: str) -> bool:
        """A nonce is good once: checking it spends it (a replayed launch is refused)."""
        row = self.session.get(LtiLaunchValue, self._prepare_key(key)[:255])
        if row is None or as_utc(row.expires_at) < utcnow():
            return False
        self.session.delete(row)
        self.session.commit()
        return True




def forget_expired_launch_values(session: Session) -> int:
    rows = session.exec(select(LtiLaunchValue).where(LtiLaunchValue.expires_at < utcnow())).all()
    for row in rows:
        session.delete(row)
    session.commit()
    return len(rows)


# ------------------------------------------------------------------------------------------------ launches

@dataclass(frozen=True)
class Launch:
    """What a verified launch says, in the product's terms."""

    platform: LtiPlatform
    subject: str
    email: str | None
    name: str
    role: str  # learner | mentor
    rubric_id: str | None
    deep_linking: bool
    lineitem_url: str | None
    scopes: tuple[str, ...]


def read_launch(session: Session, claims: dict[str, Any]) -> Launch:
    """The launch's claims (already verified by PyLTI1p3), read into a Launch."""
    platform = session.exec(select(LtiPlatform).where(LtiPlatform.issuer == claims.get("iss"),
                                                      LtiPlatform.client_id == _audience(claims))).first()
    if platform is None:
        raise LtiError("this platform is not registered here")
    subject = str(claims.get("sub") or "")
    if not subject or len(subject) > 255:
        raise LtiError("the launch does not say who the user is (no sub)")
    roles = [str(role) for role in claims.get(CLAIM + "roles") or []]
    role = "mentor" if any(role.endswith(suffix) or suffix in role for role in roles for suffix in MENTOR_ROLES) \
        else "learner"
    custom = claims.get(CLAIM + "custom") or {}
    rubric_id = custom.get("rubric") if isinstance(custom, dict) else None
    message_type = claims.get(CLAIM + "message_type")
    endpoint = claims.get(AGS_CLAIM) if isinstance(claims.get(AGS_CLAIM), dict) else {}
    return Launch(platform=platform, subject=subject, email=(claims.get("email") or None),
                  name=str(claims.get("name") or claims.get("given_name") or "")[:120], role=role,
                  rubric_id=str(rubric_id)[:64] if rubric_id else None,
                  deep_linking=message_type == "LtiDeepLinkingRequest",
                  lineitem_url=endpoint.get("lineitem") if isinstance(endpoint.get("lineitem"), str) else None,
                  scopes=tuple(str(scope) for scope in endpoint.get("scope") or ()))


def _audience(claims: dict) -> str | None:
    audience = claims.get("aud")
    return audience[0] if isinstance(audience, list) and audience else audience


def account_for(session: Session, launch: Launch) -> User:
    """The account this platform user signs in as: linked by the platform's user id; else the account with the
    e-mail the platform sends (never an administrator's); else a new one. Roles follow LTI's (never admin)."""
    linked = session.exec(select(LtiAccount).where(LtiAccount.platform_id == launch.platform.id,
                                                   LtiAccount.subject == launch.subject)).first()
    user = session.get(User, linked.user_id) if linked else None
    if user is None and launch.email:
        found = accounts.find_user(session, email=launch.email)
        if found is not None and not found.is_admin:
            user = found
    if user is None:
        email = launch.email or f"lti-{launch.platform.id}-{secrets.token_hex(6)}@invalid.example"
        try:
            user = accounts.create_user(session, email=email, password=secrets.token_urlsafe(24),
                                        role=launch.role, name=launch.name)
        except accounts.AccountError as error:
            raise LtiError(f"no account can be made for this user: {error}") from None
        user.email_verified_at = utcnow()  # the platform vouches for the address it sends
    if not user.active:
        raise LtiError("this account is deactivated here")
    if launch.role == "mentor" and user.role == "learner":
        accounts.set_role(session, user=user, role="mentor")
    if linked is None:
        session.add(LtiAccount(platform_id=launch.platform.id, subject=launch.subject, user_id=user.id,
                               created_at=utcnow()))
    if launch.role == "mentor" and launch.rubric_id:
        courses = set(accounts.assigned_courses(session, user=user)) | {launch.rubric_id}
        accounts.set_courses(session, user=user, rubric_ids=sorted(courses))
    if launch.role == "learner" and launch.rubric_id and launch.lineitem_url and SCORE_SCOPE in launch.scopes:
        _grade_target(session, launch, user)
    session.commit()
    return user


def _grade_target(session: Session, launch: Launch, user: User) -> None:
    exists = session.exec(select(LtiGradeTarget).where(
        LtiGradeTarget.platform_id == launch.platform.id, LtiGradeTarget.user_id == user.id,
        LtiGradeTarget.rubric_id == launch.rubric_id, LtiGradeTarget.lineitem_url == launch.lineitem_url)).first()
    if exists is None:
        session.add(LtiGradeTarget(platform_id=launch.platform.id, user_id=user.id, rubric_id=launch.rubric_id,
                                   subject=launch.subject, lineitem_url=launch.lineitem_url[:1000],
                                   scopes=json.dumps(list(launch.scopes)), created_at=utcnow()))


# ------------------------------------------------------------------------------------------------ grades

def queue_grades(session: Session, *, attempt: Attempt, score: float, comment: str = "") -> list[int]:
    """A score to send for each place in an LMS this learner's capstone is graded (after a decision or a
    regrade); the queue sends them."""
    targets = session.exec(select(LtiGradeTarget).where(LtiGradeTarget.user_id == attempt.user_id,
                                                        LtiGradeTarget.rubric_id == attempt.rubric_id)).all()
    sends = []
    for target in targets:
        send = LtiGradeSend(target_id=target.id, attempt_id=attempt.id, score=round(float(score), 2),
                            comment=comment[:1000], created_at=utcnow())
        session.add(send)
        session.flush()
        sends.append(send.id)
    return sends


def pending_grades(session: Session) -> list[LtiGradeSend]:
    return list(session.exec(select(LtiGradeSend).where(LtiGradeSend.status == "pending")
                             .order_by(LtiGradeSend.id)))


def send_grade(session: Session, *, send_id: int, kek: bytes, requests_session=None) -> str:
    """Send one score with PyLTI1p3's Assignment and Grade Services; the outcome is kept on the row."""
    from pylti1p3.assignments_grades import AssignmentsGradesService
    from pylti1p3.exception import LtiException, LtiServiceException
    from pylti1p3.grade import Grade
    from pylti1p3.service_connector import ServiceConnector

    send = session.get(LtiGradeSend, send_id)
    if send is None or send.status != "pending":
        return "skipped"
    target = session.get(LtiGradeTarget, send.target_id)
    platform = session.get(LtiPlatform, target.platform_id)
    registration = ToolConf(session, kek=kek).find_registration_by_params(platform.issuer, platform.client_id)
    attempt = session.get(Attempt, send.attempt_id)
    grade = (Grade().set_score_given(send.score).set_score_maximum(send.maximum)
             .set_timestamp(utcnow().isoformat().replace("+00:00", "Z")).set_activity_progress("Completed")
             .set_grading_progress("FullyGraded").set_user_id(target.subject)
             .set_comment(send.comment or f"Capstone attempt {attempt.number if attempt else ''}".strip()))
    send.tries += 1
    try:
        connector = ServiceConnector(registration, requests_session=requests_session)
        AssignmentsGradesService(connector, {"scope": json.loads(target.scopes),
                                             "lineitem": target.lineitem_url}).put_grade(grade)
    except (LtiException, LtiServiceException, OSError, ValueError) as error:
        send.last_error = f"{type(error).__name__}: {str(error)[:400]}"
        if send.tries >= MAX_GRADE_TRIES:
            send.status = "failed"
        session.add(send)
        session.commit()
        logger.warning("grade %s for attempt %s not delivered (try %s): %s", send.id, send.attempt_id, send.tries,
                       send.last_error)
        return "retry" if send.status == "pending" else "failed"
    send.status, send.sent_at, send.last_error = "sent", utcnow(), None
    session.add(send)
    session.commit()
    return "sent"


def grade_deliveries(session: Session, *, limit: int = 200) -> list[tuple[LtiGradeSend, LtiGradeTarget, LtiPlatform]]:
    rows = session.exec(select(LtiGradeSend, LtiGradeTarget, LtiPlatform)
                        .join(LtiGradeTarget, LtiGradeTarget.id == LtiGradeSend.target_id)
                        .join(LtiPlatform, LtiPlatform.id == LtiGradeTarget.platform_id)
                        .order_by(LtiGradeSend.id.desc()).limit(limit)).all()
    return list(rows)
