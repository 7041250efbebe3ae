"""Fetch a learner's git repository safely: validate the source, then shallow-clone it under time and size limits."""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from assessor.engine import authorship
from assessor.engine.authorship import Authorship, HistoryLimits
from assessor.errors import AssessorError, IntakeError, OutOfRoomError, TransientIntakeError
from assessor.engine.sources import LOCK_FILES

MAX_SOURCE_LENGTH = 1024
MAX_REF_LENGTH = 255
POLL_SECONDS = 0.2
STDERR_TAIL_BYTES = 64 * 1024

# git spells ssh in three ways; all of them mean the ssh transport.
SCHEME_ALIASES = {"git+ssh": "ssh", "ssh+git": "ssh"}
REMOTE_SCHEMES = frozenset({"https", "http", "ssh", "git"})

_URL_WITH_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# git treats "<anything without / or :>::<address>" as "run the helper git-remote-<anything>".
_TRANSPORT_HELPER = re.compile(r"^[^/:]*::")
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_SSH_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")
# RFC 3986 path characters; anything else (spaces, backslashes, non-ASCII) is refused, not guessed at.
_URL_PATH = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_HEX_ABBREVIATION = re.compile(r"^[0-9a-fA-F]{4,40}$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_URL_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s@]*@")

# Applied to every git command: none of it can be overridden by the learner's repository.
_SAFE_GIT_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.symlinks=true",
    "core.autocrlf=false",
    "core.fsmonitor=false",
    "core.attributesFile=/dev/null",
    "credential.helper=",
    "filter.lfs.process=",
    "filter.lfs.smudge=",
    "filter.lfs.clean=",
    "filter.lfs.required=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
)

# Highest-precedence attributes: the in-tree .gitattributes cannot convert line endings, expand $Id$,
# re-encode files or run a filter (LFS or otherwise) during our checkout.
_NEUTRAL_ATTRIBUTES = "* -text !eol -filter -ident !working-tree-encoding\n"

# Operator settings a clean environment still needs to reach the network.
_PASSED_THROUGH_ENV = (
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "SSH_AUTH_SOCK",
)


@dataclass(frozen=True)
class SourcePolicy:
    allowed_schemes: frozenset[str] = frozenset({"https"})   # operator may add "ssh", "http", "git"
    allowed_hosts: frozenset[str] | None = None               # None = any host; else exact hostnames (lower-case)
    allow_local: bool = False                                 # file:// URLs and plain local paths (CLI/demo only)
    # Hosts the operator allows although they resolve to internal addresses (a self-hosted GitLab); lower-case.
    internal_hosts: frozenset[str] = frozenset()
    # Local sources are limited to these folders (and what is under them); None: any folder (the CLI).
    local_roots: tuple[Path, ...] | None = None
    resolve_hosts: bool = True                                # check the addresses a host name resolves to
    # ssh only to these hosts (the git hosts whose keys the operator configured); None: any host ssh is allowed to.
    ssh_hosts: frozenset[str] | None = None


@dataclass(frozen=True)
class GitCredentials:
    """What a private repository needs, held only while git runs: written into the clone's own temporary folder
    (0600), never into the checkout, the environment of anything else, or a message."""

    ssh_private_key: bytes | None = field(default=None, repr=False)  # OpenSSH private key
    known_hosts: tuple[str, ...] = ()  # the operator's lines for the host ("[host]:port ssh-ed25519 AAAA...")
    token: str | None = field(default=None, repr=False)  # an https access token, sent only to token_host
    token_host: str | None = None
    token_user: str = "x-access-token"  # the user name the host expects beside a token (GitLab: oauth2)


@dataclass(frozen=True)
class CloneLimits:
    timeout_seconds: float = 120.0
    max_bytes: int = 200 * 1024 * 1024     # size of the checkout incl. .git
    max_files: int = 20_000


@dataclass(frozen=True)
class Checkout:
    source: str          # the URL/path as displayed (no credentials ever)
    ref: str | None      # what was asked for
    commit: str          # resolved 40-hex SHA
    path: Path           # the working tree
    file_count: int
    size_bytes: int
    committed_at: str | None = None  # the commit's committer date (ISO 8601), as git records it
    tree: str | None = None          # the commit's tree: the same files under another commit or author share it
    authorship: Authorship | None = None   # who wrote it, by the history (when asked for)


# ---------------------------------------------------------------------------------------------------------------
# Validating the source (no network)
# ---------------------------------------------------------------------------------------------------------------

