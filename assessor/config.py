"""Where an installation keeps its data, read from the environment when asked (never at import time)."""

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Paths:
    instance: Path  # database, keys, config: never visible to learner code
    rubrics: Path
    cache: Path  # the service's own download cache for learner dependencies
    work_root: Path  # per-assessment work dirs: checkout, venv, sandbox run

    def ensure(self) -> "Paths":
        self.instance.mkdir(parents=True, exist_ok=True)
        self.instance.chmod(0o700)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.work_root.mkdir(parents=True, exist_ok=True)
        return self


def resolve_paths(environ: Mapping[str, str] | None = None) -> Paths:
    """ASSESSOR_INSTANCE, ASSESSOR_RUBRICS and ASSESSOR_WORK_ROOT override the defaults."""
    environ = os.environ if environ is None else environ
    instance = Path(environ.get("ASSESSOR_INSTANCE") or PROJECT_ROOT / "instance").resolve()
    rubrics = Path(environ.get("ASSESSOR_RUBRICS") or PROJECT_ROOT / "rubrics").resolve()
    # Work dirs sit outside the instance folder: the sandbox's own uid must reach them, and must never
    # be able to reach the instance folder.
    work_root = Path(environ.get("ASSESSOR_WORK_ROOT") or Path(tempfile.gettempdir()) / "capstone-assessor").resolve()
    return Paths(instance=instance, rubrics=rubrics, cache=instance / "cache", work_root=work_root)
