"""Assessment on push: a learner links a repository to a course's capstone, and each signed push to the chosen
branch (or a tag matching a pattern) from GitHub, GitLab or Gitea/Forgejo submits an attempt as the form does.

Each link has its own secret (sealed at rest). A delivery is accepted only when it is signed with it, is new
(delivery ids are kept), names the linked repository and the chosen branch or tag; anything else changes nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from assessor.certificates.sealing import seal, unseal
from assessor.domain.db import utcnow
from assessor.errors import AssessorError, CertificateError
from assessor.engine.intake import IntakeError, SourcePolicy, check_source
from assessor.domain.models import FAILED, QUEUED, Attempt, RepositoryLink, User, WebhookDelivery
from assessor.domain.submissions import SubmissionError, check_ref

PROVIDERS = ("github", "gitlab", "gitea")
MAX_LINKS_PER_LEARNER = 10
DELIVERIES_PER_MINUTE = 30
_SHA = re.compile(r"^[0-9a-f]{40}$")
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# Where each host's webhook is added, in its own words.
HOOK_STEPS = {
    "github": ("Open the repository on GitHub, then Settings → Webhooks → Add webhook.",
               "Payload URL: the address below; Content type: application/json; Secret: the secret below.",
               "Which events: \"Just the push event\". Click Add webhook."),
    "gitlab": ("Open the project on GitLab, then Settings → Webhooks → Add new webhook.",
               "URL: the address below; Secret token: the secret below.",
               "Trigger: Push events (and Tag push events for tags). Click Add webhook."),
    "gitea": ("Open the repository on Gitea or Forgejo, then Settings → Webhooks → Add webhook → Gitea (or Forgejo).",
              "Target URL: the address below; POST content type: application/json; Secret: the secret below.",
              "Trigger on: Push events. Click Add webhook."),
}


class WebhookError(AssessorError):
    """A link cannot be made, or a delivery is refused (with the HTTP status to answer)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Push:
    """What a delivery says, once verified: the ref pushed, the commit it now points at, who pushed."""

    delivery_id: str
    event: str
    ref: str
    commit: str
    repository_urls: tuple[str, ...]
    pusher: str


def _binding(link_id: int) -> str:
    return f"webhook-link:{link_id}"


def _repository_key(url: str) -> tuple[str, str] | None:
    """(host, owner/name) of any of a repository's addresses (https, ssh, scp-like), for comparing them."""
    text = (url or "").strip()
    if "://" in text:
        parts = urlsplit(text)
        host, path = parts.hostname or "", parts.path
    elif "@" in text and ":" in text:
        host, _, path = text.partition("@")[2].partition(":")
    else:
        return None
    path = path.strip("/").removesuffix(".git").lower()
    return (host.lower(), path) if host and path else None


def create_link(session: Session, *, user: User, rubric_id: str, source: str, provider: str, branch: str | None,
                tag_pattern: str | None, policy: SourcePolicy, kek: bytes) -> tuple[RepositoryLink, str]:
    """A new link and its secret (returned once, in clear, to show the learner)."""
    if provider not in PROVIDERS:
        raise WebhookError(f"the host must be one of {', '.join(PROVIDERS)}")
    try:
        url = check_source(source, policy)
    except IntakeError as error:
        raise WebhookError(str(error)) from None
    branch = (branch or "").strip() or None
    tag_pattern = (tag_pattern or "").strip() or None
    if (branch is None) == (tag_pattern is None):
        raise WebhookError("choose either a branch or a tag pattern")
    try:
        check_ref(branch or tag_pattern.replace("*", "x").replace("?", "x"))
    except SubmissionError as error:
        raise WebhookError(str(error)) from None
    existing = session.exec(select(RepositoryLink).where(RepositoryLink.user_id == user.id)).all()
    if len(existing) >= MAX_LINKS_PER_LEARNER:
        raise WebhookError(f"at most {MAX_LINKS_PER_LEARNER} linked repositories per account: remove one first")
    if any(link.rubric_id == rubric_id and _repository_key(link.source_url) == _repository_key(url)
           for link in existing):
        raise WebhookError("this repository is already linked to this capstone")
    link = RepositoryLink(user_id=user.id, rubric_id=rubric_id, source_url=url, provider=provider, branch=branch,
                          tag_pattern=tag_pattern, secret_sealed="", created_at=utcnow())
    session.add(link)
    session.flush()
    secret = secrets.token_urlsafe(32)
    link.secret_sealed = seal(secret.encode(), kek=kek, kid=_binding(link.id))
    session.commit()
    return link, secret


