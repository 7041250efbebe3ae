"""Helpers shared by the sandbox, environment and test-run tests: reachable dirs, one built venv, harm checks."""

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

from assessor.engine.toolchains.python.environment import build_environment, uv_binary
from assessor.engine.sandbox import UID_POOL_SIZE, UID_POOL_START, SandboxLimits, processes_of_uid

# Small limits so hostile cases end in seconds.
TEST_LIMITS = SandboxLimits(wall_seconds=20, cpu_seconds=8, memory_mb=768, processes=32, file_size_mb=32,
                            open_files=256, tmp_mb=64, workdir_mb=128)


@lru_cache(maxsize=1)
def sandbox_base() -> Path:
    """One directory per test session that the sandbox uid can reach (pytest's own tmp is mode 700)."""
    base = Path(tempfile.mkdtemp(prefix="assessor-tests-", dir="/tmp"))
    os.chmod(base, 0o711)
    atexit.register(shutil.rmtree, base, True)
    return base


def fresh_dir(name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=sandbox_base()))
    os.chmod(path, 0o711)
    return path


@lru_cache(maxsize=1)
def bare_venv() -> Path:
    """A venv with nothing installed: enough for sandbox tests that run `python -c`."""
    venv = sandbox_base() / "bare-venv"
    subprocess.run([uv_binary(), "venv", "--no-config", "--quiet", "--python", "/usr/bin/python3", str(venv)],
                   check=True, capture_output=True, timeout=60)
    return venv


@lru_cache(maxsize=1)
def shared_environment():
    """One environment with pytest and coverage for every test-run test (their projects need nothing else)."""
    project = fresh_dir("env-project")
    (project / "pyproject.toml").write_text('[project]\nname = "capstone"\ndependencies = []\n')
    return build_environment(project, sandbox_base() / "shared-install", cache_dir=uv_cache())


@lru_cache(maxsize=1)
def uv_cache() -> Path:
    return sandbox_base() / "uv-cache"


def pool_uids_with_processes() -> set[int]:
    """Uids of the sandbox pool that own a live process right now."""
    owners = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                owners.add(entry.stat().st_uid)
            except OSError:
                continue
    pool = range(UID_POOL_START, UID_POOL_START + UID_POOL_SIZE)
    return {uid for uid in owners if uid in pool and processes_of_uid(uid)}


def assert_no_sandbox_processes(*uids: int | None, timeout: float = 3.0) -> None:
    """The given runs' uids own nothing any more (other sessions on the machine may be running their own)."""
    uids = [uid for uid in uids if uid is not None]
    deadline = time.monotonic() + timeout
    while any(processes_of_uid(uid) for uid in uids) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftovers = {uid: processes_of_uid(uid) for uid in uids if processes_of_uid(uid)}
    assert leftovers == {}, f"sandbox processes outlived their run: {leftovers}"


def mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if f" {path}" in line]


def free_disk_bytes(path: str = "/tmp") -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


class Listener:
    """A TCP server on 127.0.0.1 that records whether anything ever connected."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(5)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                connection, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.stopping = True
        self.thread.join(timeout=2)
        self.server.close()
