"""Users, roles, passwords (Argon2id), sign-in with a failure limit, and mentors' course assignments."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from assessor.db import utcnow
from assessor.errors import AssessorError
from assessor.models import ROLES, CourseAssignment, LoginFailure, User

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254
# Deliberately simple: one @, no spaces, a dot in the domain. Delivery is what really validates an address.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters
# Verified against when the e-mail is unknown, so a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


class AccountError(AssessorError):
    """A sign-up, sign-in or account change that cannot be done, with a message for the person."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class LoginThrottled(AccountError):
    pass


@dataclass(frozen=True)
class LoginLimits:
    max_failures: int = 5              # per e-mail and IP address within the window
    max_failures_per_ip: int = 50      # any e-mail, from one IP address within the window
    window: timedelta = timedelta(minutes=15)


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def check_email(email: str) -> str:
    email = normalise_email(email)
    if not email:
        raise AccountError("enter an e-mail address", field="email")
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise AccountError("that does not look like an e-mail address", field="email")
    return email


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"use a password of at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"use a password of at most {MAX_PASSWORD_LENGTH} characters", field="password")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def get_user(session: Session, user_id: int | str | None) -> User | None:
    try:
        return session.get(User, int(user_id)) if user_id is not None else None
    except (TypeError, ValueError):
        return None


def find_user(session: Session, *, email: str) -> User | None:
    return session.exec(select(User).where(User.email == normalise_email(email))).first()


def create_user(session: Session, *, email: str, password: str, role: str = "learner", name: str = "",
                courses: Iterable[str] = ()) -> User:
    """Create an account; raises AccountError for a bad e-mail, weak password, unknown role or taken e-mail."""
    email = check_email(email)
    check_password(password)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", field="role")
    name = (name or "").strip()[:120]
    if find_user(session, email=email) is not None:
        raise AccountError("an account with that e-mail address already exists", field="email")
    user = User(email=email, name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise AccountError("an account with that e-mail address already exists", field="email") from None
    set_courses(session, user=user, rubric_ids=courses)
    return user


def set_password(session: Session, *, user: User, password: str) -> None:
    user.password_hash = hash_password(check_password(password))
    session.add(user)


def set_role(session: Session, *, user: User, role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", field="role")
    user.role = role
    session.add(user)


def set_courses(session: Session, *, user: User, rubric_ids: Iterable[str]) -> None:
    """Replace the courses (rubric ids) a mentor is assigned to."""
    wanted = {rubric_id.strip() for rubric_id in rubric_ids if rubric_id and rubric_id.strip()}
    current = {a.rubric_id: a for a in session.exec(select(CourseAssignment).where(CourseAssignment.user_id == user.id))}
    for rubric_id, assignment in current.items():
        if rubric_id not in wanted:
            session.delete(assignment)
    for rubric_id in sorted(wanted - set(current)):
        session.add(CourseAssignment(user_id=user.id, rubric_id=rubric_id))
    session.flush()


def assigned_courses(session: Session, *, user: User) -> list[str]:
    rows = session.exec(select(CourseAssignment.rubric_id).where(CourseAssignment.user_id == user.id))
    return sorted(rows)


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.role, User.email)))


def authenticate(session: Session, *, email: str, password: str, ip: str, limits: LoginLimits = LoginLimits(),
                 now: datetime | None = None) -> User:
    """The user for these credentials. Raises LoginThrottled after too many recent failures (checked before the
    password, so guessing stops), or AccountError with one message for any wrong e-mail/password pair."""
    now = now or utcnow()
    email = normalise_email(email)[:MAX_EMAIL_LENGTH]
    ip = (ip or "unknown")[:64]
    since = now - limits.window
    recent = session.exec(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.email == email, LoginFailure.ip == ip, LoginFailure.at >= since)).one()
    from_ip = session.exec(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.ip == ip, LoginFailure.at >= since)).one()
    if recent >= limits.max_failures or from_ip >= limits.max_failures_per_ip:
        minutes = int(limits.window.total_seconds() // 60)
        raise LoginThrottled(f"too many failed sign-ins; wait {minutes} minutes and try again")
    user = find_user(session, email=email) if email else None
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password or "")
    if not ok or user is None or not user.active:
        session.add(LoginFailure(email=email, ip=ip, at=now))
        session.commit()
        raise AccountError("wrong e-mail address or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    session.exec(delete(LoginFailure).where(LoginFailure.email == email, LoginFailure.ip == ip))
    session.commit()
    return user


def forget_old_failures(session: Session, *, before: datetime) -> None:
    session.exec(delete(LoginFailure).where(LoginFailure.at < before))