def check_source(source: str, policy: SourcePolicy) -> str:
    """Validate without touching the network; return the normalised URL to clone. Raises IntakeError."""
    text = _check_plain_text(source)
    scheme_match = _URL_WITH_SCHEME.match(text)
    if scheme_match:
        scheme = scheme_match.group(1).lower()
        if scheme == "file":
            return _check_local(_path_of_file_url(text), policy)
        return _check_remote_url(text, SCHEME_ALIASES.get(scheme, scheme), policy)
    if _looks_like_scp(text):
        return _check_scp_like(text, policy)
    return _check_local(text, policy)


def _check_plain_text(source: object) -> str:
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source.strip():
        raise IntakeError("no repository URL was given")
    if _CONTROL_CHARACTER.search(source):
        raise IntakeError("the repository URL contains a line break or control character")
    # Surrounding spaces are a copy-paste accident, not part of the address.
    text = source.strip(" ")
    if len(text) > MAX_SOURCE_LENGTH:
        raise IntakeError(f"the repository URL is longer than {MAX_SOURCE_LENGTH} characters")
    if text.startswith("-"):
        raise IntakeError("the repository URL must not start with '-'")
    if _TRANSPORT_HELPER.match(text):
        raise IntakeError("'<helper>::' transport URLs are not accepted; give the https:// URL of your repository")
    return text


def _looks_like_scp(text: str) -> bool:
    # git's own rule: a colon before any slash means "user@host:path" over ssh, not a local path.
    colon, slash = text.find(":"), text.find("/")
    return colon > 0 and (slash == -1 or colon < slash)


def _check_remote_url(text: str, scheme: str, policy: SourcePolicy) -> str:
    _require_scheme(scheme, policy)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise IntakeError("the repository URL is not a valid URL (check the host and port)") from None
    user = _check_userinfo(parts.netloc, scheme)
    host = _check_host(parts.hostname or "", policy)
    if scheme == "ssh":
        _check_ssh_host(host, policy)
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise IntakeError("the repository URL must not contain '?' or '#'")
    path = _check_url_path(parts.path)
    user_part = f"{user}@" if user else ""
    port_part = f":{port}" if port is not None else ""
    return f"{scheme}://{user_part}{_host_for_url(host)}{port_part}{path}"


def _require_scheme(scheme: str, policy: SourcePolicy) -> None:
    if scheme in REMOTE_SCHEMES and scheme in policy.allowed_schemes:
        return
    accepted = ", ".join(f"{name}://" for name in sorted(policy.allowed_schemes & REMOTE_SCHEMES)) or "none"
    label = "ssh (user@host:path)" if scheme == "ssh" else f"{scheme}://"
    raise IntakeError(f"{label} repository URLs are not accepted here (accepted: {accepted})")


def _check_ssh_host(host: str, policy: SourcePolicy) -> None:
    if policy.ssh_hosts is not None and host not in policy.ssh_hosts:
        accepted = ", ".join(sorted(policy.ssh_hosts)) or "none"
        raise IntakeError(f"ssh is accepted only for the git hosts configured here ({accepted}), not {host}")


def _check_userinfo(netloc: str, scheme: str) -> str | None:
    if "@" not in netloc:
        return None
    user, _, _ = netloc.rpartition("@")
    # An ssh login name ("git@") is an address, not a secret; anything else before '@' is a credential.
    if scheme != "ssh" or ":" in user or not _SSH_USER.match(user):
        raise _credentials_refused()
    return user


def _credentials_refused() -> IntakeError:
    # Deliberately echoes nothing: the URL holds a password or token.
    return IntakeError("the repository URL must not contain a user name, password or token; "
                       "give the public URL of your repository")


