"""Run untrusted commands in a bubblewrap sandbox under an unprivileged uid, with limits and capped output."""

import fcntl
import os
import pwd
import random
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from assessor.errors import SandboxError

MIB = 1024 * 1024
# The results channel: a pipe whose write end the command finds in this variable; this process reads it as it fills.
RESULTS_FD_VARIABLE = "ASSESSOR_RESULTS_FD"
MAX_RESULTS_BYTES = 96 * MIB
# Each run gets its own uid from this pool, so RLIMIT_NPROC counts only that run's processes and
# no run can signal, ptrace or read another run's processes.
UID_POOL_START = 61000
UID_POOL_SIZE = 1000
UID_LOCK_DIR = Path("/run/capstone-assessor/sandbox-uids")
# Read-only /etc entries a Python test suite plausibly needs; nothing holding secrets (no shadow,
# no passwd: a synthetic one is provided).
ETC_ALLOWLIST = (
    "alternatives", "ca-certificates", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
    "mime.types", "nsswitch.conf", "protocols", "services", "ssl/certs", "ssl/openssl.cnf", "timezone", "os-release",
    "debian_version", "fonts", "gai.conf",
)
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
SYSTEM_PYTHON = Path("/usr/bin/python3")
SANDBOX_HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
SERVICE_ROOT = Path(__file__).resolve().parents[2]
# The sandbox's pid 1: runs the command as its child (so CPU and memory use reach our wait4, and the
# command keeps normal signal semantics), and kills the whole namespace when the service's end of the
# lifeline pipe closes, i.e. when the service dies, even in the instant before bwrap's own
# --die-with-parent is armed.
PID1_SOURCE = """\
import os, select, sys
lifeline, argv = int(sys.argv[1]), sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.close(lifeline)
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        os.write(2, f"sandbox: cannot run {argv[0]}: {error.strerror}\\n".encode())
        os._exit(127)
child = os.pidfd_open(pid)
poller = select.poll()
poller.register(child, select.POLLIN)
poller.register(lifeline, select.POLLIN | select.POLLHUP)
while True:
    ready = {fd for fd, _ in poller.poll()}
    if child in ready:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        os._exit(code if code >= 0 else 128 - code)
    if lifeline in ready:
        os.kill(-1, 9)
        os._exit(137)
"""
KILL_REASONS = ("wall_time", "cpu_time", "memory", "processes", "file_size", "output", "disk")


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed command; a rubric may override any of them."""

    wall_seconds: float = 300.0
    cpu_seconds: int = 240          # per process (RLIMIT_CPU)
    memory_mb: int = 2048           # address space per process (RLIMIT_AS); with address_space_mb, the run's memory
    # A larger address space per process, for runtimes that reserve far more than they use (V8 reserves ~10 GB per
    # WebAssembly instance). The run's processes together are then held to memory_mb of proportional set size.
    address_space_mb: int | None = None
    processes: int = 128            # processes of the run's uid at once (RLIMIT_NPROC)
    file_size_mb: int = 256         # largest single file (RLIMIT_FSIZE)
    open_files: int = 512           # RLIMIT_NOFILE
    output_bytes: int = 64 * 1024   # output kept: first half and last half
    max_output_mb: int = 2048       # output read before the run is killed for flooding
    tmp_mb: int = 512               # private /tmp, a tmpfs inside the sandbox
    shm_mb: int = 64                # /dev/shm (POSIX shared memory), a tmpfs inside the sandbox
    workdir_mb: int = 1024          # the writable work area (see size_capped_dir)

    def __post_init__(self) -> None:
        for limit in fields(self):
            if limit.name == "address_space_mb" and self.address_space_mb is None:
                continue
            if not getattr(self, limit.name) > 0:
                raise ValueError(f"sandbox limit {limit.name} must be positive")
        if self.processes < 8:
            raise ValueError("sandbox limit processes must be at least 8 (the sandbox itself needs some)")


def limits_from_mapping(mapping: Mapping[str, object], base: SandboxLimits | None = None) -> SandboxLimits:
    """SandboxLimits with the rubric's overrides applied; unknown names or bad values raise ValueError."""
    base = base or SandboxLimits()
    known = {field.name for field in fields(SandboxLimits)}
    changes: dict[str, float | int] = {}
    for name, value in mapping.items():
        if name not in known:
            raise ValueError(f"unknown sandbox limit {name!r} (known: {', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"sandbox limit {name} must be a number, not {value!r}")
        changes[name] = float(value) if name == "wall_seconds" else int(value)
    return replace(base, **changes)


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one sandboxed command; learner failures are results, not errors."""

    exit_code: int | None
    killed_by: str | None
    output_head: str
    output_tail: str
    output_bytes_total: int
    output_truncated: bool
    wall_seconds: float
    cpu_seconds: float
    max_rss_mb: float
    backend: str
    peak_processes: int | None = None
    uid: int | None = None
    # What the command wrote to its results channel (`results_channel=True`), read by this process as it came.
    results: bytes | None = field(default=None, repr=False)
    results_overflow: bool = False

    @property
    def output(self) -> str:
        """Head and tail joined, with a marker where the middle was dropped."""
        if not self.output_truncated:
            return self.output_head + self.output_tail
        dropped = self.output_bytes_total - len(self.output_head.encode()) - len(self.output_tail.encode())
        return f"{self.output_head}\n[... {max(dropped, 0)} bytes of output omitted ...]\n{self.output_tail}"

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "results"}


class OutputKeeper:
    """Keeps the first and last `limit // 2` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk[-self.half:]
            if len(self.tail) > 2 * self.half:
                del self.tail[: len(self.tail) - self.half]

    def texts(self) -> tuple[str, str, bool]:
        truncated = self.total > len(self.head) + len(self.tail[-self.half:])
        tail = bytes(self.tail[-self.half:])
        return self.head.decode(errors="replace"), tail.decode(errors="replace"), truncated


@lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    # Looked up on a fixed system path: the service's own PATH must not decide what runs as the sandbox.
    return shutil.which("bwrap", path=SYSTEM_PATH)


@lru_cache(maxsize=1)
def bubblewrap_available() -> bool:
    """True when bubblewrap is installed and can create its namespaces on this machine."""
    path = bwrap_path()
    if not path:
        return False
    probe = [path, "--unshare-all", "--unshare-user", "--die-with-parent", *_system_binds(), "--", "/usr/bin/true"]
    try:
        done = subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def protected_paths() -> list[Path]:
    """Host paths that must never be visible in a sandbox: the service, its venv and its instance data."""
    paths = [SERVICE_ROOT, Path(sys.prefix), Path("/etc"), Path("/root")]
    for variable in ("ASSESSOR_INSTANCE", "ASSESSOR_INSTANCE_PATH", "FLASK_INSTANCE_PATH"):
        if os.environ.get(variable):
            paths.append(Path(os.environ[variable]))
    try:
        from assessor.config import resolve_paths
    except ImportError:
        pass
    else:
        paths.append(resolve_paths().instance)
    return [path.resolve() for path in paths]


def check_bind_allowed(path: Path) -> Path:
    """The resolved path, or SandboxError when binding it would expose something protected."""
    resolved = path.resolve()
    if not resolved.is_dir():
        raise SandboxError(f"sandbox directory {path} does not exist")
    for protected in protected_paths():
        if resolved == protected or protected in resolved.parents or resolved in protected.parents:
            raise SandboxError(f"refusing to expose {resolved} in the sandbox: it overlaps protected {protected}")
    return resolved


def make_reachable(path: Path) -> None:
    """Let the sandbox uid reach `path`: add search (o+x, never read or write) to the service's own ancestors.

    A directory the service does not own, or a protected one, is left alone and reported instead.
    """
    protected = protected_paths()
    for ancestor in [*reversed(path.parents), path]:
        info = ancestor.stat()
        if info.st_mode & stat.S_IXOTH:
            continue
        if info.st_uid != os.geteuid() or ancestor in protected or ancestor == Path("/"):
            raise SandboxError(
                f"{ancestor} is not searchable by other users (mode {stat.filemode(info.st_mode)}), so the "
                f"sandbox uid cannot reach {path}: keep sandbox directories under a directory with o+x"
            )
        os.chmod(ancestor, stat.S_IMODE(info.st_mode) | stat.S_IXOTH)


def open_to_sandbox(folder: Path) -> None:
    """Make a prepared folder (a venv, node_modules, tools) readable, never writable, by the sandbox uids,
    whatever the umask was. Links are left alone."""
    for dirpath, dirnames, filenames in os.walk(folder):
        os.chmod(dirpath, os.stat(dirpath).st_mode & 0o7777 | 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode & 0o7777
            os.chmod(path, (mode | 0o644 | (0o111 if mode & 0o100 else 0)) & ~0o022)


def reclaim(folder: Path) -> None:
    """Take back a folder a sandboxed run wrote (its files belong to that run's uid), without following links."""
    uid, gid = os.geteuid(), os.getegid()
    os.chown(folder, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def is_size_capped(path: Path, size_mb: int) -> bool:
    """True when the filesystem holding `path` is no larger than the cap (a tmpfs from size_capped_dir)."""
    info = os.statvfs(path)
    return info.f_blocks * info.f_frsize <= size_mb * MIB * 1.05


@contextmanager
def size_capped_dir(path: Path, size_mb: int, inodes: int | None = None) -> Iterator[bool]:
    """Create `path` as a tmpfs of `size_mb` (as root), so a run cannot fill the disk; yields whether capped.
    `inodes`: how many files it must hold at least (by default 64 a megabyte).

    Without root it is a plain directory and run_sandboxed watches its size instead. Everything in it is
    discarded on exit.
    """
    path.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount"):
        options = f"size={size_mb}m,nr_inodes={max(size_mb * 64, 4096, inodes or 0)},mode=0755,nosuid,nodev"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "assessor-run", str(path)],
                              capture_output=True, timeout=30)
        mounted = done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            done = subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
            if done.returncode != 0:
                subprocess.run(["umount", "--lazy", str(path)], capture_output=True, timeout=30)
        shutil.rmtree(path, ignore_errors=True)


def processes_of_uid(uid: int) -> list[int]:
    """Pids of every live (not zombie) process owned by `uid` on the host, sandboxed ones included."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/stat", "rb") as status:
                state = status.read().rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            found.append(int(entry.name))
    return found


def proportional_memory_mb(pids: list[int]) -> float:
    """The processes' memory together (Pss, so pages they share are counted once in all), in MiB."""
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
                for line in rollup:
                    if line.startswith(b"Pss:"):
                        total_kb += int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total_kb / 1024


def kill_uid_processes(uid: int, *, spare: int | None = None, attempts: int = 100) -> int:
    """SIGKILL everything owned by `uid` (except `spare`) until nothing is left; returns how many were seen."""
    seen: set[int] = set()
    for _ in range(attempts):
        pids = [pid for pid in processes_of_uid(uid) if pid != spare]
        if not pids:
            break
        for pid in pids:
            seen.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)
    return len(seen)


