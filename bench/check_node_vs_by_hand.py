"""Benchmark: `assess` on the Node.js sample capstone (Express + TypeScript + Vitest, a Redis-backed test) against
the same steps by hand, in one run: clone, `npm ci`, a Redis server, `vitest run --coverage`, lizard.

Run: .venv/bin/python bench/check_node_vs_by_hand.py [--rounds 3]
Target (issue 11): warm at most 1.3x the by-hand time.
"""

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessor.config import resolve_paths  # noqa: E402
from assessor.engine.intake import SourcePolicy  # noqa: E402
from assessor.engine.pipeline import PipelineSettings, assess  # noqa: E402
from assessor.engine.rubric import find_rubric  # noqa: E402
from assessor.samples import create_sample_repo  # noqa: E402

RUBRIC_ID = "scalable-architectures-resilient-core"
SERVICE_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def by_hand(repo: Path, scratch: Path, npm_cache: Path) -> float:
    work = scratch / "by-hand"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    started = time.perf_counter()

    def run(*argv: str, cwd: Path = work, env: dict | None = None) -> None:
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    run("git", "clone", "-q", "--depth", "1", f"file://{repo}", "checkout")
    checkout = work / "checkout"
    run("npm", "ci", "--no-audit", "--no-fund", f"--cache={npm_cache}", "--prefer-offline", cwd=checkout)
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.01)
        run("npx", "vitest", "run", "--coverage.enabled", "--coverage.reporter=json", cwd=checkout,
            env={"PATH": "/usr/bin:/bin", "HOME": str(work), "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    finally:
        redis.terminate()
        redis.wait()
    run(str(SERVICE_BIN / "lizard"), "src", cwd=checkout)
    return time.perf_counter() - started


def by_assessor(repo: Path, scratch: Path, cache: Path) -> float:
    rubric = find_rubric(RUBRIC_ID, resolve_paths().rubrics)
    settings = PipelineSettings(work_root=scratch / "work", cache_dir=cache,
                                source_policy=SourcePolicy(allow_local=True))
    started = time.perf_counter()
    report = assess(str(repo), rubric, settings=settings)
    elapsed = time.perf_counter() - started
    if report.tests is None or report.tests["passed"] < 40:
        raise SystemExit(f"the sample did not assess cleanly: {report.tests}\n{report.output_tail}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-node-", dir="/tmp") as scratch_name:
        scratch = Path(scratch_name)
        scratch.chmod(0o711)
        repo = create_sample_repo("node-passing", scratch / "capstone")
        npm_cache = scratch / "npm-cache"
        hand_cold = by_hand(repo, scratch, npm_cache)
        cold = by_assessor(repo, scratch, scratch / "cache")
        print(f"cold (empty caches): by hand {hand_cold:.2f} s, assessor {cold:.2f} s = {cold / hand_cold:.2f}x")
        hand, warm = [], []
        for round_number in range(args.rounds):
            hand.append(by_hand(repo, scratch, npm_cache))
            warm.append(by_assessor(repo, scratch, scratch / "cache"))
            print(f"round {round_number + 1}: by hand {hand[-1]:.2f} s, assessor warm {warm[-1]:.2f} s")
    hand_s, warm_s = statistics.median(hand), statistics.median(warm)
    print(f"median by hand (npm ci with a warm cache, redis-server, vitest --coverage, lizard): {hand_s:.2f} s")
    print(f"median assessor warm (sandbox, its own Redis): {warm_s:.2f} s = {warm_s / hand_s:.2f}x by hand "
          f"(target <= 1.3x)")


if __name__ == "__main__":
    main()
