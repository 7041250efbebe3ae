"""Alembic environment: the target is SQLModel.metadata with every table of assessor.models registered.
`assessor.migrate` passes an open connection in `config.attributes["connection"]`; without one (a developer
running alembic by hand) the URL comes from ASSESSOR_DATABASE_URL."""

import os

from alembic import context
from sqlmodel import SQLModel

import assessor.domain.models  # noqa: F401  (registers the tables)
from assessor.domain.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("ASSESSOR_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set ASSESSOR_DATABASE_URL to the database to migrate")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run `assessor db upgrade`")
run_migrations_online()
