"""Private repositories without a learner's password: a read-only deploy key (or an access token) per learner and
repository, sealed at rest, handed to git only while it clones, and the git hosts the operator trusts by their
published host keys (nothing is trusted on first use)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlmodel import Session, select

from assessor.certificates.sealing import seal, unseal
from assessor.domain.db import utcnow
from assessor.errors import AssessorError, CertificateError
from assessor.engine.intake import GitCredentials
from assessor.domain.models import RepositoryKey, User

DEPLOY_KEY, TOKEN = "deploy_key", "token"
KINDS = ("github", "gitlab", "gitea")
MAX_KEYS_PER_LEARNER = 20
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){1,4}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_HOST_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) "
                       r"[A-Za-z0-9+/]+={0,2}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{8,400}$")
# The user name each kind of host expects beside an access token over https.
TOKEN_USERS = {"github": "x-access-token", "gitlab": "oauth2", "gitea": "oauth2"}
# Where a repository's owner adds a read-only deploy key, in the host's own words.
DEPLOY_KEY_STEPS = {
    "github": ("Open the repository on GitHub, then Settings → Deploy keys → Add deploy key.",
               "Paste the key, give it a title, and leave \"Allow write access\" unticked.", "Click Add key."),
    "gitlab": ("Open the project on GitLab, then Settings → Repository → Deploy keys → Add new key.",
               "Paste the key, give it a title, and leave \"Grant write permissions to this key\" unticked.",
               "Click Add key."),
    "gitea": ("Open the repository on Gitea or Forgejo, then Settings → Deploy keys → Add deploy key.",
              "Paste the key, give it a title, and leave \"Enable write access\" unticked.", "Click Add deploy key."),
}


class RepositoryAccessError(AssessorError):
    """A deploy key or token cannot be added, removed or used (with what to do about it)."""


@dataclass(frozen=True)
class GitHost:
    """A git host the operator trusts, by the host keys it publishes."""

    host: str
    kind: str
    host_keys: tuple[str, ...]
    port: int = 22
    ssh_user: str = "git"
    name: str = ""
    internal: bool = False  # reachable at an internal address, and the operator allows that

    @property
    def label(self) -> str:
        return self.name or self.host

    def known_hosts(self) -> tuple[str, ...]:
        pattern = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return tuple(f"{pattern} {key}" for key in self.host_keys)

    def ssh_url(self, repository: str) -> str:
        port = "" if self.port == 22 else f":{self.port}"
        path = repository if repository.startswith("/") else f"/{repository}"
        return f"ssh://{self.ssh_user}@{self.host}{port}{path}" + ("" if path.endswith(".git") else ".git")

    def https_url(self, repository: str) -> str:
        return f"https://{self.host}/{repository.strip('/')}.git"


def parse_git_hosts(value: Any) -> tuple[GitHost, ...]:
    """The operator's ASSESSOR_GIT_HOSTS: a list of {host, kind, host_keys[, port, ssh_user, name, internal]}."""
    if value in (None, "", []):
        return ()
    if not isinstance(value, list):
        raise RepositoryAccessError("ASSESSOR_GIT_HOSTS must be a JSON list of hosts")
    hosts = []
    for index, entry in enumerate(value):
        where = f"ASSESSOR_GIT_HOSTS[{index}]"
        if not isinstance(entry, dict):
            raise RepositoryAccessError(f"{where} must be an object")
        unknown = set(entry) - {"host", "kind", "host_keys", "port", "ssh_user", "name", "internal"}
        if unknown:
            raise RepositoryAccessError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        host = str(entry.get("host", "")).strip().lower()
        if not _HOST.match(host):
            raise RepositoryAccessError(f"{where}: 'host' must be a host name")
        kind = str(entry.get("kind", "")).strip().lower()
        if kind not in KINDS:
            raise RepositoryAccessError(f"{where}: 'kind' must be one of {', '.join(KINDS)}")
        keys = entry.get("host_keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and _HOST_KEY.match(k.strip())
                                                            for k in keys):
            raise RepositoryAccessError(f"{where}: 'host_keys' must list the host's published ssh keys "
                                        f"('ssh-ed25519 AAAA...'): nothing is trusted on first use")
        port = entry.get("port", 22)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise RepositoryAccessError(f"{where}: 'port' must be a port number")
        user = str(entry.get("ssh_user", "git"))
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", user):
            raise RepositoryAccessError(f"{where}: 'ssh_user' is not a user name")
        hosts.append(GitHost(host=host, kind=kind, host_keys=tuple(k.strip() for k in keys), port=port,
                             ssh_user=user, name=str(entry.get("name") or "")[:60],
                             internal=bool(entry.get("internal", False))))
    if len({(h.host, h.port) for h in hosts}) != len(hosts):
        raise RepositoryAccessError("ASSESSOR_GIT_HOSTS lists a host twice")
    return tuple(hosts)


def find_host(hosts: tuple[GitHost, ...], name: str) -> GitHost | None:
    return next((host for host in hosts if host.host == (name or "").strip().lower()), None)


def check_repository(path: str) -> str:
    """owner/name (or group/subgroup/name): plain path parts only."""
    text = (path or "").strip().strip("/").removesuffix(".git")
    if not _REPOSITORY.match(text) or any(part in (".", "..") or part.startswith(".") for part in text.split("/")):
        raise RepositoryAccessError("give the repository as owner/name, as in its address on the host")
    return text