@contextmanager
def sandbox_uid() -> Iterator[int]:
    """A uid from the pool that no other run holds, locked for the duration; stale processes are killed."""
    UID_LOCK_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    reap_orphans()
    start = random.randrange(UID_POOL_SIZE)
    for offset in range(UID_POOL_SIZE):
        uid = UID_POOL_START + (start + offset) % UID_POOL_SIZE
        lock = None if _uid_has_account(uid) else _try_lock(uid)
        if lock is None:
            continue
        try:
            kill_uid_processes(uid)
            yield uid
        finally:
            kill_uid_processes(uid)
            os.close(lock)
        return
    raise SandboxError("no free sandbox uid: too many concurrent runs")


def reap_orphans() -> int:
    """Kill the processes of pool uids that no run holds: left behind when a supervisor died mid-run."""
    owners = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                owners.add(entry.stat(follow_symlinks=False).st_uid)
            except OSError:
                continue
    reaped = 0
    for uid in sorted(owners & set(range(UID_POOL_START, UID_POOL_START + UID_POOL_SIZE))):
        lock = _try_lock(uid)
        if lock is not None:
            try:
                reaped += kill_uid_processes(uid)
            finally:
                os.close(lock)
    return reaped


def _try_lock(uid: int) -> int | None:
    """An fd holding the pool lock for `uid`, or None when a live run holds it (locks die with their holder)."""
    lock = os.open(UID_LOCK_DIR / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return None
    return lock


def _uid_has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _give_to(directory: Path, uid: int) -> None:
    """Hand the writable work area to the run's uid, never following a link the learner may have planted."""
    os.chown(directory, uid, uid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


def _system_binds() -> list[str]:
    """Read-only /usr plus the merged-/usr symlinks (or directories) the way the host has them."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    return args


def _data_fd(text: str) -> int:
    """A pipe's read end holding `text`, for bwrap's --ro-bind-data."""
    read_end, write_end = os.pipe()
    os.write(write_end, text.encode())
    os.close(write_end)
    return read_end


def _sandbox_env(venv: Path | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    """A minimal environment: nothing of the service's own (which may hold secrets) reaches the command."""
    env = {
        "PATH": (f"{venv}/bin:" if venv else "") + "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "USER": "learner",
        "LOGNAME": "learner",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
    }
    if venv:
        env["VIRTUAL_ENV"] = str(venv)
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not isinstance(value, str) or "=" in key or not key:
            raise SandboxError(f"bad sandbox environment variable {key!r}")
        env[key] = value
    return env


def _bwrap_argv(argv: Sequence[str], *, workdir: Path, cwd: Path, venv: Path | None, limits: SandboxLimits,
                env: Mapping[str, str], readonly_binds: Sequence[Path], status_fd: int, lifeline_fd: int,
                data_fds: Mapping[str, int], tmpfs_dirs: Sequence[str] = (),
                binds: Sequence[tuple[Path, Path]] = ()) -> list[str]:
    args = [
        bwrap_path(), "--die-with-parent", "--new-session", "--unshare-all", "--unshare-user", "--disable-userns",
        "--cap-drop", "ALL", "--hostname", "sandbox", "--clearenv", "--json-status-fd", str(status_fd),
        # Our own pid 1 (PID1_SOURCE) instead of bwrap's init, which exits without being reaped.
        "--as-pid-1",
        *_system_binds(),
        "--proc", "/proc", "--dev", "/dev",
        # bubblewrap's /dev/shm is unbounded: shared memory written there is the host's memory.
        "--size", str(limits.shm_mb * MIB), "--perms", "1777", "--tmpfs", "/dev/shm",
        "--size", str(limits.tmp_mb * MIB), "--perms", "1777", "--tmpfs", "/tmp",
    ]
    for name in ETC_ALLOWLIST:
        if os.path.exists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for target, fd in data_fds.items():
        args += ["--ro-bind-data", str(fd), target]
    if venv is not None:
        args += ["--ro-bind", str(venv), str(venv)]
    for directory in tmpfs_dirs:
        # Small writable folders at fixed places (a server's socket folder such as /run/postgresql).
        args += ["--size", str(MIB), "--perms", "1777", "--tmpfs", directory]
    if tmpfs_dirs:
        args += ["--symlink", "../run", "/var/run"]
    for path in readonly_binds:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--bind", str(workdir), str(workdir)]
    for source, destination in binds:  # after the work area, so they sit on top of it
        args += ["--bind", str(source), str(destination)]
    args += ["--remount-ro", "/", "--chdir", str(cwd)]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, "--", str(SYSTEM_PYTHON), "-I", "-S", "-c", PID1_SOURCE, str(lifeline_fd), *argv]


def _prlimit_argv(limits: SandboxLimits) -> list[str]:
    """Limits applied by exec wrappers (no preexec_fn, which is unsafe in threaded servers).

    setpriv makes the command die with the service from its first instruction, before bwrap's own
    --die-with-parent is in place; prlimit sets the rlimits.
    """
    return [
        shutil.which("setpriv", path=SYSTEM_PATH) or "/usr/bin/setpriv", "--pdeathsig", "KILL", "--",
        shutil.which("prlimit", path=SYSTEM_PATH) or "/usr/bin/prlimit",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 2}",
        f"--as={(limits.address_space_mb or limits.memory_mb) * MIB}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_size_mb * MIB}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
    ]


