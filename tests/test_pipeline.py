"""End to end: real clones of the shipped sample capstones, the real sandbox, real coverage and radon."""

import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from assessor.cli import main
from assessor.config import resolve_paths
from assessor.engine.intake import SourcePolicy
from assessor.engine.pipeline import IN_USE_FILE, STAGES, PipelineSettings, assess, clean_stale_job_dirs
from assessor.engine.report import report_from_json, report_to_json
from assessor.engine.rubric import find_rubric
from assessor.samples import create_sample_repo

pytestmark = pytest.mark.slow

RUBRIC_ID = "scalable-architectures-resilient-core"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One dependency cache for the module, as one installation would have."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def settings(tmp_path, shared_cache):
    return PipelineSettings(work_root=tmp_path / "work", cache_dir=shared_cache,
                            source_policy=SourcePolicy(allow_local=True))


@pytest.fixture(scope="module")
def rubric():
    return find_rubric(RUBRIC_ID, resolve_paths().rubrics)


def test_passing_sample_scores_top_levels_and_waits_for_the_mentor(tmp_path, settings, rubric):
    repo = create_sample_repo("passing", tmp_path / "passing")
    stages = []
    report = assess(str(repo), rubric, settings=settings, progress=lambda stage, message: stages.append(stage))

    assert stages == list(STAGES)
    assert len(report.commit) == 40
    assert (report.rubric.id, report.rubric.sha256) == (rubric.id, rubric.sha256)
    automated = [score for score in report.criteria if score.kind != "manual"]
    assert all(score.status == "scored" and score.points == score.max_points for score in automated), automated
    assert {score.status for score in report.criteria if score.kind == "manual"} == {"pending"}
    assert [gate.status for gate in report.gates] == ["passed", "passed"]
    assert report.outcome == "pending"

    assert report.tests["passed"] >= 35 and report.tests["failed"] == 0
    assert report.coverage["line_percent"] > 95 and report.coverage["branch_percent"] > 90
    assert report.sandbox["backend"] == "bubblewrap" and report.sandbox["killed_by"] is None
    assert report.flags == ()
    assert report.complexity["average"] < 4
    assert {artifact["status"] for artifact in report.artifacts} == {"complete"}
    # The job's work directory is gone once the report exists; only the shared build area stays.
    assert [entry.name for entry in (tmp_path / "work").iterdir()] == ["shared"]
    assert report_from_json(report_to_json(report)) == report
    # The sample is one commit: the history says so (the worker adds the near copies).
    authorship = report.integrity["authorship"]
    assert report.integrity["version"] == 1 and report.integrity["similarity"] is None
    assert authorship["single_commit"] and [a["email"] for a in authorship["authors"]] == ["learner@example.org"]
    assert authorship["lines"] > 1_000 and authorship["authors"][0]["lines"] == authorship["lines"]


def test_falling_short_sample_fails_with_evidence_a_mentor_can_act_on(tmp_path, settings, rubric):
    repo = create_sample_repo("falling-short", tmp_path / "short")
    report = assess(str(repo), rubric, settings=settings)

    assert report.outcome == "fail"
    assert {gate.id: gate.status for gate in report.gates}["tests-pass"] == "failed"
    assert report.tests["failed"] == 1
    tests = report.criterion("contract-tests")
    assert tests.level == 1 and "to reach level 2 of 3: every test passing (some fail now)" in tests.evidence
    complexity = report.criterion("complexity")
    assert any("stock_report: complexity 18 (rank C)" in line for line in complexity.evidence)
    memo = next(artifact for artifact in report.artifacts if artifact["criterion"] == "decision-memo")
    assert memo["status"] == "incomplete"
    assert "Consequences" in memo["missing_sections"]
    notes = next(artifact for artifact in report.artifacts if artifact["criterion"] == "database-design-notes")
    assert notes["status"] == "missing"
    assert "1 failed" in report.output_tail
    [failure] = report.failures
    assert failure["outcome"] == "failed" and failure["name"].startswith("test_")
    assert failure["message"] and "assert" in failure["message"].lower()
    # file and line as the code view names them: the line of the failing test's `def`
    source = (repo / failure["file"]).read_text().splitlines()
    assert failure["file"] == "tests/test_reporting.py"
    assert source[failure["line"] - 1].startswith(f"def {failure['name']}(")