def _binding(user_id: int, host: str, repository: str, kind: str) -> str:
    # The sealed secret opens only in its own row: moved to another learner or repository, it does not decrypt.
    return f"repository-{kind}:{user_id}:{host}:{repository}"


def _existing(session: Session, *, user_id: int, host: str, repository: str) -> RepositoryKey | None:
    return session.exec(select(RepositoryKey).where(RepositoryKey.user_id == user_id, RepositoryKey.host == host,
                                                    RepositoryKey.repository == repository)).first()


def _check_room(session: Session, user: User) -> None:
    if len(keys_of(session, user=user)) >= MAX_KEYS_PER_LEARNER:
        raise RepositoryAccessError(f"at most {MAX_KEYS_PER_LEARNER} repositories per account: remove one first")


def add_deploy_key(session: Session, *, user: User, host: GitHost, repository: str, kek: bytes) -> RepositoryKey:
    """A new read-only deploy key for one repository (the existing one when it already has a key)."""
    repository = check_repository(repository)
    existing = _existing(session, user_id=user.id, host=host.host, repository=repository)
    if existing is not None:
        if existing.kind != DEPLOY_KEY:
            raise RepositoryAccessError("this repository has an access token: remove it to use a deploy key instead")
        return existing
    _check_room(session, user)
    private = Ed25519PrivateKey.generate()
    comment = f"capstone-assessor {repository} (read-only)"
    public = private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
    secret = private.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    row = RepositoryKey(user_id=user.id, host=host.host, repository=repository, kind=DEPLOY_KEY,
                        public_key=f"{public} {comment}",
                        secret_sealed=seal(secret, kek=kek, kid=_binding(user.id, host.host, repository, DEPLOY_KEY)),
                        created_at=utcnow())
    session.add(row)
    session.commit()
    return row


def add_token(session: Session, *, user: User, host: GitHost, repository: str, token: str,
              kek: bytes) -> RepositoryKey:
    """A fine-grained read-only access token for one repository, for hosts without deploy keys."""
    repository = check_repository(repository)
    token = (token or "").strip()
    if not _TOKEN.match(token):
        raise RepositoryAccessError("that does not look like an access token (8 to 400 characters, no spaces)")
    if _existing(session, user_id=user.id, host=host.host, repository=repository) is not None:
        raise RepositoryAccessError("this repository already has a key or token: remove it first")
    _check_room(session, user)
    row = RepositoryKey(user_id=user.id, host=host.host, repository=repository, kind=TOKEN,
                        public_key=f"token …{token[-4:]}",
                        secret_sealed=seal(token.encode(), kek=kek,
                                           kid=_binding(user.id, host.host, repository, TOKEN)),
                        created_at=utcnow())
    session.add(row)
    session.commit()
    return row


def keys_of(session: Session, *, user: User) -> list[RepositoryKey]:
    return list(session.exec(select(RepositoryKey).where(RepositoryKey.user_id == user.id)
                             .order_by(RepositoryKey.created_at, RepositoryKey.id)))


def remove_key(session: Session, *, user: User, key_id: int) -> None:
    """Delete the key or token: the sealed secret is gone from the database with its row."""
    row = session.get(RepositoryKey, key_id)
    if row is None or row.user_id != user.id:
        raise RepositoryAccessError("no such key on your account")
    session.delete(row)
    session.commit()


def source_address(source: str) -> tuple[str, str] | None:
    """(host, owner/name) of an ssh or https repository address, or None."""
    text = (source or "").strip()
    if "://" in text:
        parts = urlsplit(text)
        host, path = (parts.hostname or ""), parts.path
    elif re.match(r"^[A-Za-z0-9._-]+@[^:/]+:", text):
        host, _, path = text.partition("@")[2].partition(":")
    else:
        return None
    try:
        return host.lower(), check_repository(path)
    except RepositoryAccessError:
        return None


def credentials_for(session: Session, *, user_id: int, source: str, hosts: tuple[GitHost, ...],
                    kek: bytes | None) -> GitCredentials | None:
    """What git needs to clone `source` for this learner: the repository's key and the host's keys, its token,
    or, for a configured host without one, the host keys alone."""
    address = source_address(source)
    host = find_host(hosts, address[0]) if address else None
    if host is None:
        return None
    is_ssh = not source.strip().lower().startswith(("https://", "http://"))
    row = _existing(session, user_id=user_id, host=host.host, repository=address[1])
    if row is None or kek is None:
        return GitCredentials(known_hosts=host.known_hosts()) if is_ssh else None
    try:
        secret = unseal(row.secret_sealed, kek=kek, kid=_binding(user_id, host.host, row.repository, row.kind))
    except CertificateError as error:
        raise RepositoryAccessError(f"the key of {host.host}/{row.repository} cannot be opened here: {error}") \
            from None
    row.last_used_at = utcnow()
    session.add(row)
    session.commit()
    if row.kind == DEPLOY_KEY:
        return GitCredentials(ssh_private_key=secret, known_hosts=host.known_hosts()) if is_ssh else None
    if is_ssh:
        return GitCredentials(known_hosts=host.known_hosts())
    return GitCredentials(token=secret.decode(), token_host=host.host, token_user=TOKEN_USERS[host.kind])
