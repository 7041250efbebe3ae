"""A real ssh git server on loopback for the tests: Debian's sshd, started by the tests as an unprivileged user with
its own host key, serving bare repositories only to the public keys it is given."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

# The account sshd runs as when the tests run as root (.ci/setup creates it); otherwise the tests' own user.
SSH_ACCOUNT = "assessor-git"
SSHD = "/usr/sbin/sshd"


def _account() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(SSH_ACCOUNT)
    except KeyError:
        raise RuntimeError(f"the account {SSH_ACCOUNT} is missing: run .ci/setup (it creates it)") from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def host_key(folder: Path, name: str = "host_ed25519") -> Path:
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f", str(path)], check=True)
    return path


class GitSshServer:
    def __init__(self, root: Path):
        if not Path(SSHD).exists():
            raise RuntimeError("sshd is missing: run .ci/setup (it installs openssh-server)")
        self.account = _account()
        self.root = root
        self.repositories = root / "repositories"
        self.repositories.mkdir(parents=True)
        self.authorized = root / "authorized_keys"
        self.authorized.write_text("")
        # As a git host does: "/owner/name.git" (or "owner/name.git") names a repository of this server, and
        # nothing but fetching is allowed.
        self.serve_only = root / "git-serve"
        self.serve_only.write_text(
            "#!/bin/sh\nset -f\ncommand=\"$SSH_ORIGINAL_COMMAND\"\n"
            "case \"$command\" in \"git-upload-pack '\"*\"'\") ;; *) echo 'fetching only' >&2; exit 1 ;; esac\n"
            "path=${command#git-upload-pack \\'}\npath=${path%\\'}\npath=${path#/}\n"
            "case \"$path\" in *..*) echo 'no such repository' >&2; exit 1 ;; esac\n"
            f"exec git-upload-pack \"{self.repositories}/$path\"\n")
        self.serve_only.chmod(0o755)
        self.port = _free_port()
        self.key_path = host_key(root)
        self.process: subprocess.Popen | None = None

    @property
    def host_key(self) -> str:
        """The host key as a git host publishes it: "ssh-ed25519 AAAA...". """
        return " ".join(Path(f"{self.key_path}.pub").read_text().split()[:2])

    def authorize(self, public_key: str) -> None:
        with self.authorized.open("a") as out:
            out.write(public_key.strip() + "\n")

    def serve(self, name: str, repo: Path) -> str:
        """A bare copy of `repo` as `name` ("owner/repository"), and its ssh address."""
        bare = self.repositories / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True, capture_output=True)
        self._give_to_account()
        return f"ssh://{self.account.pw_name}@127.0.0.1:{self.port}/{name}.git"

    def push(self, name: str, repo: Path, ref: str = "main") -> None:
        """The learner pushes: the served copy takes the repository's `ref`."""
        bare = self.repositories / f"{name}.git"
        # git will not write into a repository another account owns: own it for the push, then give it back.
        self._give_to(os.geteuid(), os.getegid())
        try:
            subprocess.run(["git", "-C", str(repo), "push", "-q", "--force", str(bare), f"{ref}:{ref}"], check=True,
                           capture_output=True)
        finally:
            self._give_to_account()

    def replace_host_key(self) -> None:
        """The server now presents another key (a changed or spoofed host): restart with a new one."""
        self.stop()
        for path in (self.key_path, Path(f"{self.key_path}.pub")):
            path.unlink()
        self.key_path = host_key(self.root)
        self.start()

    def _give_to_account(self) -> None:
        self._give_to(self.account.pw_uid, self.account.pw_gid)
        self.root.chmod(0o755)

    def _give_to(self, uid: int, gid: int) -> None:
        if os.geteuid() == 0:
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, uid, gid, follow_symlinks=False)

    def start(self) -> None:
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.key_path}\nPidFile {self.root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            f"KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin no\n"
            f"AllowUsers {self.account.pw_name}\nAllowTcpForwarding no\nX11Forwarding no\nLogLevel ERROR\n"
            f"ForceCommand {self.serve_only}\n")
        self.key_path.chmod(0o600)
        self._give_to_account()
        as_account = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []} \
            if os.geteuid() == 0 else {}
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, **as_account)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd did not start: {self.process.stderr.read().decode()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening in 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def git_ssh_server():
    # Not under pytest's own temporary folder: that is private to the tests' user, and sshd runs as another.
    root = Path(tempfile.mkdtemp(prefix="test-sshd-"))
    server = GitSshServer(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)
