"""Room on the disk where assessments work: checked before one starts, so running out is the service's, not the
learner's."""

import shutil
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class DiskRoom:
    free_mb: int
    needed_mb: int

    @property
    def enough(self) -> bool:
        return self.free_mb >= self.needed_mb

    def describe(self) -> str:
        """For admins: the figures, never a path (learners never see this)."""
        return f"{self.free_mb} MB free for assessments, {self.needed_mb} MB needed"


def room(folder: Path, *, needed_mb: int) -> DiskRoom:
    """Free space on the filesystem that holds `folder` (or its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return DiskRoom(free_mb=shutil.disk_usage(folder).free // MIB, needed_mb=needed_mb)
