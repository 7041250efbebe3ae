"""Benchmark: what mutation sampling (20 changes, each in a fresh sandboxed run) adds to a whole assessment of the
shipped Python samples, measured in one run against the same assessment without a `strength` criterion.

Run: .venv/bin/python bench/mutation_sampling.py [--rounds 3] [--mutants 20]
Target (issue 22): at most +30% of the assessment's time (warm: dependencies installed once before measuring).
Prints the share of changes each sample's tests noticed.
"""

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessor.config import resolve_paths  # noqa: E402
from assessor.engine.intake import SourcePolicy  # noqa: E402
from assessor.engine.pipeline import PipelineSettings, assess  # noqa: E402
from assessor.engine.rubric import Criterion, Level, find_rubric  # noqa: E402
from assessor.samples import create_sample_repo  # noqa: E402

RUBRIC_ID = "scalable-architectures-resilient-core"
SAMPLES = ("passing", "falling-short")


def with_strength(rubric, mutants: int):
    criterion = Criterion(id="strength", kind="strength", title="Tests notice changes", weight=10, mutants=mutants,
                          levels=(Level(0, 0, "few changes noticed"),
                                  Level(1, 10, "most changes noticed", {"min_noticed": 70.0})))
    return dataclasses.replace(rubric, criteria=(*rubric.criteria, criterion))


def timed(repo: Path, rubric, settings) -> tuple[float, object]:
    started = time.perf_counter()
    report = assess(str(repo), rubric, settings=settings)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mutants", type=int, default=20)
    args = parser.parse_args()
    base = find_rubric(RUBRIC_ID, resolve_paths().rubrics)
    sampled = with_strength(base, args.mutants)
    with tempfile.TemporaryDirectory(prefix="bench-mutation-") as scratch:
        root = Path(scratch)
        settings = PipelineSettings(work_root=root / "work", cache_dir=root / "cache",
                                    source_policy=SourcePolicy(allow_local=True))
        for name in SAMPLES:
            repo = create_sample_repo(name, root / name)
            timed(repo, base, settings)  # installs the dependencies once: both sides then measure warm
            plain, mutated, report = [], [], None
            for _ in range(args.rounds):
                plain.append(timed(repo, base, settings)[0])
                seconds, report = timed(repo, sampled, settings)
                mutated.append(seconds)
            strength = report.strength or {}
            ratio = statistics.median(mutated) / statistics.median(plain)
            print(f"{name}: without sampling {statistics.median(plain):.2f} s, with {args.mutants} mutants "
                  f"{statistics.median(mutated):.2f} s -> {ratio:.2f}x (+{(ratio - 1) * 100:.0f}%, target at most "
                  f"+30%: {'met' if ratio <= 1.3 else 'NOT met'}); {strength.get('summary', 'no sample')}"
                  f" ({strength.get('noticed_percent')}% noticed, {strength.get('sampled')} sampled, "
                  f"{strength.get('not_run')} not run, sampling {strength.get('seconds')} s)")


if __name__ == "__main__":
    main()
