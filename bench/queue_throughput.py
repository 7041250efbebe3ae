"""Queue throughput on Redis: N small real assessments (clone, radon, uv, pytest in the sandbox) through 1 and
then 2 `assessor worker` processes; reports jobs/minute and checks that every attempt ran exactly once.

Each attempt points at a different commit of one small capstone, so none reuses another's report. The database
is a fresh SQLite file by default (--database-url for PostgreSQL; the schema t_bench is created and dropped).

    .venv/bin/python bench/queue_throughput.py --n 200 --workers 1 2
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session, func, select  # noqa: E402

from assessor.domain import accounts, jobs  # noqa: E402
from assessor.domain.db import make_engine, normalize_url  # noqa: E402
from assessor.domain.migrate import upgrade  # noqa: E402
from assessor.domain.models import Attempt, Event, StoredReport, Submission  # noqa: E402
from assessor.engine.rubric import find_rubric  # noqa: E402
from assessor.domain.submissions import record_event, snapshot_rubric  # noqa: E402
from tests.web.rubrics import TEST_RUBRIC  # noqa: E402
from tests.web.test_queue import TINY_CAPSTONE  # noqa: E402

GIT_ENV = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.org", "GIT_COMMITTER_NAME": "Bench",
           "GIT_COMMITTER_EMAIL": "bench@example.org", "PATH": "/usr/bin:/bin"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env={**GIT_ENV, "HOME": str(repo)}, check=True,
                          capture_output=True, text=True).stdout.strip()


def make_commits(repo: Path, count: int) -> list[str]:
    repo.mkdir(parents=True)
    for name, content in TINY_CAPSTONE.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    git(repo, "init", "-q", "-b", "main")
    commits = []
    for number in range(count):
        (repo / "VERSION").write_text(f"{number}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"version {number}")
        commits.append(git(repo, "rev-parse", "HEAD"))
    return commits


def seed(engine, rubric, repo: Path, commits: list[str]) -> list[int]:
    with Session(engine, expire_on_commit=False) as session:
        user = accounts.create_user(session, email=f"bench-{uuid.uuid4().hex[:8]}@example.org",
                                    password="bench password 1", role="learner")
        snapshot_rubric(session, rubric=rubric)
        submission = Submission(user_id=user.id, rubric_id=rubric.id, course=rubric.course)
        session.add(submission)
        session.flush()
        ids = []
        for number, commit in enumerate(commits, start=1):
            attempt = Attempt(submission_id=submission.id, user_id=user.id, number=number, rubric_id=rubric.id,
                              rubric_version=rubric.version, rubric_sha256=rubric.sha256, course=rubric.course,
                              source_url=str(repo), ref=commit)
            session.add(attempt)
            session.flush()
            record_event(session, attempt=attempt, kind="submitted", detail="bench")
            ids.append(attempt.id)
        session.commit()
    return ids


def run_round(*, workers: int, n: int, database_url: str, redis_url: str, rubric, rubrics_dir: Path, work: Path,
              repo: Path, commits: list[str]) -> dict:
    engine = make_engine(database_url)
    redis.Redis.from_url(redis_url).flushdb()
    ids = seed(engine, rubric, repo, commits[:n])
    env = {key: value for key, value in os.environ.items() if not key.startswith("ASSESSOR_")}
    env.update(ASSESSOR_INSTANCE=str(work / "instance"), ASSESSOR_SECRET_KEY="bench", ASSESSOR_DATABASE_URL=database_url,
               ASSESSOR_REDIS_URL=redis_url, ASSESSOR_RUBRICS_DIR=str(rubrics_dir), ASSESSOR_WORK_ROOT=str(work / "jobs"),
               ASSESSOR_CACHE_DIR=str(work / "cache"), ASSESSOR_ALLOW_LOCAL_SOURCES="true")
    processes = [subprocess.Popen([sys.executable, "-c", "from assessor.cli import main; main()", "worker",
                                   "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(work / f"worker-{workers}-{index}.log", "ab"), start_new_session=True)
                 for index in range(workers)]
    try:
        time.sleep(2.0)  # workers up (migrations checked, queue reachable)
        settings = jobs.JobSettings(database_url=database_url, queue_url=redis_url, work_root=work / "jobs",
                                    cache_dir=work / "cache")
        huey = jobs.make_huey(settings)
        started = time.monotonic()
        for attempt_id in ids:
            jobs.enqueue_attempt(huey, attempt_id)
        while True:
            with Session(engine) as session:
                unfinished = session.exec(select(func.count()).select_from(Attempt).where(
                    Attempt.id.in_(ids), Attempt.status.in_(("queued", "running")))).one()
            if not unfinished:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    with Session(engine) as session:
        rows = session.exec(select(Attempt).where(Attempt.id.in_(ids))).all()
        starts = dict(session.exec(select(Event.attempt_id, func.count()).where(
            Event.attempt_id.in_(ids), Event.kind == "assessment_started").group_by(Event.attempt_id)).all())
        reports = session.exec(select(func.count()).select_from(StoredReport).where(
            StoredReport.commit.in_(commits[:n]))).one()
    engine.dispose()
    statuses = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    exactly_once = all(starts.get(i) == 1 for i in ids) and all(row.tries == 1 for row in rows) and reports == n
    return {"workers": workers, "n": n, "seconds": elapsed, "jobs_per_minute": n / elapsed * 60,
            "statuses": statuses, "exactly_once": exactly_once, "reports": reports}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="assessments per round")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker processes per round")
    parser.add_argument("--redis-url", default=os.environ.get("ASSESSOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        work = Path(tmp)
        rubrics_dir = work / "rubrics"
        rubrics_dir.mkdir()
        (rubrics_dir / "test-capstone.toml").write_text(TEST_RUBRIC)
        rubric = find_rubric("test-capstone", rubrics_dir)
        print(f"making {args.n * len(args.workers)} commits...", flush=True)
        commits = make_commits(work / "capstone", args.n * len(args.workers))
        results = []
        for round_number, workers in enumerate(args.workers):
            if args.database_url:
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                admin = create_engine(normalize_url(args.database_url))
                with admin.begin() as connection:
                    connection.execute(text(f'CREATE SCHEMA "{schema}"'))
                database_url = make_url(normalize_url(args.database_url)).update_query_dict(
                    {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
            else:
                database_url, admin = f"sqlite:///{work / f'round{round_number}.db'}", None
            engine = make_engine(database_url)
            upgrade(engine)
            engine.dispose()
            round_commits = commits[round_number * args.n:(round_number + 1) * args.n]
            try:
                result = run_round(workers=workers, n=args.n, database_url=database_url, redis_url=args.redis_url,
                                   rubric=rubric, rubrics_dir=rubrics_dir, work=work, repo=work / "capstone",
                                   commits=round_commits)
            finally:
                if admin is not None:
                    with admin.begin() as connection:
                        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                    admin.dispose()
            results.append(result)
            print(f"{workers} worker(s): {result['n']} assessments in {result['seconds']:.1f} s = "
                  f"{result['jobs_per_minute']:.1f} jobs/minute; statuses {result['statuses']}; "
                  f"exactly once: {'yes' if result['exactly_once'] else 'NO'}", flush=True)
    return 0 if all(result["exactly_once"] and result["statuses"] == {"scored": result["n"]} for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