def run_sandboxed(argv: Sequence[str], *, workdir: Path, venv: Path | None, limits: SandboxLimits,
                  unsafe_no_sandbox: bool = False, env: Mapping[str, str] | None = None,
                  readonly_binds: Sequence[Path] = (), cwd: Path | None = None, hosts: Sequence[str] = (),
                  tmpfs_dirs: Sequence[str] = (), binds: Sequence[tuple[Path, Path]] = (),
                  results_channel: bool = False) -> SandboxResult:
    """Run `argv` with only `workdir` writable, `venv` and `readonly_binds` read-only, and the limits applied.

    Paths are bound at their host paths, so the command sees the same absolute paths the host uses. `hosts` are
    extra names for the sandbox's own loopback (the servers a test run starts inside it); `tmpfs_dirs` are small
    writable folders at fixed paths; `binds` put other writable folders (this run's own) at places inside
    `workdir` (node_modules inside the project's copy). With `results_channel`, the command finds the write end
    of a pipe in $ASSESSOR_RESULTS_FD and what it writes there is in the result's `results`: nothing on disk
    that a later process could rewrite. Raises SandboxError only when the sandbox cannot be set up; the command
    failing is a result.
    """
    if not argv:
        raise SandboxError("nothing to run")
    for name in hosts:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", name):
            raise SandboxError(f"bad sandbox host name {name!r}")
    for directory in tmpfs_dirs:
        if not re.fullmatch(r"(/[A-Za-z0-9._-]+)+", directory) or directory.split("/")[1] in ("usr", "etc", "proc", "dev"):
            raise SandboxError(f"bad sandbox folder {directory!r}")
    workdir = check_bind_allowed(workdir)
    venv = check_bind_allowed(venv) if venv is not None else None
    checked_binds = []
    for source, destination in binds:
        destination = Path(os.path.abspath(destination))
        if workdir not in destination.parents:
            raise SandboxError(f"bind destination {destination} is outside the sandbox work area {workdir}")
        checked_binds.append((check_bind_allowed(source), destination))
    readonly_binds = [check_bind_allowed(path) for path in readonly_binds]
    cwd = (cwd or workdir).resolve()
    if cwd != workdir and workdir not in cwd.parents:
        raise SandboxError(f"working directory {cwd} is outside the sandbox work area {workdir}")
    sandboxed = bubblewrap_available()
    if not sandboxed and not unsafe_no_sandbox:
        raise SandboxError(
            "bubblewrap (bwrap) is not installed or cannot create namespaces here; refusing to run untrusted "
            "code unsandboxed (pass --unsafe-no-sandbox only to check your own code on your own machine)"
        )
    run_env = _sandbox_env(venv, env)
    channel = _ResultsChannel() if results_channel else None
    if channel is not None:
        run_env[RESULTS_FD_VARIABLE] = str(channel.write_end)
    try:
        if not sandboxed:
            return _supervise_unsandboxed(argv, workdir=workdir, cwd=cwd, limits=limits, env=run_env,
                                          channel=channel)
        options = {"venv": venv, "limits": limits, "env": run_env, "readonly_binds": readonly_binds, "hosts": hosts,
                   "tmpfs_dirs": tmpfs_dirs, "binds": checked_binds, "channel": channel}
        return _run_bwrap(argv, workdir=workdir, cwd=cwd, venv=venv, checked_binds=checked_binds,
                          readonly_binds=readonly_binds, options=options)
    finally:
        if channel is not None:
            channel.close()