def _check_host(host: str, policy: SourcePolicy) -> str:
    host = host.lower()
    if not (_HOST_NAME.match(host) or _is_ipv6(host)):
        raise IntakeError("the repository URL does not contain a valid host name")
    if policy.allowed_hosts is not None and host not in policy.allowed_hosts:
        accepted = ", ".join(sorted(policy.allowed_hosts)) or "none"
        raise IntakeError(f"repositories on {host} are not accepted here (accepted hosts: {accepted})")
    address = literal_address(host)
    if address is not None and host not in policy.internal_hosts and not is_public_address(address):
        raise internal_address_refused()
    return host


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` spells, in any form git and curl accept: 127.0.0.1, 2130706433, 0x7f.1, 127.1, ::1."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if re.fullmatch(r"(0[xX][0-9a-fA-F]+|[0-9]+)(\.(0[xX][0-9a-fA-F]+|[0-9]+)){0,3}", text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


# IPv6 prefixes whose last 32 bits are an IPv4 address: IPv4-compatible (::a.b.c.d, deprecated but still routed
# by some stacks), IPv4-translated (::ffff:0:a.b.c.d) and NAT64 (well-known and local-use).
_EMBEDDING_IPV4 = tuple(ipaddress.IPv6Network(prefix) for prefix in
                        ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48"))


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """False for loopback, private, link-local, CGNAT, multicast, unspecified and reserved addresses, and for the
    IPv4-mapped, IPv4-compatible, IPv4-translated, 6to4 and NAT64 forms of them."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in network for network in _EMBEDDING_IPV4):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not address.is_multicast


def internal_address_refused() -> IntakeError:
    # One message whatever the address and whether anything listens there: no answer tells a port's state.
    return IntakeError("the repository host is on an internal network address, which is not accepted; give the "
                       "public URL of your repository")


@dataclass(frozen=True)
class PinnedHost:
    """The one address of a host that was checked, which git is then told to connect to (no second lookup)."""

    host: str
    port: int
    address: str

    def curl_resolve(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"http.curloptResolve={self.host}:{self.port}:{address}"


def pin_host(url: str, policy: SourcePolicy) -> PinnedHost | None:
    """Resolve the URL's host once and check every address it has; the checked address for git to use.

    Refuses (IntakeError) a host that resolves to an internal address, unless the operator named it. None for
    local sources and for ssh and git:// URLs (their transports take no pinned address; their host is checked).
    """
    if url.startswith("file://") or not policy.resolve_hosts:
        return None
    if "://" in url and literal_address(urlsplit(url).hostname or "") is not None:
        return None  # an address, already checked: there is no name to resolve again, and nothing to pin
    if "://" in url:
        parts = urlsplit(url)
        scheme, host = parts.scheme, (parts.hostname or "").lower()
        port = parts.port or {"https": 443, "http": 80, "git": 9418, "ssh": 22}.get(scheme, 443)
    else:  # user@host:path
        scheme, host, port = "ssh", url.partition(":")[0].rpartition("@")[2].lower(), 22
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        message = f"could not find the host {host}: check the repository URL"
        if getattr(error, "errno", None) == socket.EAI_AGAIN:
            raise TransientIntakeError(message) from None
        raise IntakeError(message) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if host not in policy.internal_hosts and not all(is_public_address(address) for address in addresses):
        raise internal_address_refused()
    if scheme not in ("http", "https") or not addresses:
        return None
    return PinnedHost(host=host, port=port, address=str(addresses[0]))


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _host_for_url(host: str) -> str:
    return f"[{host}]" if _is_ipv6(host) else host


def _check_url_path(path: str) -> str:
    if not path.strip("/"):
        raise IntakeError("the repository URL has no repository path (e.g. https://host/owner/project.git)")
    if not _URL_PATH.match(path):
        raise IntakeError("the repository URL path contains spaces or characters that are not allowed")
    return path


def _check_scp_like(text: str, policy: SourcePolicy) -> str:
    _require_scheme("ssh", policy)
    login, _, path = text.partition(":")
    # "user:password@host:path" parses as host "user" with a path holding the password: refuse it as such.
    if re.match(r"^[^/]*@[^/]*:", path):
        raise _credentials_refused()
    if "[" in login or "]" in login:
        raise IntakeError("bracketed ssh addresses are not supported; use an ssh://host:port/path URL")
    user, _, host = login.rpartition("@")
    if user and not _SSH_USER.match(user):
        raise _credentials_refused()
    host = _check_host(host, policy)
    _check_ssh_host(host, policy)
    if not path or path.startswith("-") or not _URL_PATH.match(path):
        raise IntakeError("the ssh repository address has an empty or invalid path")
    user_part = f"{user}@" if user else ""
    return f"{user_part}{host}:{path}"


def _path_of_file_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise IntakeError("file:// URLs must name a path on this machine (file:///path/to/repo)")
    return unquote(parts.path)


def _check_local(path_text: str, policy: SourcePolicy) -> str:
    if not policy.allow_local:
        raise IntakeError("local paths and file:// URLs are not accepted here; "
                          "give the https:// URL of your repository")
    path = Path(path_text).resolve()
    if policy.local_roots is not None:
        # One answer for a missing folder, one outside the named ones and a non-repository: none tells what exists.
        inside = any(path == root or root in path.parents for root in (root.resolve() for root in policy.local_roots))
        # A `.git` file (gitdir: elsewhere), a linked .git or borrowed objects (alternates) would clone a
        # repository outside the folders named: only a plain repository inside them is one of the samples.
        git_dir = path / ".git"
        if not inside or git_dir.is_symlink() or not git_dir.is_dir() \
                or (git_dir / "objects" / "info" / "alternates").exists() or (git_dir / "commondir").exists():
            raise IntakeError("only the sample repositories this server offers can be given as local paths")
    elif not path.is_dir():
        raise IntakeError(f"local repository not found: {path}")
    # The file:// form (not a bare path) is what makes git honour --depth for local repositories.
    return "file://" + quote(str(path))


# ---------------------------------------------------------------------------------------------------------------
# Validating the ref
# ---------------------------------------------------------------------------------------------------------------

def _check_ref(ref: object) -> str:
    """Apply `git check-ref-format` rules (plus: no leading '-') to a branch, tag or SHA."""
    if not isinstance(ref, str) or not ref.strip():
        raise IntakeError("the branch, tag or commit to assess is empty")
    if _ref_breaks_git_rules(ref):
        raise IntakeError(f"{_shown(ref)} is not a valid branch, tag or commit name")
    return ref


def _ref_breaks_git_rules(ref: str) -> bool:
    components = ref.split("/")
    return (
        len(ref) > MAX_REF_LENGTH
        or ref.startswith("-")
        or ref == "@"
        or bool(_REF_FORBIDDEN.search(ref))
        or ".." in ref
        or "@{" in ref
        or ref.endswith(".")
        or any(not part or part.startswith(".") or part.endswith(".lock") for part in components)
    )


def _shown(text: str, limit: int = 60) -> str:
    """Quote user input for a one-line message, with anything unprintable escaped."""
    printable = text.encode("unicode_escape").decode("ascii")
    return "'" + (printable if len(printable) <= limit else printable[:limit] + "...") + "'"


# ---------------------------------------------------------------------------------------------------------------
# Cloning
# ---------------------------------------------------------------------------------------------------------------

def clone(source: str, dest: Path, *, ref: str | None = None, policy: SourcePolicy = SourcePolicy(),
          limits: CloneLimits = CloneLimits(), history: HistoryLimits | None = None,
          credentials: GitCredentials | None = None) -> Checkout:
    """Shallow-clone `source` at `ref` into `dest` (must not exist or be empty). Raises IntakeError; on any failure dest is removed.

    With `history`, the commits before it are fetched too (as many as the limits allow) and read for authorship."""
    url = check_source(source, policy)
    if ref is not None:
        _check_ref(ref)
    pinned = pin_host(url, policy)
    dest = Path(dest).absolute()
    _claim_destination(dest)
    try:
        with tempfile.TemporaryDirectory(prefix="intake-home-") as scratch:
            session = _GitSession(dest, Path(scratch), policy, limits, pinned, credentials)
            commit = _fetch_and_checkout(session, url, ref)
            file_count, size_bytes = session.enforce_limits()
            committed_at = session.commit_date(commit)
            tree = session.tree_of(commit)
            found = _read_authorship(session, url, commit, history) if history is not None else None
    except BaseException as error:
        _remove_tree(dest)
        if isinstance(error, OSError):
            raise IntakeError(f"could not write the checkout: {error.strerror or error}") from None
        raise
    return Checkout(source=url, ref=ref, commit=commit, path=dest, file_count=file_count, size_bytes=size_bytes,
                    committed_at=committed_at, tree=tree, authorship=found)


# Files whose lines are attributed: the code and the written artifacts, not what tools generate.
_ATTRIBUTED_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".md", ".rst", ".txt", ".adoc",
                        ".yaml", ".yml", ".toml", ".sql", ".html", ".css")


def _read_authorship(session: _GitSession, url: str, commit: str, history: HistoryLimits) -> Authorship:
    """Deepen the shallow clone to `history.commits` commits within its own time budget and the size limit, then
    read who wrote what. Not getting the history is a note, never a failed clone."""
    notes = []
    saved_deadline = session.deadline
    session.deadline = min(saved_deadline, time.monotonic() + history.seconds)
    try:
        result = session.run("fetch", f"--depth={history.commits}", "--no-tags", "--no-recurse-submodules",
                             "--end-of-options", url, commit)
        if not result.ok:
            notes.append(f"the history could not be fetched ({_one_line(result.stderr, 120)}): only the assessed "
                         "commit was read")
    except IntakeError as error:
        notes.append(f"the history was not fetched ({error}): only the assessed commit was read")
        for partial in (session.dest / ".git" / "objects" / "pack").glob("tmp_*"):
            partial.unlink(missing_ok=True)
    # Reading has a budget of its own (blame stops itself in time); the clone's deadline is put back after.
    session.deadline = time.monotonic() + history.blame_seconds + history.seconds
    try:
        shallow = session.run("rev-parse", "--is-shallow-repository").stdout.strip()
        listed = session.history_git("ls-tree", "-r", "-z", "--name-only", commit)
        paths = sorted(path for path in listed[1].split("\0") if path.lower().endswith(_ATTRIBUTED_SUFFIXES)
                       and path.rsplit("/", 1)[-1] not in LOCK_FILES)
        return authorship.collect(session.history_git, commit, paths, limits=history, complete=shallow == "false",
                                  notes=notes)
    finally:
        session.deadline = saved_deadline


def _claim_destination(dest: Path) -> None:
    # A non-empty destination is refused and left alone: it may hold someone else's files.
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise IntakeError(f"the clone destination {dest} already exists and is not empty")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise IntakeError(f"cannot create the clone destination {dest}: {error.strerror or error}") from None


def _remove_tree(dest: Path) -> None:
    if dest.is_symlink() or dest.is_file():
        dest.unlink(missing_ok=True)
    else:
        shutil.rmtree(dest, ignore_errors=True)


def _fetch_and_checkout(session: _GitSession, url: str, ref: str | None) -> str:
    session.run_or_fail("init", "-q", str(session.dest))
    (session.dest / ".git" / "info").mkdir(exist_ok=True)
    (session.dest / ".git" / "info" / "attributes").write_text(_NEUTRAL_ATTRIBUTES)
    target = ref or "HEAD"
    result = session.run("fetch", "--depth=1", "--no-tags", "--no-recurse-submodules", "--end-of-options",
                         url, target)
    if result.ok:
        commit = session.resolve_commit("FETCH_HEAD")
    elif _is_missing_ref(result.stderr) and ref is not None and _HEX_ABBREVIATION.match(ref):
        commit = _fetch_history_and_find(session, url, ref)
    else:
        raise _fetch_error(result.stderr, url, ref)
    session.run_or_fail("checkout", "-q", "--detach", commit)
    return commit


def _fetch_history_and_find(session: _GitSession, url: str, ref: str) -> str:
    # A short SHA (or a server that refuses fetching by SHA) needs the history to look the commit up in.
    result = session.run("fetch", "--no-tags", "--no-recurse-submodules", "--end-of-options", url,
                         "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
    if not result.ok:
        raise _fetch_error(result.stderr, url, ref)
    try:
        return session.resolve_commit(ref)
    except IntakeError:
        raise IntakeError(f"no branch, tag or commit {_shown(ref)} in the repository "
                          "(a short SHA may be ambiguous: give more characters)") from None


@dataclass(frozen=True)
class _GitResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class _GitSession:
    """Runs git in a clean, locked-down environment under one shared time budget and a size watch."""

    def __init__(self, dest: Path, scratch: Path, policy: SourcePolicy, limits: CloneLimits,
                 pinned: PinnedHost | None = None, credentials: GitCredentials | None = None):
        self.dest = dest
        self.scratch = scratch
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout_seconds
        self.git = shutil.which("git")
        if self.git is None:
            raise IntakeError("git is not installed on the assessment server")
        self.env = _clean_environment(scratch, policy, credentials)
        self.config = [arg for setting in _git_config(policy, pinned) for arg in ("-c", setting)]

    def run(self, *args: str, cwd: Path | None = None, whole_output: bool = False) -> _GitResult:
        # Never the caller's working directory: git must not discover some unrelated repository there.
        cwd = cwd or (self.dest if self.dest.is_dir() else self.dest.parent)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            process = subprocess.Popen(
                [self.git, *self.config, *args], cwd=cwd,
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True,  # its own process group, so a kill reaches git-remote-* and ssh too
            )
            try:
                self._watch(process)
            except BaseException:
                # Not yet reaped, so the group id cannot have been reused by an unrelated process.
                _kill_group(process)
                raise
            return _GitResult(process.returncode, _whole(out) if whole_output else _tail(out), _tail(err))

    def history_git(self, *args: str) -> tuple[bool, str]:
        """A read-only git command on the clone, run from an empty folder against an empty work tree, so that
        the learner's own .mailmap is never read (it could map other people's addresses onto theirs)."""
        outside = self.scratch / "outside"
        outside.mkdir(exist_ok=True)
        try:
            result = self.run("-c", "mailmap.file=", "-c", "mailmap.blob=", f"--git-dir={self.dest / '.git'}",
                              f"--work-tree={outside}", *args, cwd=outside, whole_output=True)
        except IntakeError:
            return False, ""
        return result.ok, result.stdout

    def run_or_fail(self, *args: str) -> _GitResult:
        result = self.run(*args)
        if not result.ok:
            raise IntakeError(f"git {args[0]} failed: {_one_line(result.stderr)}")
        return result

    def resolve_commit(self, name: str) -> str:
        result = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}")
        commit = result.stdout.strip()
        if not result.ok or not _FULL_SHA.match(commit):
            raise IntakeError(f"could not resolve {_shown(name)} to a commit")
        return commit

    def tree_of(self, commit: str) -> str | None:
        result = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{commit}^{{tree}}")
        tree = result.stdout.strip()
        return tree if result.ok and _FULL_SHA.match(tree) else None

    def commit_date(self, commit: str) -> str | None:
        result = self.run("show", "-s", "--format=%cI", commit)
        date = result.stdout.strip()
        return date if result.ok and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]+(Z|[+-]\d\d:\d\d)", date) else None

    def enforce_limits(self) -> tuple[int, int]:
        file_count, size_bytes = _measure_tree(self.dest)
        if size_bytes > self.limits.max_bytes:
            raise IntakeError(f"repository is larger than the {_format_size(self.limits.max_bytes)} limit")
        if file_count > self.limits.max_files:
            raise IntakeError(f"repository has more than {self.limits.max_files:,} files (the limit)")
        return file_count, size_bytes

    def _watch(self, process: subprocess.Popen) -> None:
        while True:
            remaining = self.deadline - time.monotonic()
            try:
                process.wait(timeout=max(0.0, min(POLL_SECONDS, remaining)))
                return
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= self.deadline:
                raise IntakeError(f"cloning the repository timed out after {self.limits.timeout_seconds:g} seconds "
                                  "(the host did not answer in time, or the repository is too large)")
            # git has no size limit of its own, so watch what lands on disk while it runs.
            self.enforce_limits()


def _git_config(policy: SourcePolicy, pinned: PinnedHost | None = None) -> list[str]:
    # No redirect is followed: one could lead to an internal address or a host outside the allow-list.
    settings = [*_SAFE_GIT_CONFIG, "http.followRedirects=false"]
    if pinned is not None:
        settings.append(pinned.curl_resolve())  # connect to the address that was checked, with no second lookup
    return settings


def _ssh_command(scratch: Path, credentials: GitCredentials | None) -> str:
    """ssh that trusts only the host keys the operator configured (never on first use), reads no config of its
    own, and offers only the repository's key when there is one."""
    keys = scratch / "ssh"
    keys.mkdir(mode=0o700)
    known_hosts = keys / "known_hosts"
    known_hosts.write_text("".join(f"{line.strip()}\n" for line in (credentials.known_hosts if credentials else ())))
    options = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
               "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", "UpdateHostKeys=no", "-o", "ConnectTimeout=20", "-o", "ForwardAgent=no",
               "-o", "PermitLocalCommand=no", "-o", "ClearAllForwardings=yes"]
    if credentials is not None and credentials.ssh_private_key:
        identity = keys / "id"
        descriptor = os.open(identity, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(credentials.ssh_private_key)
        options += ["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i", str(identity)]
    return " ".join(options)


def _token_config(credentials: GitCredentials | None) -> dict[str, str]:
    """The token as an Authorization header scoped to its own host (git config from the environment, so it is
    in no command line and no URL); redirects are never followed, so it cannot be carried to another host."""
    if credentials is None or not credentials.token or not credentials.token_host:
        return {}
    basic = base64.b64encode(f"{credentials.token_user}:{credentials.token}".encode()).decode("ascii")
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.https://{credentials.token_host}/.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}


def _clean_environment(scratch: Path, policy: SourcePolicy,
                       credentials: GitCredentials | None = None) -> dict[str, str]:
    home = scratch / "home"
    templates = scratch / "templates"
    home.mkdir()
    templates.mkdir()
    env = {name: os.environ[name] for name in _PASSED_THROUGH_ENV if name in os.environ}
    if credentials is not None and credentials.ssh_private_key:
        env.pop("SSH_AUTH_SOCK", None)  # the repository's own key, not whatever an agent holds
    env.update({
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "LC_ALL": "C",  # stderr is matched against English messages below
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TEMPLATE_DIR": str(templates),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": shutil.which("true") or "/bin/true",
        "SSH_ASKPASS": shutil.which("true") or "/bin/true",
        "SSH_ASKPASS_REQUIRE": "never",
        "GIT_SSH_COMMAND": _ssh_command(scratch, credentials),
        "GIT_SSH_VARIANT": "ssh",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "GIT_ALLOW_PROTOCOL": ":".join(_allowed_protocols(policy)),
        **_token_config(credentials),
    })
    return env


def _allowed_protocols(policy: SourcePolicy) -> list[str]:
    protocols = sorted(policy.allowed_schemes & REMOTE_SCHEMES)
    if policy.allow_local:
        protocols.append("file")
    return protocols


_LS_REMOTE_LINE = re.compile(r"^([0-9a-f]{40})\t(\S+)$")


def resolve_commit(source: str, ref: str | None, *, policy: SourcePolicy, timeout_seconds: float = 30.0,
                   credentials: GitCredentials | None = None) -> str | None:
    """The commit `ref` (default HEAD) names in the remote, by `git ls-remote` without cloning; None when unsure.

    A full SHA is its own answer; an abbreviated one, an unknown ref or an unreachable host give None, so the
    caller falls back to cloning, which says precisely what is wrong.
    """
    if ref and _FULL_SHA.match(ref.lower()):
        return ref.lower()
    try:
        url = check_source(source, policy)
        if ref is not None:
            _check_ref(ref)
        pinned = pin_host(url, policy)
    except IntakeError:
        return None
    git = shutil.which("git")
    if git is None:
        return None
    if ref is None:
        wanted = ["HEAD"]
    elif ref.startswith("refs/"):
        wanted = [f"{ref}^{{}}", ref]
    else:
        wanted = [f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"]
    with tempfile.TemporaryDirectory(prefix="ls-remote-") as scratch:
        config = [arg for setting in _git_config(policy, pinned) for arg in ("-c", setting)]
        patterns = [ref, f"{ref}^{{}}"] if ref else ["HEAD"]
        process = subprocess.Popen(
            [git, *config, "ls-remote", "--end-of-options", url, *patterns], cwd=scratch,
            env=_clean_environment(Path(scratch), policy, credentials), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return None
    if process.returncode != 0:
        return None
    found = {}
    for line in output.decode("utf-8", errors="replace").splitlines():
        match = _LS_REMOTE_LINE.match(line.strip())
        if match:
            found[match.group(2)] = match.group(1)
    return next((found[name] for name in wanted if name in found), None)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _tail(stream) -> str:
    stream.seek(0, os.SEEK_END)
    stream.seek(max(0, stream.tell() - STDERR_TAIL_BYTES))
    return stream.read().decode("utf-8", errors="replace")


WHOLE_OUTPUT_BYTES = 64 * 1024 * 1024


def _whole(stream) -> str:
    stream.seek(0)
    return stream.read(WHOLE_OUTPUT_BYTES).decode("utf-8", errors="replace")


def _measure_tree(root: Path) -> tuple[int, int]:
    """Return (files outside .git, bytes including .git); never follows symlinks, tolerates files vanishing."""
    file_count = size_bytes = 0
    pending = [(str(root), False)]
    while pending:
        directory, inside_git = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, inside_git or (directory == str(root) and entry.name == ".git")))
                    continue
                size_bytes += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            if not inside_git:
                file_count += 1
    return file_count, size_bytes


def _format_size(byte_count: int) -> str:
    megabytes = byte_count / (1024 * 1024)
    if megabytes >= 1:
        return f"{megabytes:.1f}".rstrip("0").rstrip(".") + " MB"
    return f"{byte_count / 1024:.0f} KB"


# ---------------------------------------------------------------------------------------------------------------
# Explaining failures
# ---------------------------------------------------------------------------------------------------------------

_MISSING_REF = ("couldn't find remote ref", "not our ref", "unadvertised object", "no such ref")
_NO_HOST = ("could not resolve host", "name or service not known", "temporary failure in name resolution",
            "could not resolve hostname")
_NO_CONNECTION = ("failed to connect", "connection refused", "couldn't connect to server", "network is unreachable",
                  "no route to host", "connection timed out", "connection reset")
_TLS = ("ssl certificate problem", "server certificate verification failed", "ssl_connect", "gnutls_handshake",
        "tls connect error")
_SSH_REFUSED = ("permission denied (publickey", "host key verification failed")
_HOST_KEY_CHANGED = ("remote host identification has changed", "host key verification failed",
                     "no matching host key type", "host key for", "is not in the known_hosts")
_KEY_NOT_ADDED = ("permission denied (publickey",)
_NO_REPOSITORY = ("repository not found", "does not appear to be a git repository", "not found",
                  "authentication failed", "could not read username", "could not read password",
                  "returned error: 401", "returned error: 403", "returned error: 404", "not valid: is this a git")


def _is_missing_ref(stderr: str) -> bool:
    return _mentions(stderr, _MISSING_REF)


def _mentions(stderr: str, phrases: tuple[str, ...]) -> bool:
    lowered = stderr.lower()
    return any(phrase in lowered for phrase in phrases)


_TRANSIENT_DNS = ("temporary failure in name resolution",)
_REDIRECTED = ("returned error: 301", "returned error: 302", "returned error: 303", "returned error: 307",
               "returned error: 308", "redirect")


_OUT_OF_ROOM = ("no space left on device", "disk quota exceeded")


def _fetch_error(stderr: str, url: str, ref: str | None) -> AssessorError:
    """The learner's error, or a transient one (the network, not the URL) that the queue retries, or the
    service's own (out of disk space), which names no path."""
    if _mentions(stderr, _OUT_OF_ROOM):
        return OutOfRoomError("the service ran out of disk space while cloning; the attempt waits until there is "
                              "room (nothing is wrong with the repository)")
    transient = _mentions(stderr, _NO_CONNECTION) or _mentions(stderr, _TRANSIENT_DNS)
    return (TransientIntakeError if transient else IntakeError)(_explain_fetch_failure(stderr, url, ref))


def _explain_fetch_failure(stderr: str, url: str, ref: str | None) -> str:
    host = _host_of(url)
    shown_url = _URL_USERINFO.sub(r"\1", url)
    if _mentions(stderr, _NO_HOST):
        return f"could not find the host {host}: check the repository URL"
    if _mentions(stderr, _NO_CONNECTION) or _mentions(stderr, _TLS):
        # One message for refused, unreachable and not-TLS alike: the answer must not tell a port's state.
        return f"could not connect to {host} over a secure connection: check the repository URL"
    if _mentions(stderr, _REDIRECTED):
        return (f"{host} answered with a redirect, which is not followed: if the repository has moved, submit its "
                f"new URL")
    if _mentions(stderr, _HOST_KEY_CHANGED):
        return (f"{host} did not present the host key configured for it: its key changed, or this is not {host}. "
                f"Nothing was fetched; the operator checks the host's published keys")
    if _mentions(stderr, _KEY_NOT_ADDED):
        return (f"{host} refused the deploy key: add the key shown on your repositories page to the repository "
                f"(read-only), or check that it is the key of this repository")
    if _mentions(stderr, _SSH_REFUSED):
        return f"the ssh server {host} refused the connection (unknown host key or no access)"
    if _mentions(stderr, _MISSING_REF):
        if ref is None:
            return "the repository is empty: its default branch has no commits"
        return f"no branch, tag or commit {_shown(ref)} in the repository"
    if _mentions(stderr, _NO_REPOSITORY):
        if not url.startswith(("https://", "http://", "git://", "file://")):
            return (f"repository not found at {shown_url}: was it renamed or moved? (a deploy key opens only the "
                    f"repository it was added to)")
        return f"repository not found at {shown_url} (check the URL, and that the repository is public)"
    return f"git could not fetch the repository: {_one_line(stderr)}"


def _host_of(url: str) -> str:
    if url.startswith("file://"):
        return "this machine"
    if "://" in url:
        return urlsplit(url).hostname or "the host"
    return url.partition(":")[0].rpartition("@")[2]


def _one_line(stderr: str, limit: int = 200) -> str:
    """The last meaningful line of git's output, credentials stripped, fit for a one-line message."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.lower().startswith(("fatal:", "error:"))]
    line = (fatal or lines or ["no error message"])[-1]
    line = re.sub(r"^(fatal|error):\s*", "", line, flags=re.IGNORECASE)
    line = _URL_USERINFO.sub(r"\1", line)
    line = _CONTROL_CHARACTER.sub(" ", line)
    return line if len(line) <= limit else line[:limit] + "..."
