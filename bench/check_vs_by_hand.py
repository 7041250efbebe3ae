"""Benchmark: `assess` on a sample capstone against the same steps done by hand, measured in one run.

Run: .venv/bin/python bench/check_vs_by_hand.py [--rounds 3]
Targets (issue 3): cold at most 1.15x the by-hand time; warm at least 2x faster than by hand.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assessor.config import resolve_paths
from assessor.engine.intake import SourcePolicy
from assessor.engine.pipeline import PipelineSettings, assess
from assessor.engine.rubric import find_rubric
from assessor.samples import create_sample_repo

RUBRIC_ID = "scalable-architectures-resilient-core"
# A capstone usually depends on a web framework and an HTTP client; the sample alone needs only pytest.
EXTRA_DEPENDENCIES = ["flask>=3", "requests>=2.31"]
SERVICE_BIN = Path(sys.executable).parent


def make_capstone(root: Path) -> Path:
    repo = create_sample_repo("passing", root / "capstone")
    pyproject = repo / "pyproject.toml"
    text = pyproject.read_text().replace("dependencies = []", f"dependencies = {EXTRA_DEPENDENCIES!r}".replace("'", '"'))
    pyproject.write_text(text)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@example.org", "commit", "-qam", "deps"],
                   cwd=repo, check=True)
    return repo


def by_hand(repo: Path, scratch: Path) -> float:
    """What a mentor would type: clone, venv, pip install, coverage run -m pytest, coverage json, radon."""
    work = scratch / "by-hand"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    started = time.perf_counter()

    def run(*argv: str, cwd: Path = work) -> None:
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    run("git", "clone", "-q", "--depth", "1", f"file://{repo}", "checkout")
    checkout = work / "checkout"
    run("/usr/bin/python3", "-m", "venv", str(work / "venv"))
    pip = str(work / "venv/bin/pip")
    run(pip, "install", "-q", "--no-cache-dir", *EXTRA_DEPENDENCIES, "pytest", "coverage")
    python = str(work / "venv/bin/python")
    subprocess.run([python, "-m", "coverage", "run", "--branch", "--source=src", "-m", "pytest", "-q"],
                   cwd=checkout, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "src"}, check=True,
                   stdout=subprocess.DEVNULL)
    run(python, "-m", "coverage", "json", "-q", cwd=checkout)
    run(str(SERVICE_BIN / "radon"), "cc", "-a", "-s", "src", cwd=checkout)
    run(str(SERVICE_BIN / "radon"), "mi", "-s", "src", cwd=checkout)
    return time.perf_counter() - started


def by_assessor(repo: Path, scratch: Path, cache: Path) -> float:
    rubric = find_rubric(RUBRIC_ID, resolve_paths().rubrics)
    settings = PipelineSettings(work_root=scratch / "work", cache_dir=cache, source_policy=SourcePolicy(allow_local=True))
    started = time.perf_counter()
    report = assess(str(repo), rubric, settings=settings)
    elapsed = time.perf_counter() - started
    if report.tests is None or report.tests["failed"]:
        raise SystemExit(f"the sample did not assess cleanly: {report.tests}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-check-") as scratch_name:
        scratch = Path(scratch_name)
        repo = make_capstone(scratch)
        hand, cold, warm = [], [], []
        for round_number in range(args.rounds):
            cache = scratch / f"cache-{round_number}"
            hand.append(by_hand(repo, scratch))
            cold.append(by_assessor(repo, scratch, cache))   # empty cache: everything downloaded
            warm.append(by_assessor(repo, scratch, cache))   # same dependencies again
            print(f"round {round_number + 1}: by hand {hand[-1]:.2f} s, cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s")
    hand_s, cold_s, warm_s = (statistics.median(values) for values in (hand, cold, warm))
    print(f"median by hand: {hand_s:.2f} s (pip, no cache)")
    print(f"median assessor cold: {cold_s:.2f} s = {cold_s / hand_s:.2f}x by hand (target <= 1.15x)")
    print(f"median assessor warm: {warm_s:.2f} s = {hand_s / warm_s:.2f}x faster than by hand (target >= 2x)")


if __name__ == "__main__":
    main()