def _run_bwrap(argv: Sequence[str], *, workdir: Path, cwd: Path, venv: Path | None,
               checked_binds: list[tuple[Path, Path]], readonly_binds: list[Path], options: dict) -> SandboxResult:
    if os.geteuid() != 0:
        return _supervise_bwrap(argv, uid=None, workdir=workdir, cwd=cwd, **options)
    for path in [*([venv] if venv else []), workdir, *readonly_binds, *(source for source, _ in checked_binds)]:
        make_reachable(path)
    with sandbox_uid() as uid:
        _give_to(workdir, uid)
        for source, _ in checked_binds:
            _give_to(source, uid)
        try:
            return _supervise_bwrap(argv, uid=uid, workdir=workdir, cwd=cwd, **options)
        finally:
            for source, _ in checked_binds:
                reclaim(source)


def _supervise_bwrap(argv: Sequence[str], *, uid: int | None, workdir: Path, cwd: Path, venv: Path | None,
                     limits: SandboxLimits, env: Mapping[str, str], readonly_binds: Sequence[Path],
                     hosts: Sequence[str], tmpfs_dirs: Sequence[str],
                     binds: Sequence[tuple[Path, Path]], channel: "_ResultsChannel | None" = None) -> SandboxResult:
    inside_uid = uid if uid is not None else os.getuid()
    identity = {
        "/etc/passwd": f"root:x:0:0::/:/usr/sbin/nologin\nlearner:x:{inside_uid}:{inside_uid}::/tmp:/bin/sh\n",
        "/etc/group": f"root:x:0:\nlearner:x:{inside_uid}:\n",
        "/etc/hosts": SANDBOX_HOSTS + (f"127.0.0.1 {' '.join(hosts)}\n" if hosts else ""),
    }
    data_fds = {target: _data_fd(text) for target, text in identity.items()}
    status_read, status_write = os.pipe()
    # Only this process holds the write end: when it dies, the sandbox's pid 1 sees EOF and ends everything.
    lifeline_read, lifeline_write = os.pipe()
    try:
        command = [*_prlimit_argv(limits), *_bwrap_argv(
            argv, workdir=workdir, cwd=cwd, venv=venv, limits=limits, env=env, readonly_binds=readonly_binds,
            status_fd=status_write, lifeline_fd=lifeline_read, data_fds=data_fds, tmpfs_dirs=tmpfs_dirs,
            binds=binds)]
        switch = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
            pass_fds=(status_write, lifeline_read, *data_fds.values(), *([channel.write_end] if channel else [])),
            env={"PATH": "/usr/bin:/bin"}, cwd="/", **switch,
        )
    except OSError as error:
        os.close(status_read)
        os.close(lifeline_write)
        raise SandboxError(f"could not start bubblewrap: {error}") from error
    finally:
        for fd in (status_write, lifeline_read, *data_fds.values()):
            os.close(fd)
        if channel is not None:
            channel.close_write_end()  # only the command holds it now: EOF once every process of the run is gone
    run = _Run(process, uid, status_read, channel=channel)
    try:
        result = _supervise(run, limits=limits, backend="bubblewrap", workdir=workdir)
    finally:
        run.read_status()
        os.close(status_read)
        os.close(lifeline_write)
    if run.sandbox_pid is None:
        raise SandboxError(f"bubblewrap could not set up the sandbox: {result.output.strip()[:500]}")
    return result


