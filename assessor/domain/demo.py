"""The demo: one command that shows a newcomer the whole product on SQLite.

`prepare_demo` makes (or, run again, reuses) a mentor and a learner account with fresh random passwords, assigns
the mentor to the demo course, records the learner's results in the course's modules (as a course platform
would), and writes the sample capstones as local git repositories under the instance folder's `demo/`. `assessor demo` prints what it made and then serves like `assessor serve`, with local git
sources allowed for that process (and its worker) only.
"""

import secrets
import socket
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from assessor.domain import accounts, modules
from assessor.domain.db import utcnow
from assessor.samples import SAMPLE_KINDS, create_sample_repo

DEMO_RUBRIC = "scalable-architectures-resilient-core"
DEMO_FOLDER = "demo"
LEARNER_EMAIL = "learner@demo.example.org"
MENTOR_EMAIL = "mentor@demo.example.org"
# The Build and Integration modules of Scalable Architectures (weeks 7-18), as the course platform reports them.
DEMO_MODULES = (
    ("sa-07-data-access", "Indexing, query tuning and data access patterns", 88, "2026-09-04"),
    ("sa-09-caching", "Caching with Redis and HTTP cache strategies", 92, "2026-09-18"),
    ("sa-11-auth", "Authentication, sessions, JWT and access control", 79.5, "2026-10-02"),
    ("sa-13-api-safety", "Rate limiting, idempotency and API safety controls", 85, "2026-10-16"),
    ("sa-15-consistency", "Transactions, consistency and distributed trade-offs", 90, "2026-10-30"),
)


@dataclass(frozen=True)
class DemoAccount:
    role: str
    email: str
    password: str
    created: bool  # False: an earlier demo's account, its password reset


@dataclass(frozen=True)
class DemoSetup:
    accounts: tuple[DemoAccount, ...]
    repos: dict[str, Path]  # sample kind -> local repository path
    rubric_id: str


def new_password() -> str:
    """A random password a person can type: 4 groups of 5 lowercase letters and digits (about 100 bits)."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"  # no l/1/o/0 to misread
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def ensure_account(session: Session, *, email: str, role: str, name: str, courses: tuple[str, ...] = ()) -> DemoAccount:
    """Create the account, or reset the existing one: new password, the role and courses, active again."""
    password = new_password()
    user = accounts.find_user(session, email=email)
    if user is None:
        user = accounts.create_user(session, email=email, password=password, role=role, name=name, courses=courses)
        user.email_verified_at = utcnow()  # the demo's own accounts: their addresses need no confirming
        return DemoAccount(role=role, email=email, password=password, created=True)
    user.email_verified_at = user.email_verified_at or utcnow()
    accounts.set_password(session, user=user, password=password)
    accounts.set_role(session, user=user, role=role)
    user.active = True
    session.add(user)
    accounts.set_courses(session, user=user, rubric_ids=courses)
    return DemoAccount(role=role, email=email, password=password, created=False)


SAMPLE_MEANINGS = {"passing": "Python, meets the rubric", "falling-short": "Python, falls short of the rubric",
                   "node-passing": "Node.js + TypeScript with a Redis-backed test, meets the rubric"}


def ensure_sample_repos(root: Path) -> dict[str, Path]:
    """The sample capstones as git repositories under `root`; a complete earlier one is kept."""
    root.mkdir(parents=True, exist_ok=True)
    repos = {}
    for kind in SAMPLE_KINDS:
        dest = root / kind
        if not (dest / ".git" / "HEAD").is_file():
            if dest.exists():  # a half-written earlier attempt
                shutil.rmtree(dest)
            create_sample_repo(kind, dest)
        repos[kind] = dest.resolve()
    return repos


def prepare_demo(engine, instance: Path, *, rubric_id: str = DEMO_RUBRIC) -> DemoSetup:
    """Accounts and sample repositories for the demo (idempotent: a second run reuses them with new passwords)."""
    with Session(engine, expire_on_commit=False) as session:
        made = (
            ensure_account(session, email=MENTOR_EMAIL, role="mentor", name="Demo Mentor", courses=(rubric_id,)),
            ensure_account(session, email=LEARNER_EMAIL, role="learner", name="Demo Learner"),
        )
        rows = modules.check_records(
            [(number, {"email": LEARNER_EMAIL, "course": rubric_id, "module": module, "title": title, "score": score,
                       "max_score": 100, "completed_on": day})
             for number, (module, title, score, day) in enumerate(DEMO_MODULES, start=1)],
            courses={rubric_id})
        modules.import_rows(session, rows, source="demo")
        session.commit()
    repos = ensure_sample_repos(Path(instance) / DEMO_FOLDER)
    return DemoSetup(accounts=made, repos=repos, rubric_id=rubric_id)


def describe(setup: DemoSetup, url: str) -> str:
    """What the person running the demo needs: where to go, how to sign in, what to paste."""
    lines = [
        "",
        "Capstone Assessor demo",
        f"  open {url}",
        "",
        "Sign in as:",
    ]
    for account in setup.accounts:
        state = "new" if account.created else "password reset"
        lines.append(f"  {account.role:<8} {account.email:<28} password {account.password}   ({state})")
    lines += [
        "",
        f"Sample capstones (local git repositories; paste a path into the learner's submit form, course rubric "
        f"{setup.rubric_id}):",
    ]
    for kind, path in setup.repos.items():
        lines.append(f"  {kind:<14} {path}   ({SAMPLE_MEANINGS[kind]})")
    lines += [f"  submit form: {url.rstrip('/')}/learner/submit?rubric={setup.rubric_id}",
              "", "Local git sources are allowed for this demo server only.", ""]
    return "\n".join(lines)


class DemoMailbox:
    """A real SMTP server on loopback for the demo (aiosmtpd): every message is saved as a .eml file."""

    def __init__(self, folder: Path) -> None:
        from aiosmtpd.controller import Controller

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        mailbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
                mailbox.save(envelope.content)
                return "250 Message accepted"

        with socket.socket() as probe:  # aiosmtpd checks its own port on start: it must be a real one
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def save(self, content: bytes) -> Path:
        name = f"{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}.eml"
        path = self.folder / name
        path.write_bytes(content)
        return path

    def start(self) -> int:
        """Start serving; the port it listens on."""
        self.controller.start()
        return self.port

    def stop(self) -> None:
        self.controller.stop()
