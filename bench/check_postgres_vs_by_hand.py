"""Benchmark: `assess` on a PostgreSQL-backed capstone (a GitHub Actions postgres service, psycopg, a concurrency
test) against the same steps by hand with uv, measured in one run: clone, `uv venv`, `uv pip install`, a role and
database on the local PostgreSQL server, `coverage run -m pytest`, `coverage json`, radon cc and mi.

Run: .venv/bin/python bench/check_postgres_vs_by_hand.py [--rounds 3] [--database-url postgresql://postgres@127.0.0.1/test]
Target (issue 10): warm at most 1.3x the by-hand time.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessor.config import resolve_paths  # noqa: E402
from assessor.engine.intake import SourcePolicy  # noqa: E402
from assessor.engine.pipeline import PipelineSettings, assess  # noqa: E402
from assessor.engine.rubric import find_rubric  # noqa: E402
from assessor.engine.toolchains.python.environment import uv_binary  # noqa: E402
from tests.test_real_shapes import PG_STORE, PG_TESTS, PG_WORKFLOW  # noqa: E402  the same capstone the tests use

RUBRIC_ID = "senior-backend-capstone"
SERVICE_BIN = Path(sys.executable).parent
ROLE = "bench_stock"


def make_capstone(root: Path) -> Path:
    repo = root / "capstone"
    files = {".github/workflows/ci.yml": textwrap.dedent(PG_WORKFLOW), "requirements.txt": "psycopg[binary]>=3.1\n",
             "stock/__init__.py": "", "stock/store.py": PG_STORE, "tests/test_store.py": PG_TESTS}
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@example.org", "commit",
                                                     "-qm", "capstone"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    return repo


def by_hand(repo: Path, scratch: Path, admin_url: str) -> float:
    work = scratch / "by-hand"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    started = time.perf_counter()

    def run(*argv: str, cwd: Path = work, env: dict | None = None) -> None:
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    run("git", "clone", "-q", "--depth", "1", f"file://{repo}", "checkout")
    checkout = work / "checkout"
    run(uv_binary(), "venv", "-q", "--python", "/usr/bin/python3", str(work / "venv"))
    python = str(work / "venv/bin/python")
    run(uv_binary(), "pip", "install", "-q", "--python", python, "-r", "requirements.txt", "pytest", "coverage",
        cwd=checkout)
    run("psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {ROLE}")
    run("psql", admin_url, "-qc", f"DROP ROLE IF EXISTS {ROLE}")
    run("psql", admin_url, "-qc", f"CREATE ROLE {ROLE} LOGIN PASSWORD 'stock'")
    run("psql", admin_url, "-qc", f"CREATE DATABASE {ROLE} OWNER {ROLE}")
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"postgresql://{ROLE}:stock@127.0.0.1:5432/{ROLE}"}
    run(python, "-m", "coverage", "run", "--branch", "--source=stock", "-m", "pytest", "-q", "tests", cwd=checkout,
        env=env)
    run(python, "-m", "coverage", "json", "-q", cwd=checkout, env=env)
    run(str(SERVICE_BIN / "radon"), "cc", "-a", "-s", "stock", cwd=checkout)
    run(str(SERVICE_BIN / "radon"), "mi", "-s", "stock", cwd=checkout)
    return time.perf_counter() - started


def by_assessor(repo: Path, scratch: Path, cache: Path) -> float:
    rubric = find_rubric(RUBRIC_ID, resolve_paths().rubrics)
    settings = PipelineSettings(work_root=scratch / "work", cache_dir=cache,
                                source_policy=SourcePolicy(allow_local=True))
    started = time.perf_counter()
    report = assess(str(repo), rubric, settings=settings)
    elapsed = time.perf_counter() - started
    if report.tests is None or report.tests["passed"] != 3:
        raise SystemExit(f"the capstone did not assess cleanly: {report.tests}\n{report.output_tail}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="an administrator's URL of the local PostgreSQL server for the by-hand steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pg-", dir="/tmp") as scratch_name:
        scratch = Path(scratch_name)
        scratch.chmod(0o711)
        repo = make_capstone(scratch)
        cache = scratch / "cache"
        print(f"cold (first) assessment: {by_assessor(repo, scratch, cache):.2f} s; by hand: "
              f"{by_hand(repo, scratch, args.database_url):.2f} s")
        hand, warm = [], []
        for round_number in range(args.rounds):
            hand.append(by_hand(repo, scratch, args.database_url))
            warm.append(by_assessor(repo, scratch, cache))
            print(f"round {round_number + 1}: by hand {hand[-1]:.2f} s, assessor warm {warm[-1]:.2f} s")
    hand_s, warm_s = statistics.median(hand), statistics.median(warm)
    print(f"median by hand (uv, warm cache, local PostgreSQL): {hand_s:.2f} s")
    print(f"median assessor warm (sandbox, its own PostgreSQL): {warm_s:.2f} s = {warm_s / hand_s:.2f}x by hand "
          f"(target <= 1.3x)")


if __name__ == "__main__":
    main()
