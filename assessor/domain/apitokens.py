"""Keys for the machine APIs (a course platform pushing module results): made by an admin, shown once, stored as
their SHA-256 only, revocable."""

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sqlmodel import Session, select

from assessor.domain.db import utcnow
from assessor.errors import AssessorError
from assessor.domain.models import ApiToken

PREFIX = "cak_"  # recognisable in a leaked-secrets scan


class ApiTokenError(AssessorError):
    """An API key could not be made or revoked."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(session: Session, *, name: str, courses: Iterable[str] | None,
                 known_courses: Iterable[str] = ()) -> tuple[ApiToken, str]:
    """A new key named for what uses it, for the courses (rubric ids) it may write results for (None: every
    course); the raw key is returned once and never stored."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApiTokenError("name the key after what will use it (1-100 characters)")
    scope = None
    if courses is not None:
        scope = sorted({course.strip() for course in courses if course and course.strip()})
        unknown = sorted(set(scope) - set(known_courses))
        if not scope:
            raise ApiTokenError("name the courses the key may write results for, or allow every course explicitly")
        if unknown:
            raise ApiTokenError(f"no course {', '.join(unknown)} (a course is a rubric id: "
                                f"{', '.join(sorted(known_courses))})")
    raw = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=_hash(raw), courses=",".join(scope) if scope is not None else None)
    session.add(row)
    session.commit()
    return row, raw


def authenticate(session: Session, *, header: str | None) -> ApiToken | None:
    """The live key an `Authorization: Bearer ...` header carries, or None."""
    if not header or not header.startswith("Bearer ") or len(header) > 200:
        return None
    raw = header.removeprefix("Bearer ").strip()
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == _hash(raw))).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, _hash(raw)):
        return None
    row.last_used_at = utcnow()
    session.add(row)
    return row


def revoke(session: Session, *, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise ApiTokenError(f"no API key {token_id}")
    row.revoked_at = row.revoked_at or utcnow()
    session.add(row)
    session.commit()
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(ApiToken.id)))
