"""Both deployments are the same code: ASSESSOR_REDIS_URL picks RedisHuey, ASSESSOR_DATABASE_URL PostgreSQL."""

from huey import RedisHuey, SqliteHuey

from assessor.domain import jobs
from assessor.domain.db import make_engine, normalize_url
from assessor.web import create_app


def test_the_redis_url_selects_redis_huey(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSESSOR_REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("ASSESSOR_DATABASE_URL", "postgresql://assessor@db.internal/assessor")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k"})
    assert app.config["QUEUE_URL"] == "redis://127.0.0.1:6379/15"
    assert isinstance(jobs.make_huey(app.extensions["assessor.job_settings"]), RedisHuey)
    engine = app.extensions["assessor.engine"]
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    assert engine.pool._pre_ping  # a restarted server is reconnected to


def test_the_embedded_default_is_sqlite_for_both(monkeypatch, tmp_path):
    monkeypatch.delenv("ASSESSOR_REDIS_URL", raising=False)
    monkeypatch.delenv("ASSESSOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("ASSESSOR_QUEUE_URL", raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k"})
    assert app.config["DATABASE_URL"].startswith("sqlite:///")
    assert isinstance(jobs.make_huey(app.extensions["assessor.job_settings"]), SqliteHuey)


def test_postgres_urls_without_a_driver_use_psycopg():
    assert normalize_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    make_engine("postgresql://u@127.0.0.1:1/d").dispose()  # no connection is made until used


def test_retry_settings_come_from_the_configuration():
    settings = jobs.settings_from_config({"DATABASE_URL": "sqlite://", "QUEUE_URL": "memory://", "WORK_ROOT": "/w",
                                          "CACHE_DIR": "/c", "MAX_TRIES": 5, "RETRY_BASE_SECONDS": 2})
    assert settings.max_tries == 5 and settings.retry_base_seconds == 2


def test_a_worker_that_disagrees_with_the_web_servers_is_refused_and_config_check_says_why(tmp_path, monkeypatch,
                                                                                          rubrics_dir):
    import os
    import subprocess
    import sys

    from click.testing import CliRunner

    from assessor.cli import main
    from assessor.cli.admin import _record_settings

    monkeypatch.setenv("ASSESSOR_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("ASSESSOR_RUBRICS", str(rubrics_dir))
    monkeypatch.setenv("ASSESSOR_PUBLIC_URL", "https://assessor.example.org")
    for name in ("ASSESSOR_DATABASE_URL", "ASSESSOR_REDIS_URL", "ASSESSOR_QUEUE_URL", "ASSESSOR_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["init"], catch_exceptions=False).exit_code == 0
    _record_settings(create_app())  # what `assessor serve` does when it starts
    agreed = runner.invoke(main, ["config", "check"], catch_exceptions=False)
    assert agreed.exit_code == 0, agreed.output
    lines = {line.split()[0]: line for line in agreed.output.splitlines() if line.startswith("ASSESSOR_")}
    assert "https://assessor.example.org  [environment]  (the web servers' value)" in lines["ASSESSOR_PUBLIC_URL"]
    assert lines["ASSESSOR_SECRET_KEY"].split()[1:3] == ["set", "[instance"]
    assert "[default]" in lines["ASSESSOR_DATABASE_URL"]

    monkeypatch.setenv("ASSESSOR_PUBLIC_URL", "https://localhost")  # a worker set up without it
    differs = runner.invoke(main, ["config", "check"])
    assert differs.exit_code == 2
    assert "DIFFERS from the web servers' 'https://assessor.example.org'" in differs.output
    worker = subprocess.run([sys.executable, "-c", "from assessor.cli import main; main()", "worker"],
                            env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert worker.returncode == 2
    assert "ASSESSOR_PUBLIC_URL is 'https://localhost' here but 'https://assessor.example.org' there" in worker.stderr
