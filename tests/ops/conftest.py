"""Ops fixtures: the web fixtures (tests/web/conftest.py) on every database and queue backend available."""

import pytest

from tests.backends import database_url, deployment, queue_url  # noqa: F401  (fixtures)
from tests.web.conftest import app, auth, client, db, make_attempt, make_user, rubrics_dir, runner  # noqa: F401


@pytest.fixture
def app_config(tmp_path, rubrics_dir, database_url, queue_url) -> dict:
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": database_url,
        "QUEUE_URL": queue_url,
        "RUBRICS_DIR": str(rubrics_dir),
        "WORK_ROOT": str(tmp_path / "work"),
        "CACHE_DIR": str(tmp_path / "cache"),
        "ALLOW_LOCAL_SOURCES": True,
        "LOCAL_SOURCE_ROOTS": str(tmp_path),  # where make_repo puts the test repositories
        "WTF_CSRF_ENABLED": True,
        "PAGE_SIZE": 5,
    }