def test_a_dependency_without_a_wheel_is_built_in_the_sandbox_and_the_tests_run(tmp_path, settings, rubric, make_repo):
    repo = make_repo({
        "pyproject.toml": '[project]\nname = "legacy"\nversion = "1"\ndependencies = ["docopt==0.6.2"]\n',
        "legacy/__init__.py": "import docopt\n\n\ndef answer():\n    return 42\n",
        "tests/test_legacy.py": "from legacy import answer\n\ndef test_answer():\n    assert answer() == 42\n",
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests["passed"] == 1 and report.tests["errors"] == 0
    assert report.criterion("contract-tests").status == "scored"
    assert report.environment["built_from_source"] == ["docopt==0.6.2"]
    assert any("docopt 0.6.2 has no wheel; it was built from source in the sandbox" in note for note in report.notes)


def test_timeout_override_stops_an_endless_test_and_scores_it(tmp_path, shared_cache, rubric, make_repo):
    repo = make_repo({
        "spin/__init__.py": "def forever():\n    while True:\n        pass\n",
        "tests/test_spin.py": "from spin import forever\n\ndef test_spin():\n    forever()\n",
    })
    settings = PipelineSettings(work_root=tmp_path / "work", cache_dir=shared_cache,
                                source_policy=SourcePolicy(allow_local=True), wall_seconds=3)
    report = assess(str(repo), rubric, settings=settings)

    assert report.sandbox["killed_by"] == "wall_time"
    tests = report.criterion("contract-tests")
    assert tests.level == 0
    assert "the run was stopped by the wall time limit" in tests.evidence


def test_cli_check_writes_json_report(tmp_path, shared_cache, monkeypatch):
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("ASSESSOR_WORK_ROOT", str(tmp_path / "work"))
    repo = create_sample_repo("falling-short", tmp_path / "short")
    output = tmp_path / "report.json"

    result = CliRunner().invoke(main, ["check", str(repo), "--rubric", RUBRIC_ID, "--output", str(output)])

    assert result.exit_code == 0, result.output
    assert "outcome: FAIL" in result.stdout
    assert "last lines of the test output:" in result.stdout and "1 failed" in result.stdout
    for stage in STAGES:
        assert stage in result.stderr
    stored = json.loads(output.read_text())
    assert stored["outcome"] == "fail"
    assert stored["rubric"]["id"] == RUBRIC_ID
    assert Path(tmp_path / "instance").stat().st_mode & 0o777 == 0o700


def _age(path: Path, seconds: float) -> None:
    old = path.stat().st_mtime - seconds
    os.utime(path, (old, old))


def test_stale_job_dirs_of_dead_jobs_are_unmounted_and_removed_but_live_ones_kept(tmp_path):
    work_root = tmp_path / "work"
    dead = work_root / "job-dead"
    area = dead / "run" / "area"
    area.mkdir(parents=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "assessor-run", str(area)], capture_output=True).returncode == 0
    live = work_root / "job-live"
    live.mkdir()
    young = work_root / "job-young"
    young.mkdir()
    for job_dir in (dead, live):
        _age(job_dir, 3600)
    # The live job's process holds its lock, as assess() does while it runs.
    lock = os.open(live / IN_USE_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        removed = clean_stale_job_dirs(work_root)
    finally:
        os.close(lock)

    assert removed == [dead]
    assert not dead.exists() and live.is_dir() and young.is_dir()
    if mounted:
        assert str(area) not in Path("/proc/self/mountinfo").read_text()


def test_a_running_assessment_holds_its_job_dir(tmp_path, settings, rubric, make_repo):
    repo = make_repo({"app/__init__.py": "VALUE = 1\n", "tests/test_app.py": "def test_one():\n    assert True\n"})
    seen = {}

    def progress(stage, message):
        if stage == "testing":
            job_dir = next((tmp_path / "work").glob("job-*"))
            _age(job_dir, 3600)
            seen["removed"] = clean_stale_job_dirs(tmp_path / "work")
            seen["still_there"] = job_dir.is_dir()

    report = assess(str(repo), rubric, settings=settings, progress=progress)

    assert seen == {"removed": [], "still_there": True}
    assert report.tests["passed"] == 1