def new_secret(session: Session, *, link: RepositoryLink, kek: bytes) -> str:
    """Replace the link's secret (the old one stops working at once) and return the new one."""
    secret = secrets.token_urlsafe(32)
    link.secret_sealed = seal(secret.encode(), kek=kek, kid=_binding(link.id))
    session.add(link)
    session.commit()
    return secret


def links_of(session: Session, *, user: User) -> list[RepositoryLink]:
    return list(session.exec(select(RepositoryLink).where(RepositoryLink.user_id == user.id)
                             .order_by(RepositoryLink.created_at, RepositoryLink.id)))


def remove_link(session: Session, *, user: User, link_id: int) -> None:
    link = session.get(RepositoryLink, link_id)
    if link is None or link.user_id != user.id:
        raise WebhookError("no such link on your account", status=404)
    for delivery in session.exec(select(WebhookDelivery).where(WebhookDelivery.link_id == link.id)).all():
        session.delete(delivery)
    session.delete(link)
    session.commit()


def _header(headers, *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value:
            return value.strip()
    return None


def _signature_ok(link: RepositoryLink, secret: bytes, headers, body: bytes) -> bool:
    if link.provider == "gitlab":
        token = _header(headers, "X-Gitlab-Token")
        return token is not None and hmac.compare_digest(token.encode(), secret)
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if link.provider == "github":
        given = _header(headers, "X-Hub-Signature-256") or ""
        return given.startswith("sha256=") and hmac.compare_digest(given[7:].lower(), expected)
    given = _header(headers, "X-Gitea-Signature", "X-Forgejo-Signature") or ""
    return hmac.compare_digest(given.lower(), expected)


def _event(link: RepositoryLink, headers) -> tuple[str, str | None]:
    """(event name, delivery id) in the provider's own headers."""
    if link.provider == "github":
        return (_header(headers, "X-GitHub-Event") or "", _header(headers, "X-GitHub-Delivery"))
    if link.provider == "gitlab":
        event = {"Push Hook": "push", "Tag Push Hook": "push"}.get(_header(headers, "X-Gitlab-Event") or "", "")
        return event, _header(headers, "X-Gitlab-Event-UUID", "Idempotency-Key", "X-Gitlab-Webhook-UUID")
    return (_header(headers, "X-Gitea-Event", "X-Forgejo-Event") or "",
            _header(headers, "X-Gitea-Delivery", "X-Forgejo-Delivery"))


def _read_push(link: RepositoryLink, delivery_id: str, event: str, body: bytes) -> Push:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError("the delivery is not JSON (choose the content type application/json)") from None
    if not isinstance(payload, dict):
        raise WebhookError("the delivery is not a push event")
    ref, commit = payload.get("ref"), payload.get("after") or payload.get("checkout_sha")
    if not isinstance(ref, str) or not isinstance(commit, str):
        raise WebhookError("the delivery is not a push event (no ref or commit)")
    repository = payload.get("repository") if link.provider != "gitlab" else payload.get("project")
    repository = repository if isinstance(repository, dict) else {}
    urls = tuple(str(repository[key]) for key in ("clone_url", "ssh_url", "html_url", "git_http_url", "git_ssh_url",
                                                   "web_url", "url", "git_url") if isinstance(repository.get(key), str))
    pusher = payload.get("pusher") if isinstance(payload.get("pusher"), dict) else {}
    name = (payload.get("user_username") or pusher.get("login") or pusher.get("username") or pusher.get("name")
            or (payload.get("sender") or {}).get("login") or "someone")
    return Push(delivery_id=delivery_id, event=event, ref=ref, commit=commit.lower(), repository_urls=urls,
                pusher=str(name)[:100])


def _wanted(link: RepositoryLink, ref: str) -> bool:
    if link.branch:
        return ref == f"refs/heads/{link.branch}"
    return ref.startswith("refs/tags/") and fnmatch.fnmatchcase(ref.removeprefix("refs/tags/"), link.tag_pattern)


def receive(session: Session, *, link_id: int, headers, body: bytes, kek: bytes) -> tuple[RepositoryLink, Push | None]:
    """Verify one delivery. Returns the link and the push to assess (None: verified, and nothing to do).
    Raises WebhookError (with its HTTP status) for anything refused; nothing is recorded then."""
    link = session.get(RepositoryLink, link_id)
    if link is None:
        raise WebhookError("no such webhook", status=404)
    try:
        secret = unseal(link.secret_sealed, kek=kek, kid=_binding(link.id))
    except CertificateError:
        raise WebhookError("this webhook's secret cannot be read here", status=503) from None
    if not _signature_ok(link, secret, headers, body):
        raise WebhookError("the delivery is not signed with this webhook's secret", status=401)
    event, delivery_id = _event(link, headers)
    if not delivery_id or not _DELIVERY_ID.match(delivery_id):
        raise WebhookError("the delivery has no delivery id")
    recent = session.exec(select(WebhookDelivery.id).where(
        WebhookDelivery.link_id == link.id, WebhookDelivery.received_at >= utcnow() - timedelta(minutes=1))).all()
    if len(recent) >= DELIVERIES_PER_MINUTE:
        raise WebhookError(f"more than {DELIVERIES_PER_MINUTE} deliveries a minute for this link", status=429)
    if event in ("ping",):
        return link, None
    if event != "push":
        raise WebhookError(f"only push events are assessed (this is {event or 'an unknown event'})", status=202)
    push = _read_push(link, delivery_id, event, body)
    if _repository_key(link.source_url) not in {_repository_key(url) for url in push.repository_urls}:
        raise WebhookError("the delivery is for another repository than the one linked", status=403)
    if not _SHA.match(push.commit) or set(push.commit) == {"0"} or not _wanted(link, push.ref):
        return link, None  # a deleted branch, or another branch or tag: nothing to assess
    return link, push


def record_delivery(session: Session, *, link: RepositoryLink, delivery_id: str, outcome: str,
                    attempt_id: int | None = None) -> bool:
    """Keep the delivery id; False when it was seen before (a replay), and then nothing is recorded."""
    session.add(WebhookDelivery(link_id=link.id, delivery_id=delivery_id, outcome=outcome[:200],
                                attempt_id=attempt_id, received_at=utcnow()))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return False
    link.last_delivery_at = utcnow()
    session.add(link)
    return True


def seen(session: Session, *, link: RepositoryLink, delivery_id: str) -> bool:
    return session.exec(select(WebhookDelivery.id).where(WebhookDelivery.link_id == link.id,
                                                         WebhookDelivery.delivery_id == delivery_id)).first() is not None


def superseded_by_push(session: Session, *, user_id: int, rubric_id: str, commit: str) -> list[int]:
    """A later push replaces the learner's attempts of this capstone that no worker has started yet."""
    from assessor.domain.submissions import record_event

    waiting = session.exec(select(Attempt).where(Attempt.user_id == user_id, Attempt.rubric_id == rubric_id,
                                                 Attempt.status == QUEUED)).all()
    for attempt in waiting:
        attempt.status, attempt.finished_at = FAILED, utcnow()
        attempt.failure_reason = f"replaced by a later push (commit {commit[:12]}) before it was assessed"
        session.add(attempt)
        record_event(session, attempt=attempt, kind="superseded", detail=attempt.failure_reason)
    return [attempt.id for attempt in waiting]


def submit_push(session: Session, *, link: RepositoryLink, push: Push, rubric, policy: SourcePolicy,
                max_running: int) -> Attempt:
    """The push as a submission through the form would be (same checks and limits), replacing the learner's
    attempts of this capstone that have not started; the delivery is kept. Raises SubmissionError."""
    from assessor.domain.submissions import create_attempt

    user = session.get(User, link.user_id)
    superseded_by_push(session, user_id=user.id, rubric_id=rubric.id, commit=push.commit)
    attempt = create_attempt(session, user=user, rubric=rubric, source=link.source_url, ref=push.commit,
                             policy=policy, max_running=max_running, pushed_by=push.pusher)
    if not record_delivery(session, link=link, delivery_id=push.delivery_id,
                           outcome=f"attempt {attempt.number} queued", attempt_id=attempt.id):
        raise SubmissionError("this delivery was received before")
    return attempt
