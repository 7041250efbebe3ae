"""Keys for the machine APIs (a course platform pushing module results): made by an admin, shown once, stored as
their SHA-256 only, revocable."""

import hashlib
import hmac
import secrets

from sqlmodel import Session, select

from assessor.db import utcnow
from assessor.errors import AssessorError
from assessor.models import ApiToken

PREFIX = "cak_"  # recognisable in a leaked-secrets scan


class ApiTokenError(AssessorError):
    """An API key could not be made or revoked."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(session: Session, *, name: str) -> tuple[ApiToken, str]:
    """A new key named for what uses it; the raw key is returned once and never stored."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApiTokenError("name the key after what will use it (1-100 characters)")
    raw = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=_hash(raw))
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
