"""Users, roles, passwords (Argon2id), sign-in with a failure limit, and mentors' course assignments."""

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, or_, select
from zxcvbn import zxcvbn

from assessor.domain.db import as_utc, contains, utcnow
from assessor.errors import AssessorError
from assessor.domain import ratelimit
from assessor.domain.models import ROLES, CommitEmail, CourseAssignment, EmailToken, User

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MIN_PASSWORD_SCORE = 3       # zxcvbn's 0 to 4: 3 resists an offline attack on a slow hash like Argon2
MAX_SCORED_PASSWORD = 72   # zxcvbn refuses longer input
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
    max_failures: int = 5              # per account and IP address within the window: then that pair waits
    max_failures_per_ip: int = 50      # any e-mail, from one IP address within the window
    window: timedelta = timedelta(minutes=15)
    # Past max_failures for an account from every address together, each address waits between tries, twice as
    # long after every further failure, never longer than this: its owner, with the password, always gets in.
    max_delay: timedelta = timedelta(seconds=60)


def normalise_email(email: str) -> str:
    """NFKC (full-width letters become ASCII, ligatures split), trimmed, lower case."""
    return unicodedata.normalize("NFKC", email or "").strip().lower()


def check_email(email: str) -> str:
    """A normalised address, refusing what would let one account pass for another: invisible, bidi-control,
    control and combining characters, and letters of different alphabets mixed in one part of the address."""
    email = normalise_email(email)
    if not email:
        raise AccountError("enter an e-mail address", field="email")
    if any(_invisible(character) for character in email):
        raise AccountError("the e-mail address contains invisible or control characters; type it again",
                           field="email")
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise AccountError("that does not look like an e-mail address", field="email")
    local, _, domain = email.partition("@")
    for part in (local, *domain.split(".")):
        if len(_scripts(part)) > 1:
            raise AccountError("the e-mail address mixes letters of different alphabets (such as Latin and "
                               "Cyrillic); type it again", field="email")
    return email


def _invisible(character: str) -> bool:
    category = unicodedata.category(character)
    return category[0] in ("C", "M", "Z")  # control, format (bidi, zero-width), marks, any space


def _scripts(text: str) -> set[str]:
    """The alphabets the letters of `text` come from (LATIN, CYRILLIC, GREEK...), from their Unicode names."""
    return {unicodedata.name(character, "UNKNOWN").split(" ")[0] for character in text if character.isalpha()}


