"""The sandbox's copy of a checkout: what learner code may change, kept apart from what the host reads."""

import os
import shutil
from collections.abc import Collection
from pathlib import Path

from assessor.errors import MeasureError
from assessor.engine.measure.outcomes import Flag

# Shipped bytecode can claim to be compiled from a source it does not match; a committed node_modules is
# replaced by the service's own install.
NEVER_COPIED_DIRS = frozenset({"__pycache__"})
NEVER_COPIED_SUFFIXES = (".pyc", ".pyo")


def copy_checkout(source: Path, destination: Path, *, skip_dirs: Collection[str] = ()) -> None:
    """Copy the checkout so learner code cannot change what the host later reads and scans (no .git)."""
    skipped = NEVER_COPIED_DIRS | set(skip_dirs)
    destination.mkdir(parents=True, exist_ok=True)
    try:
        for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
            here = Path(dirpath)
            target = destination / here.relative_to(source)
            dirnames[:] = [d for d in dirnames if d not in skipped and not (here == source and d == ".git")]
            for name in dirnames:
                path = here / name
                if path.is_symlink():
                    os.symlink(os.readlink(path), target / name)
                else:
                    (target / name).mkdir()
            for name in filenames:
                path = here / name
                if name.endswith(NEVER_COPIED_SUFFIXES):
                    continue
                if path.is_symlink():
                    os.symlink(os.readlink(path), target / name)
                elif path.is_file():
                    shutil.copyfile(path, target / name, follow_symlinks=False)
                    os.chmod(target / name, 0o755 if os.access(path, os.X_OK) else 0o644)
    except OSError as error:
        raise MeasureError(f"the checkout could not be copied into the work area: {error.strerror}") from None


def modified_sources(checkout: Path, copy: Path, files: list[str]) -> list[Flag]:
    """Measured sources the run rewrote: coverage of a rewritten file says nothing about the original."""
    flags = []
    for name in files:
        copied = copy / name
        try:
            same = not copied.is_symlink() and copied.is_file() \
                and copied.read_bytes() == (checkout / name).read_bytes()
        except OSError:
            same = False
        if not same:
            flags.append(Flag("source_modified", "the tests changed or removed a measured source file", name))
    return flags