def _supervise_unsandboxed(argv: Sequence[str], *, workdir: Path, cwd: Path, limits: SandboxLimits,
                           env: Mapping[str, str], channel: "_ResultsChannel | None" = None) -> SandboxResult:
    try:
        process = subprocess.Popen(
            [*_prlimit_argv(limits), *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, env=dict(env), cwd=cwd,
            pass_fds=[channel.write_end] if channel else [],
        )
    except OSError as error:
        raise SandboxError(f"could not start {argv[0]}: {error}") from error
    finally:
        if channel is not None:
            channel.close_write_end()
    return _supervise(_Run(process, None, None, channel=channel), limits=limits, backend="none", workdir=workdir)


class _ResultsChannel:
    """The read end of a run's results pipe: everything kept up to MAX_RESULTS_BYTES, the rest drained."""

    def __init__(self) -> None:
        self.fd, self.write_end = os.pipe()
        os.set_blocking(self.fd, False)
        self.data = bytearray()
        self.overflow = False
        self.open = True
        self.write_end_open = True

    def close_write_end(self) -> None:
        if self.write_end_open:
            self.write_end_open = False
            os.close(self.write_end)

    def close(self) -> None:
        self.close_write_end()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read(self) -> None:
        if self.fd < 0 or not self.open:
            return
        try:
            while chunk := os.read(self.fd, MIB):
                if len(self.data) + len(chunk) > MAX_RESULTS_BYTES:
                    self.overflow = True
                else:
                    self.data += chunk
            self.open = False
        except BlockingIOError:
            pass


class _Run:
    """One launched command: the direct child, its uid, and what bwrap reported about the sandbox."""

    def __init__(self, process: subprocess.Popen, uid: int | None, status_fd: int | None,
                 channel: _ResultsChannel | None = None) -> None:
        self.process = process
        self.uid = uid
        self.status_fd = status_fd
        self.status = b""
        self.sandbox_pid: int | None = None  # host pid of the sandbox's pid 1
        self.exited = False
        self.channel = channel

    def read_status(self) -> None:
        if self.status_fd is None or len(self.status) > 64 * 1024:
            return
        os.set_blocking(self.status_fd, False)
        try:
            while chunk := os.read(self.status_fd, 4096):
                self.status += chunk
        except BlockingIOError:
            pass
        match = re.search(rb'"child-pid"\s*:\s*(\d+)', self.status)
        if match:
            self.sandbox_pid = int(match.group(1))

    def kill(self) -> None:
        """Kill everything the run started, letting bwrap reap the sandbox so its usage is accounted."""
        if self.status_fd is None:
            # Unsandboxed: the process group is all there is to kill (a setsid() child escapes it).
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        self.read_status()
        if self.sandbox_pid is not None and not self.exited:
            # bwrap has not reaped its child yet, so this pid cannot have been reused; killing a pid
            # namespace's first process makes the kernel kill the whole namespace at once.
            try:
                os.kill(self.sandbox_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.uid is not None:
            kill_uid_processes(self.uid, spare=self.process.pid)
        if not self.exited and not _wait_readable(self.process.pid, 2.0):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _wait_readable(pid: int, seconds: float) -> bool:
    """True when process `pid` (our child) exits within `seconds`."""
    pidfd = os.pidfd_open(pid)
    try:
        return bool(select.select([pidfd], [], [], seconds)[0])
    finally:
        os.close(pidfd)


def _directory_size(path: Path, stop_at: int) -> int:
    """Bytes under `path`, stopping early once `stop_at` is passed; links are not followed."""
    total = 0
    stack = [str(path)]
    while stack and total <= stop_at:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)
            else:
                total += info.st_blocks * 512
    return total


def _supervise(run: _Run, *, limits: SandboxLimits, backend: str, workdir: Path) -> SandboxResult:
    """Read output (keeping head and tail), enforce wall time, process count and disk use, then reap."""
    process = run.process
    started = time.monotonic()
    deadline = started + limits.wall_seconds
    keeper = OutputKeeper(limits.output_bytes)
    pipe = process.stdout.fileno()
    os.set_blocking(pipe, False)
    try:
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, MIB)  # fewer wakeups when a run floods its output
    except OSError:
        pass
    pidfd = os.pidfd_open(process.pid)
    poller = select.poll()
    poller.register(pipe, select.POLLIN | select.POLLHUP)
    poller.register(pidfd, select.POLLIN)
    channel = run.channel
    if channel is not None:
        poller.register(channel.fd, select.POLLIN | select.POLLHUP)
    watch_disk = not is_size_capped(workdir, limits.workdir_mb)
    killed_by: str | None = None
    peak = 0 if run.uid is not None else None
    next_check = started + 0.05
    exited_at: float | None = None
    pipe_open = True

    while killed_by is None:
        now = time.monotonic()
        if now >= deadline:
            killed_by = "wall_time"
            break
        if exited_at is not None and (not pipe_open or now - exited_at > 0.5):
            break  # in the sandbox every writer dies with pid 1; unsandboxed, a daemon may hold the pipe
        wait_ms = max(1, min(100, int((deadline - now) * 1000)))
        for fd, _events in poller.poll(wait_ms):
            if fd == pidfd:
                poller.unregister(pidfd)
                exited_at = time.monotonic()
                run.exited = True
                continue
            if channel is not None and fd == channel.fd:
                channel.read()
                if not channel.open:
                    poller.unregister(channel.fd)
                continue
            try:
                chunk = os.read(pipe, MIB)
            except BlockingIOError:
                continue
            if not chunk:
                poller.unregister(pipe)
                pipe_open = False
                continue
            keeper.add(chunk)
            if keeper.total > limits.max_output_mb * MIB:
                killed_by = "output"
        if killed_by is None and exited_at is None and time.monotonic() >= next_check:
            next_check = time.monotonic() + 0.1
            if run.uid is not None:
                pids = processes_of_uid(run.uid)
                peak = max(peak or 0, len(pids))
                # At the limit every further fork fails: a fork bomb, so stop it instead of waiting out the clock.
                if len(pids) >= limits.processes - 1:
                    killed_by = "processes"
                elif limits.address_space_mb and proportional_memory_mb(pids) > limits.memory_mb:
                    killed_by = "memory"
            if watch_disk and _directory_size(workdir, limits.workdir_mb * MIB) > limits.workdir_mb * MIB:
                killed_by = "disk"
    if killed_by is not None:
        run.kill()

    _, wait_status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    run.exited = True
    if run.uid is not None:
        kill_uid_processes(run.uid)
    os.close(pidfd)
    process.stdout.close()
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    exit_code = process.returncode if process.returncode >= 0 else 128 - process.returncode
    cpu = usage.ru_utime + usage.ru_stime
    max_rss_mb = usage.ru_maxrss / 1024
    killed_by = killed_by or _limit_from_exit(exit_code, cpu=cpu, max_rss_mb=max_rss_mb, limits=limits)
    head, tail, truncated = keeper.texts()
    if channel is not None:
        channel.read()  # what was written just before the end
    return SandboxResult(
        exit_code=exit_code, killed_by=killed_by, output_head=head, output_tail=tail,
        output_bytes_total=keeper.total, output_truncated=truncated, wall_seconds=round(wall, 3),
        cpu_seconds=round(cpu, 3), max_rss_mb=round(max_rss_mb, 1), backend=backend,
        peak_processes=peak, uid=run.uid,
        results=bytes(channel.data) if channel is not None else None,
        results_overflow=channel.overflow if channel is not None else False,
    )


def _limit_from_exit(exit_code: int, *, cpu: float, max_rss_mb: float, limits: SandboxLimits) -> str | None:
    """Which rlimit ended the run, judged from the signal (128+n) and the kernel's own usage figures."""
    if exit_code <= 128 or exit_code > 128 + 64:
        return None
    signal_number = exit_code - 128
    if signal_number == signal.SIGXCPU or (signal_number == signal.SIGKILL and cpu >= 0.95 * limits.cpu_seconds):
        return "cpu_time"
    if signal_number == signal.SIGXFSZ:
        return "file_size"
    if signal_number in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS) \
            and max_rss_mb >= 0.8 * limits.memory_mb:
        return "memory"
    return None