def check_password(password: str, *, hints: Iterable[str] = ()) -> str:
    """The password, when it is long enough and not easy to guess (zxcvbn: common and breached passwords,
    keyboard patterns, repeats, dates, and the person's own address and name in `hints`)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"use a password of at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"use a password of at most {MAX_PASSWORD_LENGTH} characters", field="password")
    # zxcvbn's time grows fast with length; the first characters tell a guessable password already.
    strength = zxcvbn(password[:MAX_SCORED_PASSWORD], user_inputs=[hint for hint in hints if hint][:12])
    if strength["score"] < MIN_PASSWORD_SCORE:
        warning = strength["feedback"].get("warning") or "it would be guessed quickly"
        raise AccountError(f"choose a password that is harder to guess ({warning.rstrip('.').lower()}); a few "
                           f"unrelated words work well", field="password")
    return password


def personal_words(email: str, name: str | None) -> list[str]:
    """What a guesser knows of a person: the address, its name part with and without its dots, and each word."""
    local = email.split("@")[0]
    words = re.split(r"[^a-z0-9]+", f"{local} {name or ''}".lower())
    return [email, local, re.sub(r"[^a-z0-9]", "", local.lower()), *(word for word in words if len(word) > 2)]


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


def user_for_session(session: Session, session_id: str | None) -> User | None:
    """The active user whose current session token `session_id` ("<id>:<token>") carries, or None."""
    user_id, _, token = (session_id or "").partition(":")
    user = get_user(session, user_id) if user_id.isdigit() and len(user_id) < 12 else None
    if user is None or not user.active or not token or not hmac.compare_digest(token, user.session_token):
        return None
    return user


def end_sessions(session: Session, *, user: User) -> None:
    """End every session of `user`, on every device: their cookies carry a token the account no longer has."""
    user.session_token = secrets.token_hex(16)
    session.add(user)


def find_user(session: Session, *, email: str) -> User | None:
    return session.exec(select(User).where(User.email == normalise_email(email))).first()


def create_user(session: Session, *, email: str, password: str, role: str = "learner", name: str = "",
                courses: Iterable[str] = ()) -> User:
    """Create an account; raises AccountError for a bad e-mail, weak password, unknown role or taken e-mail."""
    email = check_email(email)
    check_password(password, hints=personal_words(email, name))
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
    """A new password ends every session of the account (the caller signs the person in again if it was them)."""
    user.password_hash = hash_password(check_password(password, hints=personal_words(user.email, user.name)))
    end_sessions(session, user=user)


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


def list_users(session: Session, *, search: str = "", limit: int = 500) -> list[User]:
    """Accounts by role then address; `search` keeps those whose address or name contains it."""
    statement = select(User)
    words = (search or "").strip().lower()[:100]
    if words:
        statement = statement.where(or_(contains(User.email, words), contains(User.name, words)))
    return list(session.exec(statement.order_by(User.role, User.email).limit(limit)))


def authenticate(session: Session, *, email: str, password: str, ip: str, limits: LoginLimits = LoginLimits(),
                 now: datetime | None = None) -> User:
    """The user for these credentials, or AccountError with one message for any wrong e-mail/password pair.

    Every attempt is counted before the password is checked, atomically, per address and (for an account that
    exists) per account, so parallel guesses cannot slip past the limit; guesses at addresses that have no
    account never count against a real account. LoginThrottled when a limit is reached.
    """
    now = now or utcnow()
    email = normalise_email(email)[:MAX_EMAIL_LENGTH]
    ip = (ip or "unknown")[:64]
    user = find_user(session, email=email) if email else None
    ip_key = f"login:ip:{ip}"
    minutes = int(limits.window.total_seconds() // 60)
    if ratelimit.hit(session, key=ip_key, window=limits.window, now=now) > limits.max_failures_per_ip:
        raise LoginThrottled(f"too many sign-in attempts from your network; wait {minutes} minutes and try again")
    if user is not None:
        _throttle_account(session, user=user, ip=ip, limits=limits, now=now)
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password or "")
    if not ok or user is None or not user.active:
        raise AccountError("wrong e-mail address or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    for key in (f"login:pair:{user.id}:{ip}", f"login:pace:{user.id}:{ip}", f"login:account:{user.id}"):
        ratelimit.clear(session, key=key)
    ratelimit.hit(session, key=ip_key, window=limits.window, amount=-1, now=now)  # only failures count
    return user


def _throttle_account(session: Session, *, user: User, ip: str, limits: LoginLimits, now: datetime) -> None:
    """Count this try against the account from this address (a pair that failed too often waits the window out),
    then, if the pair may still try, against the account from everywhere (then every address waits a delay that
    doubles, up to a bound). One address's tries reach the second count at most max_failures times, so parallel
    tries from one address never throttle each other twice."""
    minutes = int(limits.window.total_seconds() // 60)
    pair = ratelimit.hit(session, key=f"login:pair:{user.id}:{ip}", window=limits.window, now=now)
    if pair > limits.max_failures:
        raise LoginThrottled(f"too many failed sign-ins to this account from your network; wait {minutes} minutes "
                             f"and try again")
    everywhere = ratelimit.hit(session, key=f"login:account:{user.id}", window=limits.window, now=now)
    if everywhere > limits.max_failures:
        delay = min(limits.max_delay, timedelta(seconds=2 ** min(everywhere - limits.max_failures, 16)))
        if ratelimit.hit(session, key=f"login:pace:{user.id}:{ip}", window=delay, now=now) > 1:
            seconds = int(delay.total_seconds())
            raise LoginThrottled(f"this account has had many failed sign-ins; wait {seconds} seconds between "
                                 f"tries")


def forget_old_failures(session: Session, *, before: datetime) -> None:
    ratelimit.forget_old(session, before=before)


# ---------------------------------------------------------------- e-mail links: verification and password reset

TOKEN_LIFETIMES = {"verify": timedelta(days=3), "reset": timedelta(hours=1), "commit": timedelta(days=3),
                   "invite": timedelta(days=7)}
INVALID_LINK = "this link is not valid any more (used already, expired, or replaced by a newer one): ask for a new one"


def issue_token(session: Session, *, user: User, purpose: str, now: datetime | None = None,
                email: str | None = None) -> str:
    """A new single-use link token for `purpose`, sent to `email` (default: the account's address); earlier unused
    ones of the same purpose and address stop working. Only its SHA-256 is stored, so a copy of the database opens
    no account."""
    now = now or utcnow()
    address = email or user.email
    stale = [EmailToken.user_id == user.id, EmailToken.purpose == purpose, EmailToken.used_at == None]  # noqa: E711
    if email is not None:
        stale.append(EmailToken.email == address)
    for old in session.exec(select(EmailToken).where(*stale)):
        old.used_at = now
        session.add(old)
    raw = secrets.token_urlsafe(32)
    session.add(EmailToken(user_id=user.id, purpose=purpose, token_hash=_token_hash(raw), email=address,
                           created_at=now, expires_at=now + TOKEN_LIFETIMES[purpose]))
    return raw


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", errors="replace")).hexdigest()


def use_token(session: Session, *, raw: str, purpose: str, now: datetime | None = None) -> User:
    """The account a valid, unused, unexpired token opens, marking it used; AccountError otherwise (one message
    for every reason, so a link gives nothing away)."""
    now = now or utcnow()
    token = session.exec(select(EmailToken).where(EmailToken.token_hash == _token_hash(raw or ""))).first() \
        if raw and len(raw) <= 200 else None
    user = session.get(User, token.user_id) if token is not None else None
    if (token is None or user is None or token.purpose != purpose or token.used_at is not None
            or as_utc(token.expires_at) <= now or not user.active or token.email != user.email):
        raise AccountError(INVALID_LINK)
    token.used_at = now
    session.add(token)
    return user


def verify_email(session: Session, *, raw: str, now: datetime | None = None) -> User:
    user = use_token(session, raw=raw, purpose="verify", now=now)
    user.email_verified_at = user.email_verified_at or now or utcnow()
    session.add(user)
    return user


def invite_user(session: Session, *, email: str, role: str = "learner", name: str = "",
                courses: Iterable[str] = ()) -> User:
    """An account its owner finishes from an invitation link: until then no password opens it (its hash is of
    random bytes nobody keeps)."""
    return create_user(session, email=email, password=secrets.token_urlsafe(32), role=role, name=name,
                       courses=courses)


def password_from_link(session: Session, *, purpose: str, raw: str, password: str,
                       now: datetime | None = None) -> User:
    """A password chosen from an e-mailed link ("reset" or "invite"): every session ends, and the address is
    proven (the link reached it)."""
    check_password(password)
    user = use_token(session, raw=raw, purpose=purpose, now=now)
    set_password(session, user=user, password=password)
    user.email_verified_at = user.email_verified_at or now or utcnow()
    return user



@dataclass(frozen=True)
class RequestLimits:
    per_email: int = 3               # reset or verification e-mails to one address from one network per hour
    per_ip: int = 20                 # from one network per hour
    per_email_everywhere: int = 20   # to one address from every network together per hour (no flood of mail)
    window: timedelta = timedelta(hours=1)


def allow_mail_request(session: Session, *, kind: str, email: str, ip: str,
                       limits: RequestLimits = RequestLimits(), now: datetime | None = None) -> bool:
    """False once too many links were asked for, for this address from this network, from this network, or for
    this address from everywhere (nothing is sent then, and the page answers the same either way). A stranger's
    requests use up their own network's allowance, not the owner's."""
    address = normalise_email(email)
    by_pair = ratelimit.hit(session, key=f"{kind}:email-ip:{address}:{ip}", window=limits.window, now=now)
    by_ip = ratelimit.hit(session, key=f"{kind}:ip:{ip}", window=limits.window, now=now)
    everywhere = ratelimit.hit(session, key=f"{kind}:email:{address}", window=limits.window, now=now)
    return by_pair <= limits.per_email and by_ip <= limits.per_ip and everywhere <= limits.per_email_everywhere


def allow_signup(session: Session, *, ip: str, per_hour: int, now: datetime | None = None) -> bool:
    return ratelimit.hit(session, key=f"signup:ip:{ip}", window=timedelta(hours=1), now=now) <= per_hour


# ---------------------------------------------------------------------------------------------------------------
# The other addresses a learner commits with (authorship evidence counts them once confirmed)
# ---------------------------------------------------------------------------------------------------------------

MAX_COMMIT_EMAILS = 10


def commit_emails(session: Session, *, user: User) -> list[CommitEmail]:
    return list(session.exec(select(CommitEmail).where(CommitEmail.user_id == user.id).order_by(CommitEmail.id)))


def add_commit_email(session: Session, *, user: User, email: str) -> CommitEmail:
    """Name another address the learner commits with; it counts as theirs once the link sent to it is opened."""
    address = check_email(email)
    if address == user.email:
        raise AccountError("that is your account's address already", field="email")
    mine = commit_emails(session, user=user)
    if any(row.email == address for row in mine):
        raise AccountError("that address is on your list already", field="email")
    if len(mine) >= MAX_COMMIT_EMAILS:
        raise AccountError(f"you can name up to {MAX_COMMIT_EMAILS} addresses; remove one first", field="email")
    _refuse_if_someone_elses(session, user=user, address=address)
    row = CommitEmail(user_id=user.id, email=address)
    session.add(row)
    session.flush()
    return row


def _refuse_if_someone_elses(session: Session, *, user: User, address: str) -> None:
    """Another account's own address, or one another account has confirmed, is never this learner's: their
    commits would count as this learner's authorship."""
    owner = find_user(session, email=address)
    claimed = session.exec(select(CommitEmail).where(CommitEmail.email == address, CommitEmail.user_id != user.id,
                                                     CommitEmail.confirmed_at.is_not(None))).first()
    if (owner is not None and owner.id != user.id) or claimed is not None:
        raise AccountError("that address belongs to another account; name only addresses you commit with yourself",
                           field="email")


@dataclass(frozen=True)
class CommitClaim:
    """What a commit-address link asks its reader to confirm: which address joins which account."""

    address: str
    account_email: str
    account_name: str


def commit_email_claim(session: Session, *, raw: str, now: datetime | None = None) -> CommitClaim | None:
    """The address and the account a live commit-address link would join, or None for a link that is not."""
    try:
        token, row, user = _commit_link(session, raw=raw, now=now or utcnow())
    except AccountError:
        return None
    return CommitClaim(address=row.email, account_email=user.email, account_name=user.name or "")


def _commit_link(session: Session, *, raw: str, now: datetime):
    token = session.exec(select(EmailToken).where(EmailToken.token_hash == _token_hash(raw or ""))).first() \
        if raw and len(raw) <= 200 else None
    row = session.exec(select(CommitEmail).where(CommitEmail.user_id == token.user_id,
                                                 CommitEmail.email == token.email)).first() if token else None
    user = session.get(User, token.user_id) if token is not None else None
    if (token is None or row is None or user is None or not user.active or token.purpose != "commit"
            or token.used_at is not None or as_utc(token.expires_at) <= now):
        raise AccountError(INVALID_LINK)
    return token, row, user


def confirm_commit_email(session: Session, *, raw: str, now: datetime | None = None) -> CommitEmail:
    now = now or utcnow()
    token, row, user = _commit_link(session, raw=raw, now=now)
    _refuse_if_someone_elses(session, user=user, address=row.email)  # it may have become someone's since
    token.used_at = now
    row.confirmed_at = row.confirmed_at or now
    session.add_all([token, row])
    return row


def remove_commit_email(session: Session, *, user: User, email_id: int) -> bool:
    row = session.get(CommitEmail, email_id)
    if row is None or row.user_id != user.id:
        return False
    session.delete(row)
    return True
