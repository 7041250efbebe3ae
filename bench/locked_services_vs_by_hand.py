"""Benchmark: a whole assessment of a capstone shaped as learners hand them in (dependencies locked with exact
pins, PostgreSQL and Redis declared in docker compose, tests that use both) against the same steps by hand with uv,
cold (empty caches) and warm, in one run: clone, `uv venv`, `uv pip sync` of the lock, pytest and coverage,
PostgreSQL (initdb, or a copy of an initialised folder when warm) and Redis started on their own ports,
`coverage run -m pytest`, `coverage json`, radon cc and mi.

Run: .venv/bin/python bench/locked_services_vs_by_hand.py [--rounds 3]
Targets (issue 21): warm at most 1.0x the by-hand time, cold at most 1.2x.
"""

import argparse
import os
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
from assessor.engine.registries import uv_binary, uv_env  # noqa: E402
from assessor.engine.rubric import find_rubric  # noqa: E402
from assessor.engine.services.servers import postgresql_bin_dir, redis_server  # noqa: E402
from tests.ops.test_proxy import wait_for  # noqa: E402
from tests.test_real_shapes import PG_STORE, PG_TESTS, REDIS_CACHE, REDIS_TESTS  # noqa: E402  the tests' capstone

RUBRIC_ID = "senior-backend-capstone"
SERVICE_BIN = Path(sys.executable).parent
PG_PORT, REDIS_PORT = 55432, 56379
COMPOSE = """\
services:
  api:
    build: .
    environment:
      DATABASE_URL: postgresql://stock:stock@db:5432/stock
      REDIS_URL: redis://cache:6379/0
  db:
    image: postgres:16
    environment: {POSTGRES_USER: stock, POSTGRES_PASSWORD: stock, POSTGRES_DB: stock}
  cache:
    image: redis:7
"""


def make_capstone(root: Path, cache: Path) -> Path:
    repo = root / "capstone"
    (repo / "stock").mkdir(parents=True)
    (repo / "cache").mkdir()
    (repo / "tests").mkdir()
    wanted = root / "wanted.txt"
    wanted.write_text("psycopg[binary]>=3.1\nredis>=5\n")
    lock = subprocess.run([uv_binary(), "pip", "compile", "-q", "--no-header", "--python", "/usr/bin/python3",
                           str(wanted)], check=True, capture_output=True, text=True, env=uv_env(cache)).stdout
    files = {"docker-compose.yml": COMPOSE, "requirements.txt": lock, "stock/__init__.py": "",
             "stock/store.py": PG_STORE, "cache/__init__.py": "", "cache/counter.py": REDIS_CACHE,
             "tests/test_store.py": PG_TESTS, "tests/test_counter.py": REDIS_TESTS}
    for name, text in files.items():
        (repo / name).write_text(textwrap.dedent(text))
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@example.org", "commit",
                                                     "-qm", "capstone"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    return repo


