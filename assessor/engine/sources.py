"""The learner's text files at the assessed commit, read once from the fresh checkout, for the code view."""

import os
import stat
from dataclasses import dataclass
from pathlib import Path

# Written by tools, not by the learner: long and of no use to a reviewer.
LOCK_FILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "uv.lock",
    "Pipfile.lock", "pdm.lock", "bun.lockb",
})
SKIPPED_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache",
                          ".pytest_cache", "dist", "build", ".next", "coverage"})


@dataclass(frozen=True)
class SourceLimits:
    max_file_bytes: int = 1_000_000
    max_total_bytes: int = 24_000_000
    max_files: int = 5_000


@dataclass(frozen=True)
class SourceFile:
    path: str          # relative to the checkout, with forward slashes
    text: str

    @property
    def line_count(self) -> int:
        return self.text.count("\n") + (0 if self.text.endswith("\n") or not self.text else 1)


@dataclass(frozen=True)
class SourceSnapshot:
    files: tuple[SourceFile, ...]
    skipped: tuple[tuple[str, str], ...] = ()   # (path, why it is not shown)

    def paths(self) -> list[str]:
        return [source.path for source in self.files]


def snapshot(checkout: Path, limits: SourceLimits = SourceLimits()) -> SourceSnapshot:
    """The checkout's UTF-8 text files, before any learner code runs. Symlinks are never followed (a link to a
    host file must not end up on a page) and binaries, lock files and anything past the limits are skipped."""
    files: list[SourceFile] = []
    skipped: list[tuple[str, str]] = []
    total = 0
    for directory, subdirs, names in os.walk(checkout, followlinks=False):
        subdirs[:] = sorted(name for name in subdirs if name not in SKIPPED_DIRS)
        for name in sorted(names):
            path = Path(directory) / name
            relative = path.relative_to(checkout).as_posix()
            if name in LOCK_FILES:
                skipped.append((relative, "lock file"))
                continue
            if len(files) >= limits.max_files:
                skipped.append((relative, f"more than {limits.max_files:,} files"))
                continue
            text, why = _read_text(path, limits.max_file_bytes)
            if text is None:
                skipped.append((relative, why))
                continue
            size = len(text.encode())
            if total + size > limits.max_total_bytes:
                skipped.append((relative, "the repository's text is over the size kept for the code view"))
                continue
            total += size
            files.append(SourceFile(relative, text))
    return SourceSnapshot(tuple(files), tuple(skipped))


def _read_text(path: Path, max_bytes: int) -> tuple[str | None, str]:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None, "symbolic link or unreadable"
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size > max_bytes:
            return None, f"larger than {max_bytes // 1000:,} kB"
        data = os.read(descriptor, max_bytes + 1)
    finally:
        os.close(descriptor)
    if b"\0" in data[:8192]:
        return None, "binary"
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
