"""Schema migrations (Alembic, scripts in assessor/migrations). `upgrade(engine)` brings any database to the
newest schema: an empty one is created from the revisions, and a database made before migrations existed
(tables created directly, no alembic_version table) is first stamped at the initial revision."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
INITIAL_REVISION = "0001"
# A table the newest revision adds: a schema made directly from the models that has it is already at head.
NEWEST_TABLE = "module_results"
_LOCK_KEY = 0x61737365  # "asse"


def alembic_config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to `revision`; returns (revision before, revision after)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # several servers starting at once: one migrates at a time
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        before = MigrationContext.configure(connection).get_current_revision()
        if before is None and inspect(connection).has_table("users"):
            # Made by create_all, not by the migrations: stamped at the revision its tables match.
            made_at = "head" if inspect(connection).has_table(NEWEST_TABLE) else INITIAL_REVISION
            command.stamp(alembic_config(connection), made_at)
            before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(alembic_config(connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def new_revision(message: str, *, rev_id: str | None = None) -> str:
    """For developers: write a revision with the changes from the newest revision to assessor.models, found by
    comparing a scratch SQLite database migrated to head (check the script; PostgreSQL-only objects such as
    trigger functions are written by hand). Returns the new file's path."""
    import tempfile

    from assessor.domain.db import make_engine

    with tempfile.TemporaryDirectory(prefix="assessor-revision-") as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        try:
            upgrade(engine)
            with engine.begin() as connection:
                script = command.revision(alembic_config(connection), message=message, autogenerate=True,
                                          rev_id=rev_id)
        finally:
            engine.dispose()
    return script.path