def by_hand(repo: Path, scratch: Path, uv_cache: Path, template: Path | None) -> float:
    """The steps a mentor takes, as the postgres user for the servers (initdb refuses root)."""
    work = scratch / "by-hand"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    os.chmod(work, 0o777)
    env = uv_env(uv_cache)
    started = time.perf_counter()

    def run(*argv: str, cwd: Path = work, extra: dict | None = None) -> None:
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**env, **(extra or {})})

    run("git", "clone", "-q", "--depth", "1", f"file://{repo}", "checkout")
    checkout = work / "checkout"
    run(uv_binary(), "venv", "-q", "--python", "/usr/bin/python3", str(work / "venv"))
    python = str(work / "venv/bin/python")
    run(uv_binary(), "pip", "sync", "-q", "--python", python, "requirements.txt", cwd=checkout)
    run(uv_binary(), "pip", "install", "-q", "--python", python, "pytest", "coverage", cwd=checkout)
    binaries = postgresql_bin_dir()
    data = work / "pgdata"
    as_postgres = [shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin"), "-u", "postgres", "--"]
    if template is None:
        run(*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        shutil.copytree(data, scratch / "pg-template", symlinks=True)  # what a warm run starts from
    else:
        shutil.copytree(template, data, symlinks=True)
        subprocess.run(["chown", "-R", "postgres:postgres", str(data)], check=True)
    postgres = subprocess.Popen([*as_postgres, str(binaries / "postgres"), "-D", str(data), "-p", str(PG_PORT),
                                 "-c", f"unix_socket_directories={work}", "-c", "listen_addresses=127.0.0.1",
                                 "-c", "fsync=off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    redis = subprocess.Popen([str(redis_server()), "--port", str(REDIS_PORT), "--save", "", "--bind", "127.0.0.1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(PG_PORT)
        wait_for(REDIS_PORT)
        for statement in ("CREATE ROLE stock LOGIN PASSWORD 'stock'", "CREATE DATABASE stock OWNER stock"):
            for _ in range(100):
                done = subprocess.run([str(binaries / "psql"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres",
                                       "-qc", statement], capture_output=True)
                if done.returncode == 0:
                    break
                time.sleep(0.02)
        test_env = {"DATABASE_URL": f"postgresql://stock:stock@127.0.0.1:{PG_PORT}/stock",
                    "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0"}
        run(python, "-m", "coverage", "run", "--branch", "--source=stock,cache", "-m", "pytest", "-q", "tests",
            cwd=checkout, extra=test_env)
        run(python, "-m", "coverage", "json", "-q", cwd=checkout)
        run(str(SERVICE_BIN / "radon"), "cc", "-a", "-s", "stock", "cache", cwd=checkout)
        run(str(SERVICE_BIN / "radon"), "mi", "-s", "stock", "cache", cwd=checkout)
    finally:
        redis.terminate()
        subprocess.run([*as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        for process in (postgres, redis):
            process.wait(timeout=30)
    return time.perf_counter() - started


def by_assessor(repo: Path, scratch: Path, cache: Path) -> float:
    rubric = find_rubric(RUBRIC_ID, resolve_paths().rubrics)
    settings = PipelineSettings(work_root=scratch / "work", cache_dir=cache,
                                source_policy=SourcePolicy(allow_local=True), history=None)
    started = time.perf_counter()
    report = assess(str(repo), rubric, settings=settings)
    elapsed = time.perf_counter() - started
    if report.tests is None or report.tests["passed"] != 5 or report.tests["total"] != 5:
        raise SystemExit(f"the capstone did not assess cleanly: {report.tests}\n{report.output_tail}")
    if "--stages" in sys.argv:
        print("  assessor stages:", report.stage_seconds, "environment", report.environment.get("seconds"))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", action="store_true", help="print the assessor's time per stage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-locked-", dir="/tmp") as scratch_name:
        scratch = Path(scratch_name)
        scratch.chmod(0o711)
        repo = make_capstone(scratch, scratch / "compile-cache")
        hand_cold = by_hand(repo, scratch, scratch / "uv-cold", None)
        assessor_cold = by_assessor(repo, scratch, scratch / "assessor-cold")
        print(f"cold: by hand {hand_cold:.2f} s (empty uv cache, initdb); assessor {assessor_cold:.2f} s (empty "
              f"cache, its own initdb) = {assessor_cold / hand_cold:.2f}x (target <= 1.2x)")
        hand, warm = [], []
        for round_number in range(args.rounds):
            hand.append(by_hand(repo, scratch, scratch / "uv-cold", scratch / "pg-template"))
            warm.append(by_assessor(repo, scratch, scratch / "assessor-cold"))
            print(f"round {round_number + 1}: by hand {hand[-1]:.2f} s, assessor warm {warm[-1]:.2f} s")
    hand_s, warm_s = statistics.median(hand), statistics.median(warm)
    print(f"median warm: by hand {hand_s:.2f} s; assessor {warm_s:.2f} s = {warm_s / hand_s:.2f}x (target <= 1.0x)")


if __name__ == "__main__":
    main()
