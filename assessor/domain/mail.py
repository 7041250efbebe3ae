"""E-mail: messages are queued in the database by the action that causes them and sent by the job queue through the
operator's SMTP server, retried with backoff, so a failing mail server never fails the action itself."""

import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, or_, select

from assessor.domain.db import contains, utcnow
from assessor.domain.models import OutgoingMail, User

logger = logging.getLogger("assessor.mail")

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
SENDING_LEASE = timedelta(minutes=5)  # a sender that dies mid-message leaves it to be tried again after this
# Which preference switches each kind of message; None: always sent (it is about the account itself).
PREFERENCES: dict[str, str | None] = {
    "verify": None, "reset": None, "assessment": "notify_assessment", "review": "notify_review",
    "certificate": "notify_certificate", "digest": "notify_digest",
}


@dataclass(frozen=True)
class MailSettings:
    host: str | None = None          # None: mail is queued and kept, never sent (an installation without SMTP)
    port: int = 25
    username: str | None = None
    password: str | None = None
    security: str = "starttls"       # starttls, ssl or none
    sender: str = "Capstone Assessor <no-reply@localhost>"
    timeout_seconds: float = 20.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)


def settings_from_config(config: Mapping[str, Any]) -> MailSettings:
    port = config.get("SMTP_PORT")
    return MailSettings(
        host=config.get("SMTP_HOST") or None, port=int(port) if port not in (None, "") else 25,
        username=config.get("SMTP_USERNAME") or None, password=config.get("SMTP_PASSWORD") or None,
        security=str(config.get("SMTP_SECURITY") or "starttls").lower(),
        sender=str(config.get("MAIL_SENDER") or f"{config.get('ISSUER_NAME') or 'Capstone Assessor'} "
                                                 f"<no-reply@localhost>"),
    )


def queue(session: Session, *, to: User, kind: str, subject: str, body: str, now: datetime | None = None,
          force: bool = False) -> OutgoingMail | None:
    """Queue one message to a user, unless they switched that kind off. The caller commits (with its action)."""
    preference = PREFERENCES[kind]
    if not force and preference is not None and not getattr(to, preference, True):
        return None
    message = OutgoingMail(to_address=to.email, subject=subject[:200], body=body, kind=kind,
                           next_try_at=now or utcnow())
    session.add(message)
    return message


def due(session: Session, *, now: datetime | None = None, limit: int = 50) -> list[OutgoingMail]:
    now = now or utcnow()
    return list(session.exec(select(OutgoingMail).where(
        OutgoingMail.sent_at == None, OutgoingMail.gave_up_at == None,  # noqa: E711
        OutgoingMail.next_try_at <= now).order_by(OutgoingMail.id).limit(limit)))


def send_due(session: Session, settings: MailSettings, *, now: datetime | None = None) -> tuple[int, int]:
    """Send what is due; (sent, failed). A failure is recorded on the message and retried later, doubling the
    wait each time, until MAX_ATTEMPTS, when it is given up (admins see both on the mail page)."""
    if not settings.enabled:
        return 0, 0
    now = now or utcnow()
    sent = failed = 0
    for message in due(session, now=now):
        if not _claim(session, message, now=now):
            continue  # another worker is sending it
        try:
            deliver(settings, message)
        except (OSError, smtplib.SMTPException) as error:
            message.attempts += 1
            message.last_error = _describe(error)[:500]
            if message.attempts >= MAX_ATTEMPTS:
                message.gave_up_at = now
            else:
                message.next_try_at = now + FIRST_RETRY * 2 ** (message.attempts - 1)
            failed += 1
            logger.warning("mail %s to %s not sent (try %s): %s", message.id, message.to_address,
                           message.attempts, message.last_error)
        else:
            message.attempts += 1
            message.sent_at, message.last_error = now, None
            sent += 1
        session.add(message)
        session.commit()
    return sent, failed


def _describe(error: Exception) -> str:
    """What the admin reads: the server's own answer when it gave one ("451 try again later")."""
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
        return f"the mail server answered {error.smtp_code} {text}"
    return f"{type(error).__name__}: {error}"


def _claim(session: Session, message: OutgoingMail, *, now: datetime) -> bool:
    """Take the message for this sender: a conditional update only one of two parallel senders can win."""
    claimed = session.execute(
        update(OutgoingMail).where(OutgoingMail.id == message.id, OutgoingMail.sent_at == None,  # noqa: E711
                                   OutgoingMail.gave_up_at == None, OutgoingMail.next_try_at <= now)  # noqa: E711
        .values(next_try_at=now + SENDING_LEASE)).rowcount == 1
    session.commit()
    if claimed:
        session.refresh(message)
    return claimed


def deliver(settings: MailSettings, message: OutgoingMail) -> None:
    email = EmailMessage()
    email["From"] = settings.sender
    email["To"] = formataddr(("", message.to_address))
    email["Subject"] = message.subject
    email["Message-ID"] = make_msgid(domain="capstone-assessor")
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body)
    context = ssl.create_default_context()
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_seconds, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password or "")
        client.send_message(email)


def retry_now(session: Session, *, message_id: int, now: datetime | None = None) -> bool:
    """An admin's "send again" for a message that failed or was given up on."""
    message = session.get(OutgoingMail, message_id)
    if message is None or message.sent_at is not None:
        return False
    message.gave_up_at, message.next_try_at = None, now or utcnow()
    message.attempts = min(message.attempts, MAX_ATTEMPTS - 1)
    session.add(message)
    session.commit()
    return True


def recent(session: Session, *, search: str = "", limit: int = 100) -> list[OutgoingMail]:
    """The newest messages; `search` keeps those whose address, subject or body contains it."""
    statement = select(OutgoingMail)
    words = (search or "").strip().lower()[:100]
    if words:
        statement = statement.where(or_(*(contains(column, words) for column in
                                          (OutgoingMail.to_address, OutgoingMail.subject, OutgoingMail.body))))
    return list(session.exec(statement.order_by(OutgoingMail.id.desc()).limit(limit)))
