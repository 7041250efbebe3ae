"""The tables of the web service (SQLModel). Plain data: the rules live in accounts, submissions and reviews."""

import secrets
from datetime import date, datetime

from sqlalchemy import DDL, Column, Index, LargeBinary, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from assessor.clock import utcnow

ROLES = ("learner", "mentor", "admin")

# Assessment status of an attempt (what the queue and the pipeline did).
QUEUED, RUNNING, SCORED, FAILED = "queued", "running", "scored", "failed"
STATUSES = (QUEUED, RUNNING, SCORED, FAILED)

# Review state of an attempt (what people did with a scored attempt).
OPEN, IN_REVIEW, APPROVED, CHANGES_REQUESTED, SUPERSEDED = "open", "in_review", "approved", "changes_requested", "superseded"
# Scored but not sent to a mentor: it cannot pass as it stands, or it is the very commit a mentor asked changes to.
# The learner sends it with "ask for feedback".
HELD = "held"
REVIEW_STATES = (OPEN, IN_REVIEW, APPROVED, CHANGES_REQUESTED, SUPERSEDED, HELD)
AWAITING_REVIEW = (OPEN, IN_REVIEW)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(default="", max_length=120)
    password_hash: str
    role: str = Field(default="learner", max_length=16, index=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # Part of every session's identity: a new token (sign-out, password change, "sign out everywhere") ends
    # every session made with the old one, copied cookies included.
    session_token: str = Field(default_factory=lambda: secrets.token_hex(16), max_length=64)
    email_verified_at: datetime | None = None
    notify_assessment: bool = True     # assessment finished, with the outcome
    notify_review: bool = True         # a mentor approved or asked for changes
    notify_certificate: bool = True    # a certificate was issued
    notify_digest: bool = True         # mentors: the daily digest of the queue

    # Flask-Login's protocol, kept here so the model needs no Flask import.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_mentor(self) -> bool:
        return self.role in ("mentor", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def display_name(self) -> str:
        return self.name or self.email


class CourseAssignment(SQLModel, table=True):
    """A mentor reviews the attempts of the rubrics (courses) they are assigned to."""

    __tablename__ = "course_assignments"
    __table_args__ = (UniqueConstraint("user_id", "rubric_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    rubric_id: str = Field(max_length=64, index=True)


class RubricSnapshot(SQLModel, table=True):
    """The exact rubric file an attempt was submitted against, so a later edit never changes a grade."""

    __tablename__ = "rubric_snapshots"

    sha256: str = Field(primary_key=True, max_length=64)
    rubric_id: str = Field(max_length=64)
    version: str = Field(max_length=64)
    source: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Submission(SQLModel, table=True):
    """One learner's capstone for one rubric; its attempts are the history."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("user_id", "rubric_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    rubric_id: str = Field(max_length=64)
    course: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class StoredReport(SQLModel, table=True):
    """One report per (commit, rubric id, version, sha256): the same commit is never assessed twice."""

    __tablename__ = "stored_reports"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True, index=True)
    commit: str = Field(max_length=40)
    rubric_id: str = Field(max_length=64)
    rubric_version: str = Field(max_length=64)
    rubric_sha256: str = Field(max_length=64)
    outcome: str = Field(max_length=16)
    percent: float = 0.0
    tree: str | None = Field(default=None, max_length=40, index=True)  # the commit's git tree (see integrity)
    document: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Attempt(SQLModel, table=True):
    __tablename__ = "attempts"
    __table_args__ = (
        # The mentor queue: awaiting review in a course, oldest first.
        Index("ix_attempts_queue", "status", "review_state", "rubric_id", "id"),
        Index("ix_attempts_user", "user_id", "id"),
        Index("ix_attempts_running", "status", "heartbeat_at"),
        Index("ix_attempts_commit", "commit"),  # the same work by another learner (integrity)
    )

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submissions.id", index=True)
    user_id: int = Field(foreign_key="users.id")
    number: int = 1
    rubric_id: str = Field(max_length=64)
    rubric_version: str = Field(max_length=64)
    rubric_sha256: str = Field(foreign_key="rubric_snapshots.sha256", max_length=64)
    course: str = Field(max_length=200)
    source_url: str = Field(max_length=1100)
    ref: str | None = Field(default=None, max_length=255)
    commit: str | None = Field(default=None, max_length=40)
    status: str = Field(default=QUEUED, max_length=16)
    stage: str | None = Field(default=None, max_length=16)
    stage_message: str | None = Field(default=None, max_length=500)
    failure_reason: str | None = Field(default=None, max_length=1000)
    report_id: int | None = Field(default=None, foreign_key="stored_reports.id")
    reused_report: bool = False
    review_state: str = Field(default=OPEN, max_length=20)
    job_id: str | None = Field(default=None, max_length=64)
    tries: int = 0                      # times a worker claimed it (retries and crash recoveries included)
    dead_letter: bool = False           # failed for the service's reasons after the last try; admins may requeue
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    self_assessed_at: datetime | None = None  # the learner submitted the self-assessment (else: none or a draft)
    origin: str = Field(default="form", max_length=16, sa_column_kwargs={"server_default": "form"})  # form | push
    pushed_by: str | None = Field(default=None, max_length=100)  # the pusher the git host named

    @property
    def finished(self) -> bool:
        return self.status in (SCORED, FAILED)


class SelfAssessment(SQLModel, table=True):
    __tablename__ = "self_assessments"
    __table_args__ = (UniqueConstraint("attempt_id", "criterion_id"),)

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="attempts.id", index=True)
    criterion_id: str = Field(max_length=64)
    level: int | None = None  # None only in a draft
    justification: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: datetime = Field(default_factory=utcnow)


class Review(SQLModel, table=True):
    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_mentor_decided", "mentor_id", "decided_at"),)

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="attempts.id", unique=True)
    mentor_id: int = Field(foreign_key="users.id")
    started_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None
    decision: str | None = Field(default=None, max_length=20)  # approved | changes_requested
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    final_percent: float | None = None
    final_outcome: str | None = Field(default=None, max_length=16)
    # The mentor's reason for approving despite the integrity flags shown (see assessor.integrity).
    integrity_acknowledged_at: datetime | None = None
    integrity_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ReviewLevel(SQLModel, table=True):
    """A mentor's level for one criterion. For an automated criterion a different level is an override:
    the automated level and the mentor's level are both kept, with the written reason."""

    __tablename__ = "review_levels"
    __table_args__ = (UniqueConstraint("review_id", "criterion_id"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="reviews.id", index=True)
    criterion_id: str = Field(max_length=64)
    automated_level: int | None = None
    level: int | None = None
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    override_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def is_override(self) -> bool:
        return self.automated_level is not None and self.level is not None and self.level != self.automated_level


class Event(SQLModel, table=True):
    """The append-only timeline of an attempt: who did what, when. The database refuses updates and deletes."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_attempt", "attempt_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="attempts.id")
    actor_id: int | None = Field(default=None, foreign_key="users.id")
    kind: str = Field(max_length=32)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)


class RateCounter(SQLModel, table=True):
    """Attempts per key (an account, an address) in the current fixed window; incremented atomically."""

    __tablename__ = "rate_counters"

    key: str = Field(primary_key=True, max_length=300)
    window_start: datetime
    count: int = 0


class EmailToken(SQLModel, table=True):
    """A single-use link sent by e-mail (verify the address, reset the password); only its hash is stored."""

    __tablename__ = "email_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    purpose: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    email: str = Field(max_length=254)  # the address it was sent to: changing the address voids it
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class OutgoingMail(SQLModel, table=True):
    """A message waiting to be sent, sent, or given up on; the queue sends it so no action waits on SMTP."""

    __tablename__ = "outgoing_mail"
    __table_args__ = (Index("ix_outgoing_mail_due", "sent_at", "next_try_at"),)

    id: int | None = Field(default=None, primary_key=True)
    to_address: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    next_try_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = None
    gave_up_at: datetime | None = None


class SigningKey(SQLModel, table=True):
    """An issuer key: its public JWK, and its private key sealed (AES-GCM under the key-encryption key every
    machine shares, never in clear), or the path of the operator's own key file.

    A new key is published (in the JWKS) from `created_at` but signs only from `activates_at`, so verifiers'
    cached key sets already hold it; the key it replaces then retires and its private file is destroyed."""

    __tablename__ = "signing_keys"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=64, unique=True)  # RFC 7638 thumbprint
    key_url: str | None = Field(default=None, max_length=1000)  # its published URL, fixed at creation
    algorithm: str = Field(default="ES256", max_length=16)
    public_jwk: str = Field(sa_column=Column(Text, nullable=False))
    private_key_path: str = Field(max_length=1000)  # the operator's key file (or an earlier version's); "" if none
    private_key_sealed: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # None: destroyed
    active: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    activates_at: datetime | None = None
    retired_at: datetime | None = None
    destroyed_at: datetime | None = None
    compromised_at: datetime | None = None  # nothing it signed from then on is trusted
    compromise_reason: str | None = Field(default=None, max_length=500)


class LtiPlatform(SQLModel, table=True):
    """An LMS registered as an LTI 1.3 platform: where its launches come from and its keys and services live."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    issuer: str = Field(max_length=500)
    client_id: str = Field(max_length=255)
    auth_login_url: str = Field(max_length=1000)  # the platform's OIDC authorization endpoint
    auth_token_url: str = Field(max_length=1000)  # its OAuth 2 token endpoint (grades)
    key_set_url: str = Field(max_length=1000)  # its JWKS
    deployment_ids: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    created_at: datetime = Field(default_factory=utcnow)


class LtiToolKey(SQLModel, table=True):
    """The tool's own RSA key (LTI 1.3 asks for RS256): signs deep-linking answers and grade-service tokens; its
    public half is served at /lti/jwks.json. The private half is sealed like the issuer keys."""

    __tablename__ = "lti_tool_keys"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=64, unique=True)
    public_pem: str = Field(sa_column=Column(Text, nullable=False))
    private_sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class LtiAccount(SQLModel, table=True):
    """A platform's user (its `sub`) linked to an account here."""

    __tablename__ = "lti_accounts"
    __table_args__ = (UniqueConstraint("platform_id", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    platform_id: int = Field(foreign_key="lti_platforms.id", index=True)
    subject: str = Field(max_length=255)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class LtiGradeTarget(SQLModel, table=True):
    """Where a learner's grade for a capstone goes back to: the platform's line item from the launch."""

    __tablename__ = "lti_grade_targets"
    __table_args__ = (UniqueConstraint("platform_id", "user_id", "rubric_id", "lineitem_url"),)

    id: int | None = Field(default=None, primary_key=True)
    platform_id: int = Field(foreign_key="lti_platforms.id")
    user_id: int = Field(foreign_key="users.id", index=True)
    rubric_id: str = Field(max_length=64)
    subject: str = Field(max_length=255)
    lineitem_url: str = Field(max_length=1000)
    scopes: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    created_at: datetime = Field(default_factory=utcnow)


class LtiGradeSend(SQLModel, table=True):
    """One score to send to one line item (after a decision or a regrade), with its delivery."""

    __tablename__ = "lti_grade_sends"

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="lti_grade_targets.id", index=True)
    attempt_id: int = Field(foreign_key="attempts.id")
    score: float
    maximum: float = 100.0
    comment: str = Field(default="", max_length=1000)
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    tries: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class LtiLaunchValue(SQLModel, table=True):
    """PyLTI1p3's launch data (state, nonce, launch claims) kept server-side, so a launch from another site needs
    no session cookie."""

    __tablename__ = "lti_launch_values"

    key: str = Field(primary_key=True, max_length=255)
    value: str = Field(sa_column=Column(Text, nullable=False))
    expires_at: datetime


class RepositoryLink(SQLModel, table=True):
    """A learner's repository linked to a capstone: a signed push to `branch` (or a tag matching `tag_pattern`)
    submits an attempt. The webhook secret is sealed, bound to the link."""

    __tablename__ = "repository_links"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    rubric_id: str = Field(max_length=64)
    source_url: str = Field(max_length=1100)
    provider: str = Field(max_length=16)  # github | gitlab | gitea
    branch: str | None = Field(default=None, max_length=255)
    tag_pattern: str | None = Field(default=None, max_length=255)
    secret_sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    last_delivery_at: datetime | None = None


class WebhookDelivery(SQLModel, table=True):
    """Each delivery a link accepted, by the host's delivery id: a replayed one changes nothing."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("link_id", "delivery_id"),)

    id: int | None = Field(default=None, primary_key=True)
    link_id: int = Field(foreign_key="repository_links.id", index=True)
    delivery_id: str = Field(max_length=100)
    outcome: str = Field(max_length=200)
    attempt_id: int | None = Field(default=None, foreign_key="attempts.id")
    received_at: datetime = Field(default_factory=utcnow)


class RepositoryKey(SQLModel, table=True):
    """A learner's read-only deploy key (or access token) for one private repository on one git host; the secret
    sealed under the key-encryption key, bound to this learner, host and repository."""

    __tablename__ = "repository_keys"
    __table_args__ = (UniqueConstraint("user_id", "host", "repository"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    host: str = Field(max_length=255)
    repository: str = Field(max_length=255)  # owner/name
    kind: str = Field(max_length=16)  # deploy_key | token
    public_key: str = Field(sa_column=Column(Text, nullable=False))  # what the learner adds (a token: its last 4)
    secret_sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None


class DidKey(SQLModel, table=True):
    """An Ed25519 key of the issuer's did:web, for the Data Integrity form of each credential; its private half
    sealed like the signing keys'. Keys are never removed from the DID document: what they signed keeps verifying."""

    __tablename__ = "did_keys"

    id: int | None = Field(default=None, primary_key=True)
    fragment: str = Field(max_length=64, unique=True)  # the key's id in the DID document, after '#'
    public_multibase: str = Field(max_length=128)
    private_key_sealed: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class Certificate(SQLModel, table=True):
    """One certificate per approved, passing attempt (the unique attempt_id makes issuing idempotent)."""

    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("status_list", "status_index"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=36, unique=True, index=True)  # uuid4, unguessable
    attempt_id: int = Field(foreign_key="attempts.id", unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    kid: str = Field(max_length=64)
    issuer_id: str | None = Field(default=None, max_length=1000)  # as signed, whatever the address is now
    token: str = Field(sa_column=Column(Text, nullable=False))
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status_list: int = 1
    status_index: int
    issued_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    revoked_reason: str | None = Field(default=None, max_length=500)
    revoked_by: int | None = Field(default=None, foreign_key="users.id")
    # The same credential with a Data Integrity proof by the issuer's did:web, made once (at issue, or when first
    # asked for by a certificate issued before it existed) and kept.
    credential_ld: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ModuleResult(SQLModel, table=True):
    """A course module a learner passed, as the course operator recorded it (by the learner's e-mail address:
    results may arrive before the learner has an account here)."""

    __tablename__ = "module_results"
    __table_args__ = (UniqueConstraint("email", "course", "module"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, index=True)
    course: str = Field(max_length=64)  # a rubric id
    module: str = Field(max_length=64)
    title: str = Field(max_length=100)
    score: float
    max_score: float
    completed_on: date
    source: str = Field(default="csv", max_length=32)  # csv, admin, api:<token name>
    imported_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """A course platform's key to the module-results API. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    # The rubric ids (courses) the key may write results for, comma-separated; None: every course (a key made
    # before keys were scoped).
    courses: str | None = Field(default=None, max_length=2000)

    @property
    def course_scope(self) -> frozenset[str] | None:
        return None if self.courses is None else frozenset(filter(None, self.courses.split(",")))



class SourceFileRow(SQLModel, table=True):
    """One text file of an assessed commit, as the code view shows it (zlib-compressed UTF-8)."""

    __tablename__ = "source_files"
    __table_args__ = (UniqueConstraint("commit", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    commit: str = Field(max_length=40, index=True)
    path: str = Field(max_length=1000)
    lines: int = 0
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # Its highlighted lines joined by newlines, compressed: Pygments takes ~0.1 s per 1,000 lines here, too slow
    # for a page, so it is done once (in the worker, or on the first view past the worker's budget).
    highlighted: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class LineComment(SQLModel, table=True):
    """A mentor's comment on a line or a range of lines of one attempt's code, optionally tied to a criterion."""

    __tablename__ = "line_comments"
    __table_args__ = (Index("ix_line_comments_attempt", "attempt_id", "path", "start_line"),)

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="attempts.id")
    author_id: int = Field(foreign_key="users.id")
    path: str = Field(max_length=1000)
    start_line: int
    end_line: int
    criterion_id: str | None = Field(default=None, max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    # A reply (by the learner or a mentor) to the comment it names; a reply has the same path and lines.
    parent_id: int | None = Field(default=None, foreign_key="line_comments.id")
    edited_at: datetime | None = None


QUESTION, REGRADE = "question", "regrade"


class CriterionRequest(SQLModel, table=True):
    """A learner's question or regrade request about one criterion of a decided review, and the mentor's answer
    (with the level before and after when it changed)."""

    __tablename__ = "criterion_requests"
    __table_args__ = (Index("ix_criterion_requests_attempt", "attempt_id", "criterion_id"),
                      Index("ix_criterion_requests_open", "answered_at", "attempt_id"))

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="attempts.id")
    criterion_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # question | regrade
    author_id: int = Field(foreign_key="users.id")
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    answered_at: datetime | None = None
    answered_by: int | None = Field(default=None, foreign_key="users.id")
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    level_before: int | None = None
    level_after: int | None = None



class FingerprintRow(SQLModel, table=True):
    """One submission's winnowed fingerprints (assessor.similarity), stored once when it is assessed: a shipped
    sample's have no report and are compared with every course."""

    __tablename__ = "fingerprints"
    __table_args__ = (Index("ix_fingerprints_rubric", "rubric_id", "engine"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int | None = Field(default=None, foreign_key="stored_reports.id", unique=True)
    sample: str | None = Field(default=None, max_length=64, unique=True)
    rubric_id: str | None = Field(default=None, max_length=64)
    engine: str = Field(max_length=120)
    hashes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))   # sorted distinct int64, compressed
    detail: bytes = Field(sa_column=Column(LargeBinary, nullable=False))   # per file, with lines (npz)
    count: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class SimilarityMatch(SQLModel, table=True):
    """A stored submission found to share code with an earlier one (or with a shipped sample)."""

    __tablename__ = "similarity_matches"
    __table_args__ = (Index("ix_similarity_report", "report_id"), Index("ix_similarity_other", "other_report_id"))

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="stored_reports.id")
    other_report_id: int | None = Field(default=None, foreign_key="stored_reports.id")
    other_sample: str | None = Field(default=None, max_length=64)
    percent: float = 0.0            # of the report's code, found in the other
    module: str | None = Field(default=None, max_length=1000)
    module_percent: float = 0.0     # of that module
    fragments: str = Field(default="[]", sa_column=Column(Text, nullable=False))   # JSON, see similarity.Fragment
    created_at: datetime = Field(default_factory=utcnow)


class CommitEmail(SQLModel, table=True):
    """Another address a learner commits with; it counts as theirs in authorship once confirmed by mail."""

    __tablename__ = "commit_emails"
    __table_args__ = (UniqueConstraint("user_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    email: str = Field(max_length=254, index=True)
    confirmed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)

for _statement in (
    "CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
):
    event.listen(Event.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))

# PostgreSQL: the same refusal, as a trigger function (the initial migration creates the same two objects).
for _statement in (
    "CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'events are append-only'; END $$",
    "CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION events_append_only()",
):
    event.listen(Event.__table__, "after_create", DDL(_statement).execute_if(dialect="postgresql"))


class DeploymentSetting(SQLModel, table=True):
    """A setting the web servers publish (the public URL, the issuer, the mail sender), recorded so that every
    worker can be checked against it."""

    __tablename__ = "deployment_settings"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="", sa_column=Column(Text, nullable=False))
    recorded_at: datetime = Field(default_factory=utcnow)
