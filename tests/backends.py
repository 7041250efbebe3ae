"""The database and queue backends the ops tests run on: SQLite and SqliteHuey always; the PostgreSQL server
and Redis named by ASSESSOR_TEST_DATABASE_URL / ASSESSOR_TEST_REDIS_URL when those are set. A server that is
named but unreachable fails the test (never a skip): `.ci/run` sets both, so CI cannot pass without them.

Each PostgreSQL test gets a schema of its own (dropped afterwards) through the connection's search_path, so
tests never see each other's tables and nothing has to be truncated. Redis tests flush their database first."""

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from assessor.domain.db import normalize_url

PG_ENV, REDIS_ENV = "ASSESSOR_TEST_DATABASE_URL", "ASSESSOR_TEST_REDIS_URL"
IN_CI = os.environ.get("CI", "").lower() == "true"  # CI must test the scaled deployment: missing servers fail


def database_backends() -> list[str]:
    return ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])


def queue_backends() -> list[str]:
    return ["sqlite"] + (["redis"] if os.environ.get(REDIS_ENV) else [])


def _unreachable(what: str, url: str, error: Exception) -> None:
    pytest.fail(f"{what} at {url} is not reachable ({type(error).__name__}: {error}); start it (see .ci/run) "
                f"or unset the variable to test on SQLite only", pytrace=False)


def postgresql_schema_url() -> tuple[str, callable]:
    """A URL whose connections use a new, empty schema; and the function that drops it."""
    base = normalize_url(os.environ[PG_ENV])
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, connect_args={"connect_timeout": 5}, pool_pre_ping=True)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        admin.dispose()
        _unreachable("PostgreSQL", base, error)
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)

    def drop() -> None:
        try:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()
    return url, drop


def redis_url() -> str:
    import redis

    url = os.environ[REDIS_ENV]
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.flushdb()
        client.close()
    except Exception as error:
        _unreachable("Redis", url, error)
    return url


def deployments() -> list[str]:
    """embedded: SQLite + SqliteHuey; scaled: PostgreSQL + Redis (each where its variable is set)."""
    return ["embedded"] + (["scaled"] if IN_CI or os.environ.get(PG_ENV) or os.environ.get(REDIS_ENV) else [])


def _require(variable: str) -> bool:
    if os.environ.get(variable):
        return True
    if IN_CI:
        pytest.fail(f"CI=true but {variable} is not set: .ci/run sets it", pytrace=False)
    return False


@pytest.fixture(params=deployments())
def deployment(request) -> str:
    return request.param


@pytest.fixture
def database_url(deployment, tmp_path):
    if deployment == "embedded" or not _require(PG_ENV):
        yield f"sqlite:///{tmp_path / 'instance' / 'assessor.db'}"
        return
    url, drop = postgresql_schema_url()
    yield url
    drop()


@pytest.fixture
def queue_url(deployment, tmp_path):
    if deployment == "embedded" or not _require(REDIS_ENV):
        return f"sqlite:///{tmp_path / 'instance' / 'queue.db'}"
    return redis_url()
