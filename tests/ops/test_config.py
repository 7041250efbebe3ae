"""Both deployments are the same code: ASSESSOR_REDIS_URL picks RedisHuey, ASSESSOR_DATABASE_URL PostgreSQL."""

from huey import RedisHuey, SqliteHuey

from assessor import jobs
from assessor.db import make_engine, normalize_url
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
